import { Fragment, useState } from 'react';
import { keepPreviousData, useQuery } from '@tanstack/react-query';
import { ID_FIELD, api } from '../api/endpoints';
import type { ViewName } from '../api/types';
import { formatDecimal, formatNumber, formatTime, shortId } from '../lib/format';
import { VIEW_LABEL, latestFirst } from '../lib/records';
import { QueryView } from './States';
import { TableWrap } from './TableWrap';

type Cell = { header: string; get: (r: Record<string, unknown>) => string };

const s = (v: unknown): string => (v === null || v === undefined || v === '' ? '—' : String(v));

const COLUMNS: Record<ViewName, Cell[]> = {
  accounts: [
    { header: 'Name', get: (r) => s(r.name) },
    { header: 'Industry', get: (r) => s(r.industry) },
    { header: 'Annual revenue', get: (r) => formatDecimal(r.annual_revenue as string | null) },
    { header: 'Employees', get: (r) => (typeof r.employee_count === 'number' ? formatNumber(r.employee_count) : s(r.employee_count)) },
    { header: 'Website', get: (r) => s(r.website) },
  ],
  opportunities: [
    { header: 'Name', get: (r) => s(r.name) },
    { header: 'Account', get: (r) => s(r.account_id) },
    { header: 'Stage', get: (r) => s(r.stage) },
    { header: 'Amount', get: (r) => formatDecimal(r.amount as string | null, r.currency as string | null) },
    { header: 'Close date', get: (r) => s(r.close_date) },
    { header: 'Probability', get: (r) => (r.probability === null || r.probability === undefined ? '—' : `${String(r.probability)}%`) },
  ],
  contacts: [
    { header: 'Name', get: (r) => [r.first_name, r.last_name].filter(Boolean).join(' ') || '—' },
    { header: 'Email', get: (r) => s(r.email) },
    { header: 'Phone', get: (r) => s(r.phone) },
    { header: 'Title', get: (r) => s(r.title) },
    { header: 'Account', get: (r) => s(r.account_id) },
  ],
};

export function RecordViewer({ view, limit = 25 }: { view: ViewName; limit?: number }) {
  const [cursor, setCursor] = useState<string | null>(null);
  const [history, setHistory] = useState<(string | null)[]>([]);
  const [open, setOpen] = useState<string | null>(null);
  const [currentView, setCurrentView] = useState(view);
  if (currentView !== view) {
    setCurrentView(view);
    setCursor(null);
    setHistory([]);
    setOpen(null);
  }

  const q = useQuery({
    queryKey: ['view', view, cursor, limit],
    queryFn: () => api.view(view, { limit, cursor: cursor ?? undefined }),
    placeholderData: keepPreviousData,
    // Record events can arrive before the subscriber has written the row;
    // a slow poll makes sure the viewer catches up.
    refetchInterval: 5000,
  });
  const idField = ID_FIELD[view];
  const cols = COLUMNS[view];

  return (
    <div className="record-viewer" data-view={view}>
      <QueryView
        query={q}
        what={VIEW_LABEL[view]}
        isEmpty={(d) => !d.data || d.data.length === 0}
        empty={`No ${VIEW_LABEL[view].toLowerCase()} yet. Upload a CSV or run a connection to see records here.`}
      >
        {(page) => (
          <>
            <TableWrap label={`Latest ${VIEW_LABEL[view].toLowerCase()}`}>
              <table className="table records">
                <caption className="sr-only">Latest {VIEW_LABEL[view].toLowerCase()}, newest source update first within this page</caption>
                <thead>
                  <tr>
                    <th scope="col">ID</th>
                    {cols.map((c) => (
                      <th scope="col" key={c.header}>
                        {c.header}
                      </th>
                    ))}
                    <th scope="col">Source</th>
                    <th scope="col">Source updated</th>
                  </tr>
                </thead>
                <tbody>
                  {latestFirst(page.data).map((row) => {
                    const r = row as unknown as Record<string, unknown>;
                    const id = s(r[idField]);
                    const isOpen = open === id;
                    return (
                      <Fragment key={id}>
                        <tr data-record-id={id} className={isOpen ? 'expanded' : undefined}>
                          <td>
                            <button
                              type="button"
                              className="link-button mono"
                              aria-expanded={isOpen}
                              onClick={() => setOpen(isOpen ? null : id)}
                              title="Show every field"
                            >
                              {id}
                            </button>
                          </td>
                          {cols.map((c) => (
                            <td key={c.header}>{c.get(r)}</td>
                          ))}
                          <td>{s(r.source_system)}</td>
                          <td>{formatTime(r.source_updated_at as string | undefined)}</td>
                        </tr>
                        {isOpen ? (
                          <tr className="record-detail">
                            <td colSpan={cols.length + 3}>
                              <RecordDetail row={r} />
                            </td>
                          </tr>
                        ) : null}
                      </Fragment>
                    );
                  })}
                </tbody>
              </table>
            </TableWrap>
            <div className="pager">
              <button
                type="button"
                className="btn btn-small"
                disabled={history.length === 0}
                onClick={() => {
                  const prev = history[history.length - 1] ?? null;
                  setHistory(history.slice(0, -1));
                  setCursor(prev);
                }}
              >
                ← Previous
              </button>
              <span className="muted small">
                {page.data.length} row{page.data.length === 1 ? '' : 's'}
                {q.isFetching ? ' · refreshing…' : ''}
              </span>
              <button
                type="button"
                className="btn btn-small"
                disabled={!page.next_cursor}
                onClick={() => {
                  setHistory([...history, cursor]);
                  setCursor(page.next_cursor ?? null);
                }}
              >
                Next →
              </button>
            </div>
          </>
        )}
      </QueryView>
    </div>
  );
}

function RecordDetail({ row }: { row: Record<string, unknown> }) {
  const { extras, ...rest } = row;
  return (
    <div className="record-detail-body">
      <dl className="kv">
        {Object.entries(rest).map(([k, v]) => (
          <div key={k}>
            <dt>{k}</dt>
            <dd className={k.endsWith('_id') || k === 'event_id' ? 'mono' : undefined}>
              {k === 'event_id' ? <span title={s(v)}>{shortId(s(v), 16)}</span> : typeof v === 'object' && v !== null ? JSON.stringify(v) : s(v)}
            </dd>
          </div>
        ))}
      </dl>
      <h4>Extras (unmapped source fields)</h4>
      {extras && typeof extras === 'object' && Object.keys(extras).length > 0 ? (
        <pre className="code">{JSON.stringify(extras, null, 2)}</pre>
      ) : (
        <p className="muted small">None: every source field was mapped.</p>
      )}
    </div>
  );
}
