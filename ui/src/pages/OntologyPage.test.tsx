import { screen, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it, vi } from 'vitest';
import { mockFetch, renderApp, signIn } from '../test/helpers';
import { OntologyPage } from './OntologyPage';

const ontology = {
  entities: [
    {
      name: 'opportunity',
      fields: [
        { name: 'opportunity_id', type: 'string', required: true, description: 'Source id.' },
        { name: 'amount', type: 'decimal', required: false, description: 'Deal value.' },
        { name: 'stage', type: 'string', required: false, description: '' },
      ],
      sources: [
        { system: 'salesforce', object: 'Opportunity', mapping_version: 3, fields: [{ target: 'opportunity_id', source: 'Id' }, { target: 'amount', source: 'Amount', transforms: [{ name: 'parse_decimal' }] }] },
      ],
    },
  ],
};

describe('OntologyPage', () => {
  it('shows fields, source fields with transforms, and what is not mapped', async () => {
    signIn();
    mockFetch({ 'GET /api/v1/dcl/ontology': { body: ontology }, 'GET /api/v1/aam/mappings': { body: { data: [] } } });
    renderApp(<OntologyPage />);
    const table = await screen.findByRole('table');
    expect(within(table).getByText('salesforce')).toBeInTheDocument();
    const amount = within(table).getByText('amount').closest('tr')!;
    expect(amount).toHaveTextContent('Amount');
    expect(amount).toHaveTextContent('parse_decimal');
    expect(within(table).getByText('stage').closest('tr')).toHaveTextContent('not mapped');
    expect(within(table).getByText('opportunity_id').closest('th')).toHaveTextContent('required');
    expect(screen.getByText('No mappings are stored yet.')).toBeInTheDocument();
  });

  it('shows versions, a diff and rolls back after confirmation', async () => {
    signIn();
    let rolled: unknown = null;
    mockFetch({
      'GET /api/v1/dcl/ontology': { status: 404 },
      'GET /api/v1/auth/me': { body: { id: 'u', email: 'a@b.c', tenant_id: 't', role: 'admin' } },
      'GET /api/v1/aam/mappings': { body: { data: [{ system: 'hubspot', object: 'deals', entity: 'opportunity', version: 2, author: 'drift-agent', created_at: '2025-01-01T00:00:00Z' }] } },
      'GET /api/v1/aam/mappings/hubspot/deals/versions': { body: { data: [{ system: 'hubspot', object: 'deals', entity: 'opportunity', version: 1 }, { system: 'hubspot', object: 'deals', entity: 'opportunity', version: 2 }] } },
      'GET /api/v1/aam/mappings/hubspot/deals/diff': (u) => ({ body: { diff: `--- v${u.searchParams.get('from')}\n+++ v${u.searchParams.get('to')}\n-  amount: amount\n+  amount: amount_usd\n` } }),
      'POST /api/v1/aam/mappings/hubspot/deals/rollback': (_u, init) => {
        rolled = JSON.parse(init!.body as string);
        return { body: {} };
      },
    });
    vi.spyOn(window, 'confirm').mockReturnValue(true);
    renderApp(<OntologyPage />);
    expect(await screen.findByText('Ontology: not available on this server')).toBeInTheDocument();
    await userEvent.click(await screen.findByRole('button', { name: 'History' }));
    expect(await screen.findByText('+ amount: amount_usd')).toHaveClass('diff-add');
    expect(screen.getByText('- amount: amount')).toHaveClass('diff-del');
    await userEvent.click(screen.getByRole('button', { name: 'Roll back to v1' }));
    expect(await screen.findByText(/Rolled hubspot\/deals back to v1/)).toBeInTheDocument();
    expect(rolled).toEqual({ version: 1 });
  });
});
