import { describe, expect, it } from 'vitest';
import { describeEvent, pushEntries } from './events';

describe('describeEvent', () => {
  it('narrates record events with id, source and trace', () => {
    const e = describeEvent({ type: 'record.upserted', seq: 7, entity: 'opportunity', id: 'OPP-1', source_system: 'filesource', source_object: 'opportunity', trace_id: 'abc123', time: '2025-01-01T00:00:00Z' });
    expect(e).toMatchObject({ type: 'record.upserted', id: 'OPP-1', traceId: 'abc123', tone: 'ok' });
    expect(e!.text).toBe('Opportunity OPP-1 upserted from filesource/opportunity');
    expect(e!.key).toContain('7');
  });

  it('narrates jobs, drift and dead letters', () => {
    expect(describeEvent({ type: 'job.updated', job: { id: 'j1', kind: 'upload', status: 'failed', rows_read: 3, published: 2, rejected: 1 } })!).toMatchObject({ tone: 'bad', text: 'Job upload failed: 3 read, 2 published, 1 rejected' });
    expect(describeEvent({ type: 'drift.detected', system: 'hubspot', object: 'deals' })!.text).toBe('Drift detected on hubspot/deals');
    expect(describeEvent({ type: 'dlq.added', stage: 'map', reason: 'name is required' })!.text).toBe('Dead-lettered at map: name is required');
  });

  it('skips stats', () => {
    expect(describeEvent({ type: 'stats' })).toBeNull();
  });
});

describe('pushEntries', () => {
  it('puts the newest first and bounds the list', () => {
    const mk = (k: string) => ({ key: k, type: 't', text: k, tone: 'ok' as const });
    const a = pushEntries([], [mk('1'), mk('2')], 3);
    expect(a.map((e) => e.key)).toEqual(['2', '1']);
    const b = pushEntries(a, [mk('3'), mk('4')], 3);
    expect(b.map((e) => e.key)).toEqual(['4', '3', '2']);
  });
});
