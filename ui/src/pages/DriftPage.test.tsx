import { act, screen, waitFor } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { afterEach, describe, expect, it } from 'vitest';
import { FakeWebSocket, mockFetch, renderApp, signIn } from '../test/helpers';
import { DriftPage } from './DriftPage';

afterEach(() => FakeWebSocket.reset());

const finding = {
  id: 'd1',
  connection_id: 'c1',
  system: 'hubspot',
  object: 'deals',
  severity: 'high',
  added: [{ name: 'amount_usd', samples: ['10.50'], added: true }],
  removed: [{ name: 'amount' }],
  type_changed: [],
  renames: [{ from: 'amount', to: 'amount_usd', score: 0.8 }],
  status: 'open',
  detected_at: '2025-01-01T00:00:00Z',
  proposals: [
    { target: 'amount', source: 'amount_usd', confidence: 0.8, reasons: ['similar name', 'same type'], status: 'queued', proposer: 'matcher' },
    { target: 'close_date', source: 'closing', confidence: 0.4, reasons: [], status: 'queued', proposer: 'matcher' },
  ],
};

describe('DriftPage', () => {
  it('lists findings with proposals, approves the selected ones and counts re-derived records', async () => {
    signIn();
    let approved: unknown = null;
    mockFetch({
      'GET /api/v1/aam/drift': (u) => ({ body: { data: u.searchParams.get('status') === 'open' ? [finding] : [] } }),
      'POST /api/v1/aam/drift/d1/approve': (_u, init) => {
        approved = JSON.parse(init!.body as string);
        return { body: {} };
      },
    });
    renderApp(<DriftPage />);
    expect(await screen.findByText((_t, el) => el?.tagName === 'SPAN' && el.textContent === '80% (needs review)')).toBeInTheDocument();
    expect(screen.getByText('Severity: high')).toBeInTheDocument();
    expect(screen.getByText('similar name')).toBeInTheDocument();
    expect(screen.getByText(/amount → amount_usd/)).toBeInTheDocument();
    await userEvent.click(screen.getByRole('checkbox', { name: 'Include closing → close_date' }));
    await userEvent.click(screen.getByRole('button', { name: '✓ Approve 1 selected' }));
    expect(await screen.findByText(/Approved 1 proposal/)).toBeInTheDocument();
    expect(approved).toEqual({ choices: { amount: 'amount_usd' } });
    expect(screen.getByTestId('rederived')).toHaveTextContent('Waiting for re-derived hubspot records');
    const ws = FakeWebSocket.last();
    act(() => {
      ws.open();
      ws.send({ type: 'record.upserted', seq: 1, entity: 'opportunity', id: 'D1', source_system: 'hubspot', source_object: 'deals' });
      ws.send({ type: 'record.upserted', seq: 2, entity: 'opportunity', id: 'X', source_system: 'salesforce' });
    });
    await waitFor(() => expect(screen.getByTestId('rederived')).toHaveTextContent('1 hubspot record re-derived since approval'));
  });

  it('switches tabs with the arrow keys and shows empty states', async () => {
    signIn();
    mockFetch({ 'GET /api/v1/aam/drift': { body: { data: [] } } });
    renderApp(<DriftPage />);
    expect(await screen.findByText(/No open drift findings/)).toBeInTheDocument();
    const open = screen.getByRole('tab', { name: 'Open' });
    open.focus();
    await userEvent.keyboard('{ArrowRight}');
    expect(screen.getByRole('tab', { name: 'Queued for review' })).toHaveAttribute('aria-selected', 'true');
    expect(screen.getByRole('tab', { name: 'Queued for review' })).toHaveFocus();
    expect(await screen.findByText('No queued findings.')).toBeInTheDocument();
  });
});
