import { useState } from 'react';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { api, listOf } from '../api/endpoints';
import { fieldName, type DriftFinding, type DriftStatus, type RecordEvent } from '../api/types';
import { useCanEdit } from '../auth/AuthContext';
import { PageHeader } from '../components/Layout';
import { ActionMessage, QueryView } from '../components/States';
import { StatusBadge } from '../components/StatusBadge';
import { TableWrap } from '../components/TableWrap';
import { confidenceBand, formatNumber, formatPercent, formatRelative, formatTime, shortId } from '../lib/format';
import { useLiveMessages } from '../live/LiveContext';

const TABS: { value: DriftStatus; label: string }[] = [
  { value: 'open', label: 'Open' },
  { value: 'queued', label: 'Queued for review' },
  { value: 'applied', label: 'Applied' },
  { value: 'rejected', label: 'Rejected' },
];

export function DriftPage() {
  const [status, setStatus] = useState<DriftStatus>('open');
  const q = useQuery({ queryKey: ['drift', status], queryFn: () => api.drift(status) });
  return (
    <>
      <PageHeader title="Drift review" />
      <p className="lead muted">
        When a source's schema changes, the drift agent proposes how to repair the mapping. Proposals at 85% confidence or
        more are applied automatically (when enabled); between 60% and 85% they wait here for a person.
      </p>
      <div className="tabs" role="tablist" aria-label="Findings by status">
        {TABS.map((t) => (
          <button
            key={t.value}
            type="button"
            role="tab"
            id={`tab-${t.value}`}
            aria-selected={status === t.value}
            aria-controls="drift-panel"
            tabIndex={status === t.value ? 0 : -1}
            className={`tab${status === t.value ? ' active' : ''}`}
            onClick={() => setStatus(t.value)}
            onKeyDown={(e) => {
              const i = TABS.findIndex((x) => x.value === status);
              let j = -1;
              if (e.key === 'ArrowRight') j = (i + 1) % TABS.length;
              else if (e.key === 'ArrowLeft') j = (i - 1 + TABS.length) % TABS.length;
              else if (e.key === 'Home') j = 0;
              else if (e.key === 'End') j = TABS.length - 1;
              if (j < 0) return;
              e.preventDefault();
              setStatus(TABS[j]!.value);
              document.getElementById(`tab-${TABS[j]!.value}`)?.focus();
            }}
          >
            {t.label}
          </button>
        ))}
      </div>
      <div id="drift-panel" role="tabpanel" aria-labelledby={`tab-${status}`}>
        <QueryView
          query={q}
          what="Drift findings"
          isEmpty={(d) => listOf(d).length === 0}
          empty={status === 'open' ? 'No open drift findings: every source matches its mapping.' : `No ${status} findings.`}
        >
          {(d) => (
            <ul className="findings">
              {listOf(d).map((f) => (
                <li key={f.id}>
                  <FindingCard finding={f} />
                </li>
              ))}
            </ul>
          )}
        </QueryView>
      </div>
    </>
  );
}

function FieldList({ label, items, sign }: { label: string; items: string[]; sign: string }) {
  if (items.length === 0) return null;
  return (
    <div className="field-list">
      <dt>{label}</dt>
      <dd>
        {items.map((x) => (
          <span key={x} className="field-chip mono">
            <span aria-hidden="true">{sign} </span>
            {x}
          </span>
        ))}
      </dd>
    </div>
  );
}

function FindingCard({ finding }: { finding: DriftFinding }) {
  const qc = useQueryClient();
  const canEdit = useCanEdit();
  const proposals = finding.proposals ?? [];
  const pendingIds = proposals
    .filter((p) => p.source && !['applied', 'rejected', 'approved'].includes(p.status?.toLowerCase?.() ?? ''))
    .map((p) => p.target);
  const [selected, setSelected] = useState<Set<string>>(() => new Set(pendingIds));
  const [result, setResult] = useState<string | null>(null);
  const [approvedAt, setApprovedAt] = useState<number | null>(null);
  const [rederived, setRederived] = useState(0);

  // After an approval, count the records that flow again from this source.
  useLiveMessages((m) => {
    if (approvedAt === null || m.type !== 'record.upserted') return;
    const r = m as RecordEvent;
    if (r.source_system === finding.system && (!r.source_object || r.source_object === finding.object)) setRederived((n) => n + 1);
  });

  const invalidate = () => {
    void qc.invalidateQueries({ queryKey: ['drift'] });
    void qc.invalidateQueries({ queryKey: ['metrics'] });
    void qc.invalidateQueries({ queryKey: ['ontology'] });
    void qc.invalidateQueries({ queryKey: ['mappings'] });
  };
  const approve = useMutation({
    mutationFn: (ids: string[] | undefined) =>
      api.approveDrift(
        finding.id,
        ids ? Object.fromEntries(proposals.filter((p) => ids.includes(p.target) && p.source).map((p) => [p.target, p.source as string])) : undefined,
      ),
    onSuccess: (_r, ids) => {
      setResult(`Approved ${ids ? `${ids.length} proposal${ids.length === 1 ? '' : 's'}` : 'all proposals'}. The mapping gets a new version and the affected records are re-derived.`);
      setApprovedAt(Date.now());
      setRederived(0);
      invalidate();
    },
  });
  const reject = useMutation({
    mutationFn: () => api.rejectDrift(finding.id),
    onSuccess: () => {
      setResult('Rejected. The mapping stays as it was.');
      invalidate();
    },
  });
  const busy = approve.isPending || reject.isPending;
  const detectedAt = finding.detected_at ?? finding.created_at ?? '';
  const isOpen = ['open', 'queued'].includes(finding.status);
  const typeChanged = (finding.type_changed ?? []).map((t) => (typeof t === 'string' ? t : `${t.field}${t.from || t.to ? ` (${t.from ?? '?'} → ${t.to ?? '?'})` : ''}`));

  return (
    <article className="card finding" data-finding-id={finding.id} aria-labelledby={`finding-${finding.id}`}>
      <header className="finding-head">
        <h2 id={`finding-${finding.id}`}>
          {finding.system}/<span className="mono">{finding.object}</span>
        </h2>
        <StatusBadge status={finding.severity} label={`Severity: ${finding.severity}`} />
        <StatusBadge status={finding.status} />
        <span className="muted small">
          detected{' '}
          <time dateTime={detectedAt} title={formatTime(detectedAt)}>
            {formatRelative(detectedAt)}
          </time>
          {finding.connection_id ? ` · connection ${shortId(finding.connection_id, 10)}` : ''}
        </span>
      </header>
      <dl className="drift-fields">
        <FieldList label="Added" items={(finding.added ?? []).map(fieldName)} sign="+" />
        <FieldList label="Removed" items={(finding.removed ?? []).map(fieldName)} sign="−" />
        <FieldList label="Type changed" items={typeChanged} sign="~" />
        <FieldList label="Renamed" items={(finding.renames ?? []).map((r) => `${r.from} → ${r.to}${r.score !== undefined ? ` (${formatPercent(r.score)})` : ''}`)} sign="↦" />
      </dl>

      <h3 className="small-heading">Proposed repairs</h3>
      {proposals.length === 0 ? (
        <p className="muted">No repair was proposed: a person has to edit the mapping.</p>
      ) : (
        <TableWrap label="Proposals">
          <table className="table proposals">
            <thead>
              <tr>
                {isOpen ? (
                  <th scope="col">
                    <span className="sr-only">Include</span>
                  </th>
                ) : null}
                <th scope="col">Source field</th>
                <th scope="col">Canonical field</th>
                <th scope="col">Confidence</th>
                <th scope="col">Why</th>
                <th scope="col">Status</th>
              </tr>
            </thead>
            <tbody>
              {proposals.map((p) => {
                const band = confidenceBand(p.confidence);
                return (
                  <tr key={p.target} data-proposal-id={p.target}>
                    {isOpen ? (
                      <td>
                        <input
                          type="checkbox"
                          checked={selected.has(p.target)}
                          disabled={!pendingIds.includes(p.target)}
                          aria-label={`Include ${p.source ?? 'no source'} → ${p.target}`}
                          onChange={() => {
                            const next = new Set(selected);
                            if (next.has(p.target)) next.delete(p.target);
                            else next.add(p.target);
                            setSelected(next);
                          }}
                        />
                      </td>
                    ) : null}
                    <td className="mono">{p.source ?? '—'}</td>
                    <td className="mono">{p.target}</td>
                    <td>
                      <div className="confidence">
                        <meter min={0} max={1} low={0.6} high={0.85} optimum={1} value={p.confidence} aria-label={`Confidence ${formatPercent(p.confidence)}`} />
                        <span className={`text-${band.tone}`}>
                          {formatPercent(p.confidence)} <span className="small">({band.label})</span>
                        </span>
                      </div>
                    </td>
                    <td className="wrap">
                      {(p.reasons ?? []).length ? (
                        <ul className="reasons">
                          {p.reasons.map((r) => (
                            <li key={r}>{r}</li>
                          ))}
                        </ul>
                      ) : (
                        <span className="muted">—</span>
                      )}
                    </td>
                    <td>
                      <StatusBadge status={p.status} />
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </TableWrap>
      )}

      {isOpen ? (
        <div className="toolbar finding-actions">
          <button
            type="button"
            className="btn btn-primary"
            disabled={!canEdit || busy || (proposals.length > 0 && selected.size === 0)}
            onClick={() => approve.mutate(proposals.length > 0 ? [...selected] : undefined)}
          >
            {approve.isPending ? 'Approving…' : proposals.length > 0 ? `✓ Approve ${selected.size} selected` : '✓ Approve'}
          </button>
          <button type="button" className="btn" disabled={!canEdit || busy} onClick={() => reject.mutate()}>
            {reject.isPending ? 'Rejecting…' : '✕ Reject'}
          </button>
          {!canEdit ? <span className="muted small">Viewers cannot approve or reject.</span> : null}
        </div>
      ) : null}
      <ActionMessage error={approve.error ?? reject.error} success={result} />
      {approvedAt !== null ? (
        <p className="muted small" role="status" data-testid="rederived">
          {rederived === 0
            ? `Waiting for re-derived ${finding.system} records…`
            : `${formatNumber(rederived)} ${finding.system} record${rederived === 1 ? '' : 's'} re-derived since approval (see the DCL event log).`}
        </p>
      ) : null}
    </article>
  );
}
