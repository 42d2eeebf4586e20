import { screen, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it } from 'vitest';
import { mockFetch, renderApp, signIn } from '../test/helpers';
import { MonitorPage } from './MonitorPage';

const metrics = {
  total_connections: 3,
  active_connections: 2,
  drift_detections_24h: 0,
  successful_repairs_24h: 0,
  manual_reviews_pending: 0,
  average_confidence: null,
  average_repair_time_ms: null,
};

describe('MonitorPage', () => {
  it('shows metrics truthfully, connection health, jobs and an empty DLQ', async () => {
    signIn();
    const { calls } = mockFetch({
      'GET /api/v1/auth/me': { body: { id: 'u', email: 'a@b.c', tenant_id: 't', role: 'admin' } },
      'GET /api/v1/aam/metrics': { body: metrics },
      'GET /api/v1/aam/status': { body: { status: 'degraded', components: [{ name: 'postgres', status: 'down', detail: 'connection refused' }, { name: 'nats', status: 'ok' }] } },
      'GET /api/v1/aam/connections': {
        body: { data: [{ id: 'c1', name: 'Prod SF', system: 'salesforce', config: {}, interval: '5m', status: 'DRIFTED', last_sync_at: null, last_error: 'field Amount removed' }] },
      },
      'POST /api/v1/aam/connections/c1/sync': { status: 202, body: { job_id: 'job-77' } },
      'GET /api/v1/aoa/jobs': { body: { data: [{ id: 'job-1', kind: 'upload', status: 'running', rows_read: 50, published: 49, rejected: 1, total: 200, errors: [{ line: 7, column: 'amount', reason: 'not a decimal' }], created_at: '2025-01-01T00:00:00Z' }] } },
      'GET /dcl/state': { body: { counts: [], recent_events: [], consumers: [], dlq_depth: 0, active_jobs: 1, open_drift: 0 } },
      'GET /api/v1/dcl/dlq': { body: { data: [], next_cursor: null } },
    });
    renderApp(<MonitorPage />);

    const avg = (await screen.findByText('Average repair confidence')).closest('.metric')!;
    expect(avg).toHaveTextContent('—');
    expect(avg).toHaveTextContent('No repairs yet');
    expect(screen.getByText('Total connections').closest('.metric')).toHaveTextContent('3');

    expect(await screen.findByText('connection refused')).toBeInTheDocument();
    expect(screen.getByText('Degraded')).toBeInTheDocument();

    const row = (await screen.findByText('Prod SF')).closest('tr')!;
    expect(within(row).getByText('Drifted')).toBeInTheDocument();
    expect(within(row).getByText(/field Amount removed/)).toBeInTheDocument();
    await userEvent.click(within(row).getByRole('button', { name: 'Sync Prod SF now' }));
    expect(await screen.findByText(/job job-77/)).toBeInTheDocument();
    expect(calls.some((c) => c.method === 'POST' && c.url.pathname === '/api/v1/aam/connections/c1/sync')).toBe(true);

    const bar = await screen.findByRole('progressbar', { name: 'Job job-1 progress' });
    expect(bar).toHaveAttribute('aria-valuenow', '25');
    expect(screen.getByText('not a decimal')).toBeInTheDocument();

    expect(await screen.findByText(/dead-letter queue is empty/)).toBeInTheDocument();
    expect(await screen.findByText('Events: not available on this server')).toBeInTheDocument();
    expect(screen.getByText('The server reported no durable consumers.')).toBeInTheDocument();
  });

  it('redrives selected dead letters', async () => {
    signIn();
    let redriven: unknown = null;
    mockFetch({
      'GET /api/v1/dcl/dlq': { body: { data: [{ seq: 11, stage: 'map', reason: 'name is required', subject: 'dlq.t.map', attempts: 3, trace_id: 'tr', time: '2025-01-01T00:00:00Z' }], next_cursor: null } },
      'POST /api/v1/dcl/dlq/redrive': (_u, init) => {
        redriven = JSON.parse(init!.body as string);
        return { status: 202, body: {} };
      },
    });
    renderApp(<MonitorPage />);
    await userEvent.click(await screen.findByRole('checkbox', { name: 'Select message 11' }));
    await userEvent.click(screen.getByRole('button', { name: 'Redrive selected (1)' }));
    expect(await screen.findByText('1 message sent back for processing.')).toBeInTheDocument();
    expect(redriven).toEqual({ seqs: [11] });
  });
});
