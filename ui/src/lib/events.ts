// Turning live messages and recent events into log lines.

import type { Job, LiveMessage, RecentEvent } from '../api/types';
import { humanize } from './format';

export interface LogEntry {
  key: string;
  type: string;
  text: string;
  entity?: string;
  id?: string;
  sourceSystem?: string;
  traceId?: string;
  time?: string;
  tone: 'ok' | 'warn' | 'bad' | 'info' | 'neutral';
}

let counter = 0;
const str = (v: unknown): string | undefined => (typeof v === 'string' && v ? v : undefined);

/**
 * A log line for an event. `receivedAt` stands in for the time of live
 * messages that carry none (job updates), so every line says when it was seen.
 */
export function describeEvent(ev: RecentEvent | LiveMessage, receivedAt?: string): LogEntry | null {
  const m = ev as Record<string, unknown>;
  const type = str(m.type) ?? 'event';
  if (type === 'stats') return null;
  const entity = str(m.entity);
  const id = str(m.id) ?? (typeof m.id === 'number' ? String(m.id) : undefined);
  const sourceSystem = str(m.source_system);
  const traceId = str(m.trace_id);
  const job = m.job && typeof m.job === 'object' ? (m.job as Record<string, unknown>) : undefined;
  const time = str(m.time) ?? str(m.created_at) ?? (job ? (str(job.finished_at) ?? str(job.started_at)) : undefined) ?? receivedAt;
  const seq = typeof m.seq === 'number' ? m.seq : undefined;
  const key = `${seq ?? `n${++counter}`}-${type}-${id ?? ''}`;
  const from = sourceSystem ? ` from ${sourceSystem}` : '';
  const obj = str(m.source_object);
  const base = { key, type, entity, id, sourceSystem, traceId, time };

  if (type === 'record.upserted' || type.endsWith('.upserted')) {
    const changed = Array.isArray(m.changed_fields) && m.changed_fields.length ? ` (${m.changed_fields.length} field${m.changed_fields.length === 1 ? '' : 's'} changed)` : '';
    return { ...base, text: `${humanize(entity ?? 'record')} ${id ?? ''} upserted${from}${obj ? `/${obj}` : ''}${changed}`, tone: 'ok' };
  }
  if (type === 'record.deleted' || type.endsWith('.deleted')) {
    return { ...base, text: `${humanize(entity ?? 'record')} ${id ?? ''} deleted${from}`, tone: 'neutral' };
  }
  if (type === 'job.updated') {
    const job = m.job as Job | undefined;
    if (!job) return { ...base, text: 'Job updated', tone: 'info' };
    const counts = `${job.rows_read ?? 0} read, ${job.published ?? 0} published, ${job.rejected ?? 0} rejected`;
    return {
      ...base,
      id: job.id,
      text: `Job ${job.kind ? `${job.kind} ` : ''}${job.status}: ${counts}`,
      tone: job.status === 'failed' ? 'bad' : job.status === 'succeeded' ? 'ok' : 'info',
    };
  }
  if (type.startsWith('drift.')) {
    const what = str(m.object) ? `${str(m.system) ?? ''}/${str(m.object)}` : (str(m.connection_id) ?? '');
    return { ...base, text: `${humanize(type)}${what ? ` on ${what}` : ''}${str(m.message) ? `: ${str(m.message)}` : ''}`, tone: type === 'drift.repaired' ? 'ok' : 'warn' };
  }
  if (type.startsWith('dlq.')) {
    return { ...base, text: `Dead-lettered${str(m.stage) ? ` at ${str(m.stage)}` : ''}${str(m.reason) ? `: ${str(m.reason)}` : ''}`, tone: 'bad' };
  }
  if (type.startsWith('connection.')) {
    return { ...base, text: `Connection ${str(m.name) ?? str(m.connection_id) ?? ''} ${str(m.status) ? `is ${str(m.status)}` : 'changed'}`.replace(/\s+/g, ' '), tone: 'info' };
  }
  return { ...base, text: `${humanize(type)}${id ? ` ${id}` : ''}${from}`, tone: 'neutral' };
}

export const entryIdentity = (e: LogEntry) => `${e.type}|${e.id ?? ''}|${e.traceId ?? ''}|${e.time ?? ''}`;

/** Newest first, bounded. */
export function pushEntries(prev: LogEntry[], next: LogEntry[], max = 200): LogEntry[] {
  if (next.length === 0) return prev;
  const out = [...[...next].reverse(), ...prev];
  return out.length > max ? out.slice(0, max) : out;
}
