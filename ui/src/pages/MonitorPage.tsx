import { useState } from 'react';
import { useInfiniteQuery, useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { api, listOf } from '../api/endpoints';
import type { Connection, Job } from '../api/types';
import { useCanEdit } from '../auth/AuthContext';
import { JobProgress } from '../components/JobProgress';
import { PageHeader } from '../components/Layout';
import { MetricCard } from '../components/MetricCard';
import { ActionMessage, Empty, ErrorNotice, Loading, QueryView } from '../components/States';
import { StatusBadge } from '../components/StatusBadge';
import { TableWrap } from '../components/TableWrap';
import { formatDuration, formatNumber, formatPercent, formatRelative, formatTime, humanize, isJobActive, lagText, shortId } from '../lib/format';

export function MonitorPage() {
  return (
    <>
      <PageHeader title="AAM Monitor" />
      <MetricsSection />
      <ComponentsSection />
      <ConnectionsHealth />
      <JobsSection />
      <ConsumersSection />
      <EventsSection />
      <DlqSection />
    </>
  );
}

function MetricsSection() {
  const q = useQuery({ queryKey: ['metrics'], queryFn: api.metrics, refetchInterval: 15_000 });
  return (
    <section className="section" aria-labelledby="metrics-title">
      <h2 id="metrics-title">Metrics</h2>
      <QueryView query={q} what="Metrics">
        {(m) => (
          <div className="metrics">
            <MetricCard label="Total connections" value={formatNumber(m.total_connections)} />
            <MetricCard label="Active connections" value={formatNumber(m.active_connections)} />
            <MetricCard label="Drift detections (24 h)" value={formatNumber(m.drift_detections_24h)} />
            <MetricCard label="Successful repairs (24 h)" value={formatNumber(m.successful_repairs_24h)} />
            <MetricCard label="Manual reviews pending" value={formatNumber(m.manual_reviews_pending)} />
            <MetricCard
              label="Average repair confidence"
              value={formatPercent(m.average_confidence)}
              hint={m.average_confidence === null ? 'No repairs yet' : undefined}
            />
            <MetricCard
              label="Average repair time"
              value={formatDuration(m.average_repair_time_ms)}
              hint={m.average_repair_time_ms === null ? 'No repairs yet' : undefined}
            />
          </div>
        )}
      </QueryView>
    </section>
  );
}

function ComponentsSection() {
  const q = useQuery({ queryKey: ['aamStatus'], queryFn: api.aamStatus, refetchInterval: 15_000 });
  return (
    <section className="section" aria-labelledby="components-title">
      <div className="section-head">
        <h2 id="components-title">System health</h2>
        {q.data ? <StatusBadge status={q.data.status} /> : null}
      </div>
      <QueryView query={q} what="System health" isEmpty={(s) => (s.components ?? []).length === 0} empty="The server reported no components.">
        {(s) => (
          <ul className="health-list">
            {s.components.map((c) => (
              <li key={c.name}>
                <StatusBadge status={c.status} />
                <span className="health-name">{c.name}</span>
                {c.detail ? <span className="muted small">{c.detail}</span> : null}
              </li>
            ))}
          </ul>
        )}
      </QueryView>
    </section>
  );
}

function SyncButton({ connection, onStarted }: { connection: Connection; onStarted: (msg: string) => void }) {
  const qc = useQueryClient();
  const canEdit = useCanEdit();
  const m = useMutation({
    mutationFn: () => api.syncConnection(connection.id),
    onSuccess: (r) => {
      onStarted(`Sync of ${connection.name} started: job ${r?.job_id ?? '(no id returned)'}.`);
      void qc.invalidateQueries({ queryKey: ['jobs'] });
    },
  });
  return (
    <>
      <button
        type="button"
        className="btn btn-small"
        disabled={!canEdit || m.isPending || connection.status === 'PAUSED'}
        onClick={() => m.mutate()}
        aria-label={`Sync ${connection.name} now`}
        title={connection.status === 'PAUSED' ? 'Resume the connection first' : undefined}
      >
        {m.isPending ? 'Starting…' : '↻ Sync now'}
      </button>
      {m.isError ? <ErrorNotice error={m.error} /> : null}
    </>
  );
}

function ConnectionsHealth() {
  const q = useQuery({ queryKey: ['connections'], queryFn: api.connections, refetchInterval: 30_000 });
  const [message, setMessage] = useState<string | null>(null);
  return (
    <section className="section" aria-labelledby="conn-title">
      <h2 id="conn-title">Connection health</h2>
      <ActionMessage success={message} />
      <QueryView query={q} what="Connections" isEmpty={(d) => listOf(d).length === 0} empty="No connections yet. Create one on the Connections page.">
        {(d) => (
          <TableWrap label="Connection health">
            <table className="table">
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">System</th>
                  <th scope="col">Status</th>
                  <th scope="col">Last sync</th>
                  <th scope="col">Lag</th>
                  <th scope="col">Last error</th>
                  <th scope="col">
                    <span className="sr-only">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {listOf(d).map((c) => (
                  <tr key={c.id}>
                    <td>{c.name}</td>
                    <td>{c.system}</td>
                    <td>
                      <StatusBadge status={c.status} />
                    </td>
                    <td>{c.last_sync_at ? <time dateTime={c.last_sync_at} title={formatTime(c.last_sync_at)}>{formatRelative(c.last_sync_at)}</time> : 'never'}</td>
                    <td>{lagText(c)}</td>
                    <td className="wrap">{c.last_error ? <span className="text-bad">✕ {c.last_error}</span> : <span className="muted">none</span>}</td>
                    <td>
                      <SyncButton connection={c} onStarted={setMessage} />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </TableWrap>
        )}
      </QueryView>
    </section>
  );
}

function CancelJob({ job }: { job: Job }) {
  const qc = useQueryClient();
  const canEdit = useCanEdit();
  const m = useMutation({
    mutationFn: () => api.cancelJob(job.id),
    onSettled: () => void qc.invalidateQueries({ queryKey: ['jobs'] }),
  });
  if (!isJobActive(job.status)) return null;
  return (
    <>
      <button type="button" className="btn btn-small" disabled={!canEdit || m.isPending} onClick={() => m.mutate()}>
        {m.isPending ? 'Cancelling…' : 'Cancel'}
      </button>
      {m.isError ? <ErrorNotice error={m.error} /> : null}
    </>
  );
}

function JobsSection() {
  const q = useQuery({
    queryKey: ['jobs'],
    queryFn: api.jobs,
    // Live updates arrive over the WebSocket; poll too while something runs.
    refetchInterval: (query) => (listOf(query.state.data).some((j) => isJobActive(j.status)) ? 3000 : 30_000),
  });
  return (
    <section className="section" aria-labelledby="jobs-title">
      <h2 id="jobs-title">Jobs</h2>
      <QueryView query={q} what="Jobs" isEmpty={(d) => listOf(d).length === 0} empty="No jobs yet. Upload a CSV or sync a connection.">
        {(d) => (
          <ul className="job-list">
            {[...listOf(d)]
              .sort((a, b) => (Date.parse(b.created_at ?? '') || 0) - (Date.parse(a.created_at ?? '') || 0))
              .slice(0, 10)
              .map((j) => (
                <li key={j.id} className="card">
                  <JobProgress job={j} maxErrors={20} errorsOpen={false} />
                  <CancelJob job={j} />
                </li>
              ))}
          </ul>
        )}
      </QueryView>
    </section>
  );
}

function ConsumersSection() {
  const q = useQuery({ queryKey: ['state'], queryFn: api.state });
  return (
    <section className="section" aria-labelledby="consumers-title">
      <h2 id="consumers-title">Stream consumers</h2>
      <QueryView query={q} what="Consumers" isEmpty={(s) => (s.consumers ?? []).length === 0} empty="The server reported no durable consumers.">
        {(s) => (
          <TableWrap label="Stream consumers">
            <table className="table">
              <thead>
                <tr>
                  <th scope="col">Consumer</th>
                  <th scope="col">State</th>
                  <th scope="col" className="num">
                    Pending (lag)
                  </th>
                  <th scope="col" className="num">
                    Awaiting ack
                  </th>
                  <th scope="col" className="num">
                    Redelivered
                  </th>
                </tr>
              </thead>
              <tbody>
                {s.consumers.map((c) => (
                  <tr key={c.name}>
                    <td className="mono">{c.name}</td>
                    <td>
                      <StatusBadge status={c.stalled ? 'degraded' : 'ok'} label={c.stalled ? 'Stalled at max ack pending' : 'Flowing'} />
                    </td>
                    <td className="num">{formatNumber(c.pending)}</td>
                    <td className="num">{formatNumber(c.ack_pending)}</td>
                    <td className="num">{formatNumber(c.redelivered)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </TableWrap>
        )}
      </QueryView>
    </section>
  );
}

function EventsSection() {
  const q = useInfiniteQuery({
    queryKey: ['events'],
    queryFn: ({ pageParam }) => api.events(pageParam, 25),
    initialPageParam: null as string | null,
    getNextPageParam: (last) => last.next_cursor ?? undefined,
    refetchInterval: 30_000,
  });
  const events = q.data?.pages.flatMap((p) => p.data ?? []) ?? [];
  return (
    <section className="section" aria-labelledby="events-title">
      <h2 id="events-title">Recent events</h2>
      {q.isPending ? (
        <Loading label="Loading events…" />
      ) : q.isError ? (
        <ErrorNotice error={q.error} what="Events" onRetry={() => void q.refetch()} />
      ) : events.length === 0 ? (
        <Empty>No sync, drift, repair or dead-letter events yet.</Empty>
      ) : (
        <>
          <ol className="event-log">
            {events.map((e) => (
              <li key={e.id} className="event" data-type={e.type}>
                <time className="event-time" dateTime={e.time} title={formatTime(e.time)}>
                  {formatRelative(e.time)}
                </time>
                <span className="event-type">{humanize(e.type)}</span>
                <span className="event-text">{e.message}</span>
                {e.connection_id ? <span className="muted small mono">{shortId(e.connection_id, 10)}</span> : null}
              </li>
            ))}
          </ol>
          {q.hasNextPage ? (
            <button type="button" className="btn btn-small" disabled={q.isFetchingNextPage} onClick={() => void q.fetchNextPage()}>
              {q.isFetchingNextPage ? 'Loading…' : 'Load older events'}
            </button>
          ) : null}
        </>
      )}
    </section>
  );
}

function DlqSection() {
  const qc = useQueryClient();
  const canEdit = useCanEdit();
  const q = useInfiniteQuery({
    queryKey: ['dlq'],
    queryFn: ({ pageParam }) => api.dlq(pageParam, 50),
    initialPageParam: null as string | null,
    getNextPageParam: (last) => last.next_cursor ?? undefined,
  });
  const [selected, setSelected] = useState<Set<number>>(new Set());
  const [done, setDone] = useState<string | null>(null);
  const redrive = useMutation({
    mutationFn: (what: number[] | 'all') => api.redrive(what),
    onSuccess: (_r, what) => {
      setDone(what === 'all' ? 'Every dead-lettered message was sent back for processing.' : `${what.length} message${what.length === 1 ? '' : 's'} sent back for processing.`);
      setSelected(new Set());
      void qc.invalidateQueries({ queryKey: ['dlq'] });
      void qc.invalidateQueries({ queryKey: ['state'] });
    },
  });
  const entries = q.data?.pages.flatMap((p) => p.data ?? []) ?? [];
  const toggle = (seq: number) => {
    const next = new Set(selected);
    if (next.has(seq)) next.delete(seq);
    else next.add(seq);
    setSelected(next);
  };
  return (
    <section className="section" aria-labelledby="dlq-title" id="dlq">
      <div className="section-head">
        <h2 id="dlq-title">Dead-letter queue</h2>
        {entries.length > 0 ? (
          <div className="toolbar">
            <button type="button" className="btn btn-small" disabled={!canEdit || selected.size === 0 || redrive.isPending} onClick={() => redrive.mutate([...selected])}>
              Redrive selected ({selected.size})
            </button>
            <button
              type="button"
              className="btn btn-small"
              disabled={!canEdit || redrive.isPending}
              onClick={() => {
                if (window.confirm('Send every dead-lettered message back for processing?')) redrive.mutate('all');
              }}
            >
              Redrive all
            </button>
          </div>
        ) : null}
      </div>
      <ActionMessage error={redrive.error} success={done} />
      {q.isPending ? (
        <Loading label="Loading the dead-letter queue…" />
      ) : q.isError ? (
        <ErrorNotice error={q.error} what="Dead-letter queue" onRetry={() => void q.refetch()} />
      ) : entries.length === 0 ? (
        <Empty>The dead-letter queue is empty: every message was processed.</Empty>
      ) : (
        <>
          <TableWrap label="Dead-lettered messages">
            <table className="table">
              <thead>
                <tr>
                  <th scope="col">
                    <span className="sr-only">Select</span>
                  </th>
                  <th scope="col">Seq</th>
                  <th scope="col">Stage</th>
                  <th scope="col">Reason</th>
                  <th scope="col">Subject</th>
                  <th scope="col" className="num">
                    Attempts
                  </th>
                  <th scope="col">Trace</th>
                  <th scope="col">Time</th>
                </tr>
              </thead>
              <tbody>
                {entries.map((e) => (
                  <tr key={e.seq}>
                    <td>
                      <input type="checkbox" checked={selected.has(e.seq)} onChange={() => toggle(e.seq)} aria-label={`Select message ${e.seq}`} />
                    </td>
                    <td className="mono">{e.seq}</td>
                    <td>{e.stage}</td>
                    <td className="wrap">{e.reason}</td>
                    <td className="mono small">{e.subject}</td>
                    <td className="num">{formatNumber(e.attempts)}</td>
                    <td className="mono small">{e.trace_id ?? '—'}</td>
                    <td>{formatTime(e.time)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </TableWrap>
          {q.hasNextPage ? (
            <button type="button" className="btn btn-small" disabled={q.isFetchingNextPage} onClick={() => void q.fetchNextPage()}>
              {q.isFetchingNextPage ? 'Loading…' : 'Load more'}
            </button>
          ) : null}
        </>
      )}
    </section>
  );
}
