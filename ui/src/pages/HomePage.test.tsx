import { screen } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import { mockFetch, renderApp, signIn } from '../test/helpers';
import { HomePage } from './HomePage';

const state = {
  counts: [
    { entity: 'opportunity', source_system: 'filesource', count: 1200 },
    { entity: 'opportunity', source_system: 'salesforce', count: 34 },
    { entity: 'account', source_system: 'salesforce', count: 12 },
  ],
  recent_events: [],
  consumers: [{ name: 'dcl-postgres', pending: 0, ack_pending: 0, redelivered: 0, stalled: true }],
  dlq_depth: 3,
  active_jobs: 1,
  open_drift: 0,
};

describe('HomePage', () => {
  it('shows live headline numbers from /dcl/state', async () => {
    signIn();
    mockFetch({ 'GET /dcl/state': { body: state }, 'GET /api/v1/auth/me': { body: { id: 'u', email: 'a@b.c', tenant_id: 't', role: 'admin' } } });
    renderApp(<HomePage />);
    expect(screen.getByText('Loading pipeline state…')).toBeInTheDocument();
    expect(await screen.findByText('1,246')).toBeInTheDocument();
    expect(screen.getByText('1,234')).toBeInTheDocument();
    expect(screen.getByText('from 2 sources')).toBeInTheDocument();
    expect(screen.getByText('! 1 stalled')).toBeInTheDocument();
  });

  it('says so when /dcl/state is not on the server', async () => {
    signIn();
    mockFetch({});
    renderApp(<HomePage />);
    expect(await screen.findByText('Pipeline state: not available on this server')).toBeInTheDocument();
    expect(screen.queryByTestId('headline')).toBeNull();
  });

  it('shows a server error as an error', async () => {
    signIn();
    mockFetch({ 'GET /dcl/state': { status: 500, body: { error: { code: 'internal', message: 'duckdb: file locked', trace_id: 'tr-5' } } } });
    renderApp(<HomePage />);
    expect(await screen.findByRole('alert')).toHaveTextContent('duckdb: file locked');
    expect(screen.getByRole('alert')).toHaveTextContent('tr-5');
  });
});
