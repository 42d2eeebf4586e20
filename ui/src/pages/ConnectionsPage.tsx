import { useId, useState, type FormEvent } from 'react';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { api, listOf } from '../api/endpoints';
import type { Connection, ConnectionInput, TestResult } from '../api/types';
import { OBJECTS, SYSTEMS, formFromConnection, inputFromForm, type FormState } from '../lib/connectionForm';
import { useCanEdit } from '../auth/AuthContext';
import { Field } from '../components/Field';
import { PageHeader } from '../components/Layout';
import { ActionMessage, ErrorNotice, QueryView } from '../components/States';
import { StatusBadge } from '../components/StatusBadge';
import { formatRelative, formatTime } from '../lib/format';

export function ConnectionsPage() {
  const q = useQuery({ queryKey: ['connections'], queryFn: api.connections });
  const canEdit = useCanEdit();
  const [editing, setEditing] = useState<Connection | 'new' | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  return (
    <>
      <PageHeader title="Connections">
        <button type="button" className="btn btn-primary" disabled={!canEdit} onClick={() => setEditing('new')}>
          + New connection
        </button>
      </PageHeader>
      <ActionMessage success={notice} />
      {editing ? (
        <ConnectionForm
          key={editing === 'new' ? 'new' : editing.id}
          connection={editing === 'new' ? null : editing}
          onDone={(msg) => {
            setEditing(null);
            setNotice(msg);
          }}
          onCancel={() => setEditing(null)}
        />
      ) : null}
      <QueryView
        query={q}
        what="Connections"
        isEmpty={(d) => listOf(d).length === 0}
        empty="No connections yet. Create one to pull records from Salesforce, HubSpot, Dynamics 365 or Postgres."
      >
        {(d) => (
          <ul className="connection-list">
            {listOf(d).map((c) => (
              <li key={c.id}>
                <ConnectionCard connection={c} onEdit={() => setEditing(c)} onNotice={setNotice} />
              </li>
            ))}
          </ul>
        )}
      </QueryView>
    </>
  );
}

function ConnectionCard({ connection: c, onEdit, onNotice }: { connection: Connection; onEdit: () => void; onNotice: (m: string) => void }) {
  const qc = useQueryClient();
  const canEdit = useCanEdit();
  const [test, setTest] = useState<TestResult | null>(null);
  const refresh = () => {
    void qc.invalidateQueries({ queryKey: ['connections'] });
    void qc.invalidateQueries({ queryKey: ['metrics'] });
  };
  const testM = useMutation({ mutationFn: () => api.testConnection(c.id), onSuccess: setTest });
  const syncM = useMutation({
    mutationFn: () => api.syncConnection(c.id),
    onSuccess: (r) => {
      onNotice(`Sync of ${c.name} started: job ${r?.job_id ?? '(no id returned)'}. Follow it on the AAM Monitor.`);
      void qc.invalidateQueries({ queryKey: ['jobs'] });
    },
  });
  const reconcileM = useMutation({
    mutationFn: () => api.syncConnection(c.id, 'reconcile'),
    onSuccess: (r) => {
      onNotice(`Reconciliation of ${c.name} started: job ${r?.job_id ?? '(no id returned)'}. It reads everything again and removes records the source no longer has.`);
      void qc.invalidateQueries({ queryKey: ['jobs'] });
    },
  });
  const pauseM = useMutation({
    mutationFn: () => (c.status === 'PAUSED' ? api.resumeConnection(c.id) : api.pauseConnection(c.id)),
    onSuccess: refresh,
  });
  const deleteM = useMutation({
    mutationFn: () => api.deleteConnection(c.id),
    onSuccess: () => {
      onNotice(`Deleted ${c.name}.`);
      refresh();
    },
  });
  const error = testM.error ?? syncM.error ?? reconcileM.error ?? pauseM.error ?? deleteM.error;
  const objects = Array.isArray(c.config?.objects) ? (c.config.objects as string[]).join(', ') : null;

  return (
    <article className="card connection" data-connection-id={c.id} aria-labelledby={`conn-${c.id}`}>
      <header className="connection-head">
        <h2 id={`conn-${c.id}`}>{c.name}</h2>
        <span className="muted">{SYSTEMS[c.system]?.label ?? c.system}</span>
        <StatusBadge status={c.status} />
      </header>
      <dl className="kv compact">
        <div>
          <dt>Schedule</dt>
          <dd>
            {c.interval ? `every ${c.interval}` : 'manual'}
            {c.reconcile ? `, reconciled every ${c.reconcile}` : ''}
          </dd>
        </div>
        {c.last_reconcile_at ? (
          <div>
            <dt>Last reconciled</dt>
            <dd>
              <time dateTime={c.last_reconcile_at} title={formatTime(c.last_reconcile_at)}>
                {formatRelative(c.last_reconcile_at)}
              </time>
            </dd>
          </div>
        ) : null}
        <div>
          <dt>Last sync</dt>
          <dd>{c.last_sync_at ? <time dateTime={c.last_sync_at} title={formatTime(c.last_sync_at)}>{formatRelative(c.last_sync_at)}</time> : 'never'}</dd>
        </div>
        {objects ? (
          <div>
            <dt>Objects</dt>
            <dd>{objects}</dd>
          </div>
        ) : null}
        {c.last_error ? (
          <div className="wide">
            <dt>Last error</dt>
            <dd className="text-bad">✕ {c.last_error}</dd>
          </div>
        ) : null}
      </dl>
      <div className="toolbar">
        <button type="button" className="btn btn-small" disabled={testM.isPending} onClick={() => testM.mutate()}>
          {testM.isPending ? 'Testing…' : 'Test'}
        </button>
        <button type="button" className="btn btn-small" disabled={!canEdit || syncM.isPending || c.status === 'PAUSED'} onClick={() => syncM.mutate()}>
          {syncM.isPending ? 'Starting…' : '↻ Sync now'}
        </button>
        <button
          type="button"
          className="btn btn-small"
          title="Read everything again: apply changes that kept their modified date, delete records the source no longer has"
          disabled={!canEdit || reconcileM.isPending || c.status === 'PAUSED'}
          onClick={() => reconcileM.mutate()}
        >
          {reconcileM.isPending ? 'Starting…' : '⟲ Reconcile'}
        </button>
        <button type="button" className="btn btn-small" disabled={!canEdit || pauseM.isPending} onClick={() => pauseM.mutate()}>
          {c.status === 'PAUSED' ? '▶ Resume' : '❚❚ Pause'}
        </button>
        <button type="button" className="btn btn-small" disabled={!canEdit} onClick={onEdit}>
          Edit
        </button>
        <button
          type="button"
          className="btn btn-small btn-danger"
          disabled={!canEdit || deleteM.isPending}
          onClick={() => {
            if (window.confirm(`Delete the connection “${c.name}”? Records already ingested stay.`)) deleteM.mutate();
          }}
        >
          Delete
        </button>
      </div>
      {test ? (
        <p className={`state ${test.ok ? 'state-success' : 'state-error'}`} role="status">
          <span aria-hidden="true">{test.ok ? '✓ ' : '✕ '}</span>
          {test.ok ? 'Connection works' : 'Connection failed'}
          {test.message ? `: ${test.message}` : ''}
        </p>
      ) : null}
      {error ? <ErrorNotice error={error} /> : null}
    </article>
  );
}

function ConnectionForm({ connection, onDone, onCancel }: { connection: Connection | null; onDone: (msg: string) => void; onCancel: () => void }) {
  const qc = useQueryClient();
  const id = useId();
  const [f, setF] = useState<FormState>(() => formFromConnection(connection));
  const spec = SYSTEMS[f.system] ?? { label: f.system, config: [], objects: false, secrets: [] };
  const editing = connection !== null;
  const save = useMutation({
    mutationFn: (input: ConnectionInput) => (connection ? api.updateConnection(connection.id, input) : api.createConnection(input)),
    onSuccess: (_r, input) => {
      void qc.invalidateQueries({ queryKey: ['connections'] });
      void qc.invalidateQueries({ queryKey: ['metrics'] });
      onDone(editing ? `Saved ${input.name}.` : `Created ${input.name}. It syncs on its schedule, or use “Sync now”.`);
    },
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    save.mutate(inputFromForm(f, connection));
  };
  const set = (patch: Partial<FormState>) => setF((prev) => ({ ...prev, ...patch }));

  return (
    <form className="card form connection-form" onSubmit={submit} aria-labelledby={`${id}-title`}>
      <h2 id={`${id}-title`}>{editing ? `Edit ${connection.name}` : 'New connection'}</h2>
      <div className="form-grid">
        <Field label="Name">
          <input required value={f.name} onChange={(e) => set({ name: e.target.value })} />
        </Field>
        <Field label="System">
          <select value={f.system} disabled={editing} onChange={(e) => set({ system: e.target.value, config: {}, secrets: {} })}>
            {Object.entries(SYSTEMS).map(([k, s]) => (
              <option key={k} value={k}>
                {s.label}
              </option>
            ))}
          </select>
        </Field>
        <Field label="Sync every" hint="e.g. 30s, 5m, 1h. Leave empty to sync only on demand.">
          <input
            value={f.interval}
            placeholder="5m"
            pattern="(\d+(ms|s|m|h))+"
            title="A duration such as 30s, 5m or 1h"
            onChange={(e) => set({ interval: e.target.value })}
          />
        </Field>
        <Field label="Reconcile every" hint="e.g. 24h: that often a scheduled sync reads everything again, catching changes without a new modified date and deleted records. Empty: only on demand.">
          <input
            value={f.reconcile}
            placeholder="24h"
            pattern="(\d+(ms|s|m|h))+"
            title="A duration such as 12h or 24h"
            onChange={(e) => set({ reconcile: e.target.value })}
          />
        </Field>
        {spec.config.map((c) => (
          <Field key={c.key} label={c.label} required={c.required} hint={c.hint}>
            {c.type === 'select' ? (
              <select value={f.config[c.key] ?? c.options?.[0] ?? ''} onChange={(e) => set({ config: { ...f.config, [c.key]: e.target.value } })}>
                {c.options?.map((o) => (
                  <option key={o} value={o}>
                    {o}
                  </option>
                ))}
              </select>
            ) : (
              <input
                type={c.type === 'url' ? 'url' : 'text'}
                required={c.required}
                placeholder={c.placeholder}
                value={f.config[c.key] ?? ''}
                onChange={(e) => set({ config: { ...f.config, [c.key]: e.target.value } })}
              />
            )}
          </Field>
        ))}
      </div>
      {spec.objects ? (
        <fieldset className="field">
          <legend>Objects</legend>
          <div className="checks">
            {OBJECTS.map((o) => (
              <label key={o} className="check">
                <input
                  type="checkbox"
                  checked={f.objects.includes(o)}
                  onChange={(e) => set({ objects: e.target.checked ? [...f.objects, o] : f.objects.filter((x) => x !== o) })}
                />
                {o}
              </label>
            ))}
          </div>
        </fieldset>
      ) : null}
      {spec.secrets.length ? (
        <fieldset className="field">
          <legend>Secrets</legend>
          <p className="muted small">
            Stored encrypted and never shown again.{editing ? ' Leave a field empty to keep its current value.' : ''}
          </p>
          <div className="form-grid">
            {spec.secrets.map((s) => (
              <Field key={s.key} label={s.label} required={s.required && !editing} hint={s.hint}>
                <input
                  type="password"
                  autoComplete="off"
                  required={s.required && !editing}
                  placeholder={editing ? 'unchanged' : s.placeholder}
                  value={f.secrets[s.key] ?? ''}
                  onChange={(e) => set({ secrets: { ...f.secrets, [s.key]: e.target.value } })}
                />
              </Field>
            ))}
          </div>
        </fieldset>
      ) : null}
      {save.isError ? <ErrorNotice error={save.error} /> : null}
      <div className="toolbar">
        <button type="submit" className="btn btn-primary" disabled={save.isPending}>
          {save.isPending ? 'Saving…' : editing ? 'Save changes' : 'Create connection'}
        </button>
        <button type="button" className="btn" onClick={onCancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}
