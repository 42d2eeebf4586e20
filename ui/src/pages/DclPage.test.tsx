import { act, fireEvent, screen, waitFor, within } from '@testing-library/react';
import { afterEach, describe, expect, it } from 'vitest';
import { FakeWebSocket, mockFetch, renderApp, signIn } from '../test/helpers';
import { DclPage } from './DclPage';

afterEach(() => FakeWebSocket.reset());

const graph = {
  nodes: [
    { id: 'system:filesource', label: 'filesource', kind: 'system' },
    { id: 'object:filesource/opportunity', label: 'opportunity', kind: 'object' },
    { id: 'entity:opportunity', label: 'Opportunity', kind: 'entity' },
    { id: 'table:opportunities', label: 'opportunities', kind: 'table' },
  ],
  links: [
    { source: 'system:filesource', target: 'object:filesource/opportunity', value: 2 },
    { source: 'object:filesource/opportunity', target: 'entity:opportunity', value: 2, mapped_fields: 9, extras_fields: 1 },
    { source: 'entity:opportunity', target: 'table:opportunities', value: 2 },
  ],
};

const state = {
  counts: [{ entity: 'opportunity', source_system: 'filesource', count: 2 }],
  recent_events: [{ type: 'record.upserted', entity: 'opportunity', id: 'OPP-OLD', source_system: 'filesource', trace_id: 'trace-old', time: '2025-01-01T00:00:00Z' }],
  consumers: [],
  dlq_depth: 0,
  active_jobs: 0,
  open_drift: 0,
};

const rows = {
  data: [
    { opportunity_id: 'OPP-1', name: 'Big deal', account_id: 'ACC-1', stage: 'Closed Won', amount: '1000.500000000', currency: 'USD', close_date: '2025-03-01', probability: 90, extras: { region: 'EU' }, source_system: 'filesource', source_updated_at: '2025-01-02T00:00:00Z', event_id: 'ev1', tenant_id: 't' },
  ],
  next_cursor: null,
};

const linkValue = (key: string) => document.querySelector(`[data-link="${key}"]`)?.getAttribute('data-value');

describe('DclPage', () => {
  it('draws the graph, grows links from live events in place, logs them, and opens records', async () => {
    signIn();
    const { calls } = mockFetch({
      'GET /dcl/graph': { body: graph },
      'GET /dcl/state': { body: state },
      'GET /api/v1/dcl/views/opportunities': { body: rows },
    });
    renderApp(<DclPage />);
    expect(screen.getByText('Loading the data-flow graph…')).toBeInTheDocument();
    const entityNode = await screen.findByRole('button', { name: /Opportunity, Entity, 2 records/ });
    expect(screen.getByText(/OPP-OLD/)).toBeInTheDocument();
    expect(screen.getByText('trace-old')).toBeInTheDocument();

    const key = 'system:filesource\u2192object:filesource/opportunity';
    expect(linkValue(key)).toBe('2');
    const pathBefore = document.querySelector(`[data-link="${key}"]`);

    await waitFor(() => expect(FakeWebSocket.instances.length).toBeGreaterThan(0));
    const ws = FakeWebSocket.last();
    act(() => {
      ws.open();
      ws.send({ type: 'record.upserted', seq: 1, entity: 'opportunity', id: 'OPP-NEW', source_system: 'filesource', source_object: 'opportunity', trace_id: 'trace-new', time: '2025-01-02T00:00:00Z' });
      ws.send({ type: 'record.upserted', seq: 2, entity: 'opportunity', id: 'OPP-NEW2', source_system: 'filesource', source_object: 'opportunity', trace_id: 'trace-new2', time: '2025-01-02T00:00:01Z' });
    });
    await waitFor(() => expect(linkValue(key)).toBe('4'));
    // Same DOM element: updated in place, not re-created.
    expect(document.querySelector(`[data-link="${key}"]`)).toBe(pathBefore);
    expect(linkValue('entity:opportunity\u2192table:opportunities')).toBe('4');
    const log = screen.getByTestId('event-log');
    expect(within(log).getByText(/OPP-NEW2 upserted/)).toBeInTheDocument();
    expect(within(log).getByText('trace-new2')).toBeInTheDocument();
    expect(screen.getByTestId('flow-total')).toHaveTextContent('2 streamed since you opened this page');

    fireEvent.click(entityNode);
    expect(await screen.findByText('Big deal')).toBeInTheDocument();
    expect(screen.getByText('1,000.50 USD')).toBeInTheDocument();
    expect(calls.some((c) => c.url.pathname === '/api/v1/dcl/views/opportunities' && c.url.searchParams.get('limit') === '25')).toBe(true);
    fireEvent.click(screen.getByRole('button', { name: 'OPP-1' }));
    expect(screen.getByText(/"region": "EU"/)).toBeInTheDocument();
  });

  it('opens records from the keyboard', async () => {
    signIn();
    mockFetch({ 'GET /dcl/graph': { body: graph }, 'GET /dcl/state': { body: state }, 'GET /api/v1/dcl/views/opportunities': { body: { data: [], next_cursor: null } } });
    renderApp(<DclPage />);
    const node = await screen.findByRole('button', { name: /Opportunity, Entity/ });
    node.focus();
    fireEvent.keyDown(node, { key: 'Enter' });
    expect(await screen.findByText(/No opportunities yet/)).toBeInTheDocument();
  });

  it('shows an empty graph and a missing endpoint honestly', async () => {
    signIn();
    mockFetch({ 'GET /dcl/graph': { body: { nodes: [], links: [] } } });
    renderApp(<DclPage />);
    expect(await screen.findByText(/No data has flowed yet/)).toBeInTheDocument();
    expect(await screen.findByText('Recent events: not available on this server')).toBeInTheDocument();
  });

  it('shows a graph error', async () => {
    signIn();
    mockFetch({ 'GET /dcl/graph': { status: 503, body: { error: { code: 'unavailable', message: 'nats down', trace_id: 'x' } } }, 'GET /dcl/state': { body: state } });
    renderApp(<DclPage />);
    expect(await screen.findByText('nats down')).toBeInTheDocument();
  });
});
