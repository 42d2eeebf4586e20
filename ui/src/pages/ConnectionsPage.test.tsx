import { screen } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it } from 'vitest';
import { mockFetch, renderApp, signIn } from '../test/helpers';
import { ConnectionsPage } from './ConnectionsPage';

const conn = { id: 'c1', name: 'Prod HubSpot', system: 'hubspot', config: { base_url: 'https://api.hubapi.com', objects: ['account', 'contact'] }, interval: '10m', status: 'ACTIVE', last_sync_at: null, last_error: null };

describe('ConnectionsPage', () => {
  it('shows the empty state', async () => {
    signIn();
    mockFetch({ 'GET /api/v1/aam/connections': { body: { data: [] } } });
    renderApp(<ConnectionsPage />);
    expect(await screen.findByText(/No connections yet/)).toBeInTheDocument();
  });

  it('edits with write-only secrets and tests a connection', async () => {
    signIn();
    let put: unknown = null;
    mockFetch({
      'GET /api/v1/aam/connections': { body: { data: [conn] } },
      'PUT /api/v1/aam/connections/c1': (_u, init) => {
        put = JSON.parse(init!.body as string);
        return { body: conn };
      },
      'POST /api/v1/aam/connections/c1/test': { body: { ok: false, message: '401 from HubSpot' } },
    });
    renderApp(<ConnectionsPage />);
    await userEvent.click(await screen.findByRole('button', { name: 'Test' }));
    expect(await screen.findByText(/Connection failed: 401 from HubSpot/)).toBeInTheDocument();

    await userEvent.click(screen.getByRole('button', { name: 'Edit' }));
    const secret = screen.getByLabelText('Access token');
    expect(secret).toHaveAttribute('type', 'password');
    expect(secret).toHaveAttribute('placeholder', 'unchanged');
    expect(secret).toHaveValue('');
    expect(secret).not.toBeRequired();
    await userEvent.click(screen.getByRole('button', { name: 'Save changes' }));
    expect(await screen.findByText('Saved Prod HubSpot.')).toBeInTheDocument();
    expect(put).toEqual({ name: 'Prod HubSpot', system: 'hubspot', interval: '10m', config: { base_url: 'https://api.hubapi.com', objects: ['account', 'contact'] } });
  });

  it('starts a reconciliation and shows the reconcile schedule', async () => {
    signIn();
    let url = '';
    mockFetch({
      'GET /api/v1/aam/connections': { body: { data: [{ ...conn, reconcile: '24h', last_reconcile_at: '2026-11-27T10:00:00Z' }] } },
      'POST /api/v1/aam/connections/c1/sync': (u) => {
        url = String(u);
        return { status: 202, body: { job_id: 'j9' } };
      },
    });
    renderApp(<ConnectionsPage />);
    expect(await screen.findByText(/reconciled every 24h/)).toBeInTheDocument();
    expect(screen.getByText('Last reconciled')).toBeInTheDocument();
    await userEvent.click(screen.getByRole('button', { name: /Reconcile/ }));
    expect(await screen.findByText(/Reconciliation of Prod HubSpot started: job j9/)).toBeInTheDocument();
    expect(url).toContain('/api/v1/aam/connections/c1/sync?mode=reconcile');
  });

  it('creates a connection with its secrets', async () => {
    signIn();
    let posted: Record<string, unknown> | null = null;
    mockFetch({
      'GET /api/v1/aam/connections': { body: { data: [] } },
      'POST /api/v1/aam/connections': (_u, init) => {
        posted = JSON.parse(init!.body as string) as Record<string, unknown>;
        return { status: 201, body: { id: 'c2' } };
      },
    });
    renderApp(<ConnectionsPage />);
    await userEvent.click(await screen.findByRole('button', { name: '+ New connection' }));
    await userEvent.type(screen.getByLabelText('Name'), 'SF');
    await userEvent.type(screen.getByLabelText(/Instance URL/), 'https://x.my.salesforce.com');
    await userEvent.type(screen.getByLabelText(/Client ID/), 'id1');
    await userEvent.type(screen.getByLabelText(/Client secret/), 's3cret');
    await userEvent.click(screen.getByRole('button', { name: 'Create connection' }));
    expect(await screen.findByText(/Created SF/)).toBeInTheDocument();
    expect(posted).toMatchObject({ name: 'SF', system: 'salesforce', secrets: { client_id: 'id1', client_secret: 's3cret' }, config: { instance_url: 'https://x.my.salesforce.com', objects: ['account', 'opportunity', 'contact'] } });
  });
});
