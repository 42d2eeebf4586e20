// Formatting of numbers, times and statuses. A status always renders as
// text plus an icon, so colour is never the only signal.

export type Tone = 'ok' | 'warn' | 'bad' | 'info' | 'neutral';

export interface StatusInfo {
  label: string;
  tone: Tone;
  icon: string;
}

const ICON: Record<Tone, string> = {
  ok: '✓',
  warn: '!',
  bad: '✕',
  info: '↻',
  neutral: '•',
};

const STATUS: Record<string, { label?: string; tone: Tone }> = {
  // connections
  active: { tone: 'ok' },
  paused: { tone: 'neutral' },
  drifted: { tone: 'warn' },
  healing: { tone: 'info' },
  manual_review_required: { label: 'Manual review required', tone: 'warn' },
  failed: { tone: 'bad' },
  // jobs
  queued: { tone: 'neutral' },
  running: { tone: 'info' },
  succeeded: { tone: 'ok' },
  cancelled: { tone: 'neutral' },
  // health
  ok: { label: 'OK', tone: 'ok' },
  healthy: { tone: 'ok' },
  up: { label: 'Up', tone: 'ok' },
  degraded: { tone: 'warn' },
  down: { tone: 'bad' },
  error: { tone: 'bad' },
  unknown: { tone: 'neutral' },
  // drift
  open: { tone: 'warn' },
  applied: { tone: 'ok' },
  approved: { tone: 'ok' },
  rejected: { tone: 'neutral' },
  pending: { tone: 'warn' },
  // severity
  critical: { tone: 'bad' },
  high: { tone: 'bad' },
  medium: { tone: 'warn' },
  low: { tone: 'neutral' },
};

/** "MANUAL_REVIEW_REQUIRED" → "Manual review required". */
export function humanize(s: string): string {
  const t = s.replace(/[_\-.]+/g, ' ').trim().toLowerCase();
  return t ? t[0]!.toUpperCase() + t.slice(1) : '';
}

export function statusInfo(status: string | null | undefined): StatusInfo {
  if (!status) return { label: 'Unknown', tone: 'neutral', icon: ICON.neutral };
  const key = status.trim().toLowerCase();
  const known = STATUS[key];
  const tone = known?.tone ?? 'neutral';
  return { label: known?.label ?? humanize(status), tone, icon: ICON[tone] };
}

export const TERMINAL_JOB_STATES = new Set(['succeeded', 'failed', 'cancelled']);

export function isJobActive(status: string | undefined): boolean {
  return !!status && !TERMINAL_JOB_STATES.has(status);
}

const intFmt = new Intl.NumberFormat('en-US');

export function formatNumber(n: number | null | undefined): string {
  if (n === null || n === undefined || Number.isNaN(n)) return '—';
  return intFmt.format(n);
}

/** Compact form for headline numbers: 12,345 → 12.3K. */
export function formatCompact(n: number | null | undefined): string {
  if (n === null || n === undefined || Number.isNaN(n)) return '—';
  if (Math.abs(n) < 10_000) return intFmt.format(n);
  return new Intl.NumberFormat('en-US', { notation: 'compact', maximumFractionDigits: 1 }).format(n);
}

/**
 * Decimal strings (money) are shown as sent, with thousands separators in the
 * integer part; they are never parsed into floats.
 */
export function formatDecimal(s: string | number | null | undefined, currency?: string | null): string {
  if (s === null || s === undefined || s === '') return '—';
  const str = String(s);
  const m = /^(-?)(\d+)(\.\d+)?$/.exec(str);
  let out = str;
  if (m) {
    const int = m[2]!.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
    let frac = m[3] ?? '';
    // Trim trailing zeros beyond cents: 1200.500000000 → 1,200.50
    if (frac.length > 3) {
      frac = frac.replace(/0+$/, '');
      if (frac.length < 3) frac = frac.padEnd(3, '0');
    }
    out = `${m[1]}${int}${frac}`;
  }
  return currency ? `${out} ${currency}` : out;
}

/** A fraction 0..1 (or a percentage 0..100 when `isPercent`) as "87%". */
export function formatPercent(v: number | null | undefined, isPercent = false): string {
  if (v === null || v === undefined || Number.isNaN(v)) return '—';
  const pct = isPercent ? v : v * 100;
  return `${Math.round(pct * 10) / 10}%`;
}

export function formatDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${Math.round(s * 10) / 10} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.round(s % 60)} s`;
  const h = Math.floor(m / 60);
  return `${h} h ${m % 60} min`;
}

export function parseTime(t: string | null | undefined): Date | null {
  if (!t) return null;
  const d = new Date(t);
  return Number.isNaN(d.getTime()) ? null : d;
}

export function formatTime(t: string | null | undefined): string {
  const d = parseTime(t);
  if (!d) return '—';
  return d.toLocaleString(undefined, {
    year: 'numeric',
    month: 'short',
    day: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
  });
}

export function formatClock(t: string | null | undefined): string {
  const d = parseTime(t);
  if (!d) return '—';
  return d.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

/** "3 min ago"; "never" when there is no time. */
export function formatRelative(t: string | null | undefined, now = Date.now()): string {
  const d = parseTime(t);
  if (!d) return 'never';
  const diff = Math.round((now - d.getTime()) / 1000);
  const future = diff < 0;
  const s = Math.abs(diff);
  let v: string;
  if (s < 5) return 'just now';
  if (s < 60) v = `${s} s`;
  else if (s < 3600) v = `${Math.floor(s / 60)} min`;
  else if (s < 86400) v = `${Math.floor(s / 3600)} h`;
  else v = `${Math.floor(s / 86400)} d`;
  return future ? `in ${v}` : `${v} ago`;
}

type JobCounts = { rows_read?: number; done?: number | null; total?: number | null };

/**
 * Progress of a job as a fraction, or null when the total is unknown.
 * `done`/`total` share a unit (bytes of an upload, say); without `done`,
 * `total` counts rows and is compared with `rows_read`.
 */
export function jobProgress(job: JobCounts & { status: string }): number | null {
  if (job.status === 'succeeded') return 1;
  if (!job.total || job.total <= 0) return null;
  const done = typeof job.done === 'number' ? job.done : (job.rows_read ?? 0);
  return Math.max(0, Math.min(1, done / job.total));
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

export function shortId(id: string | null | undefined, n = 8): string {
  if (!id) return '—';
  return id.length > n + 1 ? `${id.slice(0, n)}…` : id;
}

export function jobDetail(job: JobCounts): string {
  const read = formatNumber(job.rows_read ?? 0);
  // Only when `total` counts rows can it be put next to rows_read.
  return job.total && typeof job.done !== 'number' ? `${read} of ${formatNumber(job.total)} rows` : `${read} rows read`;
}

/** Time since the last sync, compared with the schedule: "12 min (every 5m: overdue)". */
export function lagText(c: { last_sync_at?: string | null; interval?: string | null }, now = Date.now()): string {
  if (!c.last_sync_at) return '—';
  const t = Date.parse(c.last_sync_at);
  if (Number.isNaN(t)) return '—';
  const lag = now - t;
  const every = parseInterval(c.interval);
  const base = formatDuration(Math.max(0, lag));
  if (every === null) return base;
  return lag > every * 2 ? `${base} · overdue (every ${c.interval})` : base;
}

export function parseInterval(s: string | null | undefined): number | null {
  if (!s) return null;
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/g;
  let total = 0;
  let m: RegExpExecArray | null;
  let any = false;
  while ((m = re.exec(s))) {
    any = true;
    const v = Number(m[1]);
    total += m[2] === 'ms' ? v : m[2] === 's' ? v * 1000 : m[2] === 'm' ? v * 60_000 : v * 3_600_000;
  }
  return any ? total : null;
}

/** Confidence bands of the drift agent: ≥ 0.85 auto, 0.60–0.85 review, < 0.60 rejected. */
export function confidenceBand(c: number): { label: string; tone: 'ok' | 'warn' | 'bad' } {
  if (c >= 0.85) return { label: 'high', tone: 'ok' };
  if (c >= 0.6) return { label: 'needs review', tone: 'warn' };
  return { label: 'low', tone: 'bad' };
}

export function formatTransform(t: string | Record<string, unknown>): string {
  if (typeof t === 'string') return t;
  const name = (t.name ?? t.op ?? t.type ?? t.fn) as string | undefined;
  const rest = Object.entries(t).filter(([k]) => !['name', 'op', 'type', 'fn'].includes(k));
  const args = rest.map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join(', ');
  return name ? (args ? `${name}(${args})` : name) : JSON.stringify(t);
}
