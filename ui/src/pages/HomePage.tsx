import { useQuery } from '@tanstack/react-query';
import { Link } from 'react-router';
import { api } from '../api/endpoints';
import { PageHeader } from '../components/Layout';
import { MetricCard } from '../components/MetricCard';
import { QueryView } from '../components/States';
import { formatCompact, formatNumber, humanize } from '../lib/format';
import { entityTotals } from '../lib/state';

const SECTIONS = [
  { to: '/live', title: 'DCL', text: 'Watch records flow from each source system into the canonical model, live, and open the latest records.' },
  { to: '/monitor', title: 'AAM Monitor', text: 'Connection health, sync jobs, recent events and the dead-letter queue.' },
  { to: '/ontology', title: 'Ontology', text: 'The canonical fields, which source field feeds each, and every mapping version.' },
  { to: '/drift', title: 'Drift review', text: 'Source schema changes and the repairs proposed for them: approve or reject.' },
  { to: '/connections', title: 'Connections', text: 'Salesforce, HubSpot, Dynamics 365, Postgres and files: create, test and run.' },
  { to: '/upload', title: 'Upload CSV', text: 'Send a file through the mappings and follow the job row by row.' },
];

export function HomePage() {
  const state = useQuery({ queryKey: ['state'], queryFn: api.state, refetchInterval: 30_000 });

  return (
    <>
      <PageHeader title="Home" />
      <section className="hero" aria-labelledby="what">
        <h2 id="what">One live, canonical view of your customer records</h2>
        <p>
          AutonomOS pulls accounts, opportunities and contacts out of CRMs and files, maps each source's fields onto one
          canonical model, streams every record as an event, and keeps always-fresh tables that the views API and this
          dashboard read. Agents watch the same streams for schema drift and propose repairs.
        </p>
      </section>

      <section aria-labelledby="numbers" className="section">
        <h2 id="numbers">Your tenant right now</h2>
        <QueryView query={state} what="Pipeline state">
          {(s) => {
            const totals = entityTotals(s);
            const total = totals.reduce((a, t) => a + t.count, 0);
            const stalled = (s.consumers ?? []).filter((c) => c.stalled).length;
            return (
              <div className="metrics" data-testid="headline">
                <MetricCard label="Records" value={<span data-metric="records">{formatCompact(total)}</span>} hint={total === 0 ? 'Nothing ingested yet' : `${formatNumber(total)} across ${totals.length} entit${totals.length === 1 ? 'y' : 'ies'}`} />
                {totals.map((t) => (
                  <MetricCard
                    key={t.entity}
                    label={humanize(t.entity)}
                    value={<span data-metric={`entity-${t.entity}`}>{formatCompact(t.count)}</span>}
                    hint={`from ${t.systems} source${t.systems === 1 ? '' : 's'}`}
                  />
                ))}
                <MetricCard label="Active jobs" value={formatNumber(s.active_jobs)} />
                <MetricCard label="Open drift findings" value={formatNumber(s.open_drift)} hint={s.open_drift > 0 ? <Link to="/drift">Review</Link> : 'None open'} />
                <MetricCard label="Dead-lettered" value={formatNumber(s.dlq_depth)} hint={s.dlq_depth > 0 ? <Link to="/monitor#dlq">Inspect</Link> : 'Queue empty'} />
                <MetricCard
                  label="Consumers"
                  value={formatNumber(s.consumers?.length ?? 0)}
                  hint={stalled > 0 ? <span className="text-bad">! {stalled} stalled</span> : (s.consumers?.length ?? 0) > 0 ? '✓ none stalled' : 'none reported'}
                />
              </div>
            );
          }}
        </QueryView>
      </section>

      <section aria-labelledby="explore" className="section">
        <h2 id="explore">Explore</h2>
        <ul className="cards">
          {SECTIONS.map((s) => (
            <li key={s.to}>
              <Link to={s.to} className="card card-link">
                <h3>{s.title}</h3>
                <p className="muted">{s.text}</p>
              </Link>
            </li>
          ))}
        </ul>
      </section>
    </>
  );
}
