import { describe, expect, it } from 'vitest';
import {
  confidenceBand,
  formatBytes,
  formatCompact,
  formatDecimal,
  formatDuration,
  formatNumber,
  formatPercent,
  formatRelative,
  formatTransform,
  humanize,
  isJobActive,
  jobDetail,
  jobProgress,
  lagText,
  parseInterval,
  shortId,
  statusInfo,
} from './format';

describe('statusInfo', () => {
  it('gives every status a label, a tone and an icon', () => {
    expect(statusInfo('ACTIVE')).toEqual({ label: 'Active', tone: 'ok', icon: '✓' });
    expect(statusInfo('MANUAL_REVIEW_REQUIRED')).toEqual({ label: 'Manual review required', tone: 'warn', icon: '!' });
    expect(statusInfo('FAILED')).toMatchObject({ label: 'Failed', tone: 'bad' });
    expect(statusInfo('HEALING')).toMatchObject({ label: 'Healing', tone: 'info' });
    expect(statusInfo('running')).toMatchObject({ label: 'Running', tone: 'info' });
    expect(statusInfo('ok')).toMatchObject({ label: 'OK', tone: 'ok' });
    expect(statusInfo('degraded')).toMatchObject({ tone: 'warn' });
    expect(statusInfo('critical')).toMatchObject({ tone: 'bad' });
  });

  it('humanizes statuses it does not know, neutrally', () => {
    expect(statusInfo('rate_limited')).toEqual({ label: 'Rate limited', tone: 'neutral', icon: '•' });
    expect(statusInfo(undefined)).toMatchObject({ label: 'Unknown' });
    expect(humanize('drift.detected')).toBe('Drift detected');
  });
});

describe('numbers', () => {
  it('formats numbers and never invents a value', () => {
    expect(formatNumber(1234567)).toBe('1,234,567');
    expect(formatNumber(null)).toBe('—');
    expect(formatCompact(9999)).toBe('9,999');
    expect(formatCompact(12_345)).toBe('12.3K');
    expect(formatCompact(undefined)).toBe('—');
  });

  it('keeps decimal strings exact', () => {
    expect(formatDecimal('1234567.500000000')).toBe('1,234,567.50');
    expect(formatDecimal('12345678901234567890123456789.123456789')).toBe('12,345,678,901,234,567,890,123,456,789.123456789');
    expect(formatDecimal('10.000000000', 'USD')).toBe('10.00 USD');
    expect(formatDecimal('-5')).toBe('-5');
    expect(formatDecimal(null)).toBe('—');
    expect(formatDecimal('n/a')).toBe('n/a');
  });

  it('formats percentages and durations', () => {
    expect(formatPercent(0.873)).toBe('87.3%');
    expect(formatPercent(40, true)).toBe('40%');
    expect(formatPercent(null)).toBe('—');
    expect(formatDuration(250)).toBe('250 ms');
    expect(formatDuration(1500)).toBe('1.5 s');
    expect(formatDuration(125_000)).toBe('2 min 5 s');
    expect(formatDuration(null)).toBe('—');
    expect(formatBytes(1536)).toBe('1.5 KB');
    expect(shortId('0123456789abcdef')).toBe('01234567…');
  });
});

describe('time', () => {
  const now = Date.parse('2025-01-01T12:00:00Z');
  it('says how long ago', () => {
    expect(formatRelative('2025-01-01T11:59:58Z', now)).toBe('just now');
    expect(formatRelative('2025-01-01T11:59:30Z', now)).toBe('30 s ago');
    expect(formatRelative('2025-01-01T11:00:00Z', now)).toBe('1 h ago');
    expect(formatRelative(null, now)).toBe('never');
    expect(formatRelative('garbage', now)).toBe('never');
  });

  it('parses intervals and flags overdue syncs', () => {
    expect(parseInterval('5m')).toBe(300_000);
    expect(parseInterval('1h30m')).toBe(5_400_000);
    expect(parseInterval('')).toBeNull();
    expect(lagText({ last_sync_at: '2025-01-01T11:58:00Z', interval: '5m' }, now)).toBe('2 min 0 s');
    expect(lagText({ last_sync_at: '2025-01-01T11:00:00Z', interval: '5m' }, now)).toBe('1 h 0 min · overdue (every 5m)');
    expect(lagText({ last_sync_at: null, interval: '5m' }, now)).toBe('—');
  });
});

describe('jobs', () => {
  it('computes progress only when the total is known', () => {
    expect(jobProgress({ status: 'running', rows_read: 50, total: 200 })).toBe(0.25);
    expect(jobProgress({ status: 'running', rows_read: 50 })).toBeNull();
    expect(jobProgress({ status: 'succeeded', rows_read: 5 })).toBe(1);
    expect(isJobActive('queued')).toBe(true);
    expect(isJobActive('cancelled')).toBe(false);
    expect(jobDetail({ rows_read: 1200, total: 5000 })).toBe('1,200 of 5,000 rows');
    expect(jobDetail({ rows_read: 3 })).toBe('3 rows read');
    // done/total in bytes: progress from them, rows counted on their own.
    expect(jobProgress({ status: 'running', rows_read: 6, done: 331, total: 662 })).toBe(0.5);
    expect(jobDetail({ rows_read: 6, done: 331, total: 662 })).toBe('6 rows read');
  });
});

describe('drift and mappings', () => {
  it('bands confidence like the drift agent', () => {
    expect(confidenceBand(0.9).tone).toBe('ok');
    expect(confidenceBand(0.85).tone).toBe('ok');
    expect(confidenceBand(0.7).label).toBe('needs review');
    expect(confidenceBand(0.59).tone).toBe('bad');
  });

  it('formats transforms', () => {
    expect(formatTransform('trim')).toBe('trim');
    expect(formatTransform({ name: 'parse_date', format: 'YYYY-MM-DD' })).toBe('parse_date(format=YYYY-MM-DD)');
    expect(formatTransform({ op: 'map', values: { a: 'b' } })).toBe('map(values={"a":"b"})');
  });
});
