import { useCallback, useEffect, useReducer, useRef, useState } from 'react';
import { useQuery } from '@tanstack/react-query';
import { api, viewFor } from '../api/endpoints';
import type { Graph, LiveMessage, RecordEvent, ViewName } from '../api/types';
import { EventLog } from '../components/EventLog';
import { LiveIndicator, PageHeader } from '../components/Layout';
import { RecordViewer } from '../components/RecordViewer';
import { Sankey } from '../components/Sankey';
import { Empty, ErrorNotice, Loading } from '../components/States';
import { TableWrap } from '../components/TableWrap';
import { describeEvent, entryIdentity, pushEntries, type LogEntry } from '../lib/events';
import { formatNumber, parseTime } from '../lib/format';
import { fieldCount, initialLiveGraph, liveGraphReducer, totalFlow } from '../lib/graph';
import { VIEW_LABEL } from '../lib/records';
import { useLiveMessages } from '../live/LiveContext';

const FLUSH_MS = 250;
/** After the flow quiets down, re-read /dcl/graph so every number is the server's. */
const RECONCILE_MS = 4000;

type Filter = 'all' | 'record' | 'job' | 'drift' | 'dlq' | 'connection';

const matchesFilter = (e: LogEntry, f: Filter) => f === 'all' || e.type.startsWith(`${f}.`);

export function DclPage() {
  const graphQuery = useQuery({ queryKey: ['graph'], queryFn: api.graph, refetchOnWindowFocus: false });
  const stateQuery = useQuery({ queryKey: ['state'], queryFn: api.state });
  const [live, dispatch] = useReducer(liveGraphReducer, initialLiveGraph);
  const [seenGraph, setSeenGraph] = useState<Graph | undefined>(undefined);
  if (graphQuery.data && graphQuery.data !== seenGraph) {
    setSeenGraph(graphQuery.data);
    dispatch({ type: 'fresh', graph: graphQuery.data });
  }

  // Event log: seeded once from /dcl/state, then live.
  const [entries, setEntries] = useState<LogEntry[]>([]);
  const [seeded, setSeeded] = useState(false);
  if (!seeded && stateQuery.data) {
    setSeeded(true);
    const recent = [...(stateQuery.data.recent_events ?? [])].sort(
      (a, b) => (parseTime(a.time)?.getTime() ?? 0) - (parseTime(b.time)?.getTime() ?? 0),
    );
    const seededEntries = pushEntries([], recent.map((e) => describeEvent(e)).filter((e): e is LogEntry => e !== null));
    // Live events that arrived before the snapshot stay on top; duplicates go.
    setEntries((live) => {
      const seen = new Set(live.map(entryIdentity));
      return [...live, ...seededEntries.filter((e) => !seen.has(entryIdentity(e)))].slice(0, 200);
    });
  }
  const [paused, setPaused] = useState(false);
  const [held, setHeld] = useState<LogEntry[]>([]);
  const [filter, setFilter] = useState<Filter>('all');
  const [view, setView] = useState<ViewName | null>(null);
  const viewerRef = useRef<HTMLElement>(null);

  // Batch live messages so 10,000 records do not mean 10,000 renders.
  const buffer = useRef<LiveMessage[]>([]);
  const flushTimer = useRef<ReturnType<typeof setTimeout> | null>(null);
  const reconcileTimer = useRef<ReturnType<typeof setTimeout> | null>(null);
  const pausedRef = useRef(paused);
  useEffect(() => {
    pausedRef.current = paused;
  }, [paused]);
  const refetchGraph = graphQuery.refetch;

  const flush = useCallback(() => {
    flushTimer.current = null;
    const batch = buffer.current;
    buffer.current = [];
    if (batch.length === 0) return;
    const records = batch.filter((m): m is RecordEvent => m.type === 'record.upserted' || m.type === 'record.deleted');
    if (records.length) {
      dispatch({ type: 'events', events: records });
      if (reconcileTimer.current) clearTimeout(reconcileTimer.current);
      reconcileTimer.current = setTimeout(() => void refetchGraph(), RECONCILE_MS);
    }
    const now = new Date().toISOString();
    const lines = batch.map((m) => describeEvent(m, now)).filter((e): e is LogEntry => e !== null);
    if (lines.length) {
      if (pausedRef.current) setHeld((h) => pushEntries(h, lines, 500));
      else setEntries((prev) => pushEntries(prev, lines));
    }
  }, [refetchGraph]);

  useLiveMessages((msg) => {
    buffer.current.push(msg);
    if (!flushTimer.current) flushTimer.current = setTimeout(flush, FLUSH_MS);
  });

  useEffect(
    () => () => {
      if (flushTimer.current) clearTimeout(flushTimer.current);
      if (reconcileTimer.current) clearTimeout(reconcileTimer.current);
    },
    [],
  );

  // Events for nodes the graph does not have yet: fetch the graph again.
  useEffect(() => {
    if (live.unmatched === 0) return;
    const t = setTimeout(() => void refetchGraph(), 1000);
    return () => clearTimeout(t);
  }, [live.unmatched, refetchGraph]);

  const onSelect = useCallback((node: { id: string; label: string }) => {
    const v = viewFor(node.label) ?? viewFor(node.id);
    if (v) {
      setView(v);
      requestAnimationFrame(() => viewerRef.current?.scrollIntoView?.({ behavior: 'smooth', block: 'start' }));
    }
  }, []);
  const isSelectable = useCallback(
    (node: { id: string; label: string; kind: string }) =>
      (node.kind === 'entity' || node.kind === 'table') && (viewFor(node.label) ?? viewFor(node.id)) !== null,
    [],
  );

  const selectedNode = view && live.graph ? (live.graph.nodes.find((n) => n.kind === 'entity' && (viewFor(n.label) ?? viewFor(n.id)) === view)?.id ?? null) : null;
  const shown = entries.filter((e) => matchesFilter(e, filter));

  return (
    <>
      <PageHeader title="DCL · live data flow">
        <LiveIndicator />
      </PageHeader>

      <section className="panel" aria-labelledby="graph-title">
        <div className="panel-head">
          <h2 id="graph-title">Source systems → canonical entities → tables</h2>
          {live.graph ? (
            <span className="muted small" data-testid="flow-total">
              {formatNumber(totalFlow(live.graph))} records in the graph · {formatNumber(live.applied)} streamed since you opened this page
            </span>
          ) : null}
        </div>
        {graphQuery.isError && !live.graph ? (
          <ErrorNotice error={graphQuery.error} what="Data-flow graph" onRetry={() => void graphQuery.refetch()} />
        ) : !live.graph ? (
          <Loading label="Loading the data-flow graph…" />
        ) : live.graph.nodes.length === 0 ? (
          <Empty>No data has flowed yet. Upload a CSV or create a connection and the graph fills in as records arrive.</Empty>
        ) : (
          <>
            <p className="muted small">Select an entity or table to see its latest records. Links grow as records stream in.</p>
            <Sankey graph={live.graph} pulses={live.pulses} selectedId={selectedNode} onSelect={onSelect} isSelectable={isSelectable} />
            {graphQuery.isError ? <ErrorNotice error={graphQuery.error} what="Graph refresh" /> : null}
            <details className="graph-table">
              <summary>Show the graph as a table</summary>
              <TableWrap label="Graph links">
                <table className="table">
                  <thead>
                    <tr>
                      <th scope="col">From</th>
                      <th scope="col">To</th>
                      <th scope="col">Records</th>
                      <th scope="col">Mapped fields</th>
                      <th scope="col">Fields in extras</th>
                    </tr>
                  </thead>
                  <tbody>
                    {live.graph.links.map((l) => {
                      const label = (id: string) => live.graph?.nodes.find((n) => n.id === id)?.label ?? id;
                      return (
                        <tr key={`${l.source}-${l.target}`}>
                          <td>{label(l.source)}</td>
                          <td>{label(l.target)}</td>
                          <td className="num">{formatNumber(l.value)}</td>
                          <td className="num">{formatNumber(fieldCount(l.mapped_fields))}</td>
                          <td className="num">{formatNumber(fieldCount(l.extras_fields))}</td>
                        </tr>
                      );
                    })}
                  </tbody>
                </table>
              </TableWrap>
            </details>
          </>
        )}
      </section>

      <div className="split">
        <section className="panel" aria-labelledby="log-title">
          <div className="panel-head">
            <h2 id="log-title">Event log</h2>
            <div className="toolbar">
              <label className="inline-field">
                <span>Show</span>
                <select value={filter} onChange={(e) => setFilter(e.target.value as Filter)}>
                  <option value="all">All events</option>
                  <option value="record">Records</option>
                  <option value="job">Jobs</option>
                  <option value="drift">Drift</option>
                  <option value="dlq">Dead letters</option>
                  <option value="connection">Connections</option>
                </select>
              </label>
              <button
                type="button"
                className="btn btn-small"
                aria-pressed={paused}
                onClick={() => {
                  if (paused) {
                    setEntries((prev) => [...held, ...prev].slice(0, 200));
                    setHeld([]);
                  }
                  setPaused(!paused);
                }}
              >
                {paused ? `▶ Resume${held.length ? ` (${held.length} new)` : ''}` : '❚❚ Pause'}
              </button>
            </div>
          </div>
          {stateQuery.isPending && entries.length === 0 ? (
            <Loading label="Loading recent events…" />
          ) : (
            <>
              {stateQuery.isError ? <ErrorNotice error={stateQuery.error} what="Recent events" /> : null}
              {stateQuery.isError && entries.length === 0 ? null : (
                <div className="event-log-scroll" data-testid="event-log">
                  <EventLog entries={shown} emptyText="No events yet. They appear here as records flow." />
                </div>
              )}
            </>
          )}
        </section>

        <section className="panel" aria-labelledby="records-title" ref={viewerRef}>
          <div className="panel-head">
            <h2 id="records-title">Records{view ? `: ${VIEW_LABEL[view]}` : ''}</h2>
            <label className="inline-field">
              <span>Entity</span>
              <select value={view ?? ''} onChange={(e) => setView((e.target.value || null) as ViewName | null)}>
                <option value="">Choose…</option>
                <option value="accounts">Accounts</option>
                <option value="opportunities">Opportunities</option>
                <option value="contacts">Contacts</option>
              </select>
            </label>
          </div>
          {view ? <RecordViewer view={view} /> : <Empty>Select an entity in the graph (or above) to see its latest records.</Empty>}
        </section>
      </div>
    </>
  );
}
