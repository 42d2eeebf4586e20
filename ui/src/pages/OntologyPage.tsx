import { useState } from 'react';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { api, listOf } from '../api/endpoints';
import type { MappingSummary, OntologyEntity, OntologySource, SourceFieldMapping } from '../api/types';
import { useCanEdit } from '../auth/AuthContext';
import { PageHeader } from '../components/Layout';
import { ActionMessage, Empty, ErrorNotice, Loading, QueryView } from '../components/States';
import { TableWrap } from '../components/TableWrap';
import { formatTime, formatTransform, humanize } from '../lib/format';

function sourceText(m: SourceFieldMapping | undefined): { source: string; transforms: string[] } | null {
  if (!m) return null;
  const source = Array.isArray(m.source) ? m.source.join(' + ') : (m.source ?? '');
  return { source: source || '(computed)', transforms: (m.transforms ?? []).map(formatTransform) };
}

export function OntologyPage() {
  const q = useQuery({ queryKey: ['ontology'], queryFn: api.ontology });
  return (
    <>
      <PageHeader title="Ontology" />
      <p className="lead muted">
        The canonical model every source is mapped onto. For each field: which source field feeds it, per system, and how
        the value is transformed. Unmapped source fields are kept in <code>extras</code>.
      </p>
      <QueryView query={q} what="Ontology" isEmpty={(o) => (o.entities ?? []).length === 0} empty="The server reported no canonical entities.">
        {(o) => (
          <>
            <nav className="chips" aria-label="Entities">
              {o.entities.map((e) => (
                <a key={e.name} href={`#entity-${e.name}`} className="chip">
                  {humanize(e.name)}
                </a>
              ))}
              <a href="#mappings" className="chip">
                Mapping versions
              </a>
            </nav>
            {o.entities.map((e) => (
              <EntitySection key={e.name} entity={e} />
            ))}
          </>
        )}
      </QueryView>
      <MappingsSection />
    </>
  );
}

function EntitySection({ entity }: { entity: OntologyEntity }) {
  const sources = entity.sources ?? [];
  const bySource = sources.map((s) => new Map((s.fields ?? []).map((f) => [f.target, f])));
  return (
    <section className="panel" id={`entity-${entity.name}`} aria-labelledby={`entity-${entity.name}-title`}>
      <div className="panel-head">
        <h2 id={`entity-${entity.name}-title`}>{humanize(entity.name)}</h2>
        <span className="muted small">
          {entity.fields.length} field{entity.fields.length === 1 ? '' : 's'} · {sources.length} source mapping{sources.length === 1 ? '' : 's'}
        </span>
      </div>
      <TableWrap label={`${humanize(entity.name)} fields and their sources`}>
        <table className="table ontology">
          <thead>
            <tr>
              <th scope="col">Field</th>
              <th scope="col">Type</th>
              <th scope="col">Description</th>
              {sources.map((s) => (
                <th scope="col" key={`${s.system}/${s.object}`}>
                  <SourceHeader source={s} />
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {entity.fields.map((f) => (
              <tr key={f.name}>
                <th scope="row" className="mono">
                  {f.name}
                  {f.required ? (
                    <span className="req" title="required">
                      {' '}
                      * <span className="sr-only">required</span>
                    </span>
                  ) : null}
                </th>
                <td className="mono small">{f.type}</td>
                <td className="wrap">{f.description || <span className="muted">—</span>}</td>
                {bySource.map((m, i) => {
                  const st = sourceText(m.get(f.name));
                  const src = sources[i]!;
                  return (
                    <td key={`${src.system}/${src.object}`}>
                      {st ? (
                        <>
                          <span className="mono">{st.source}</span>
                          {st.transforms.length ? <div className="transforms small">{st.transforms.map((t) => <span key={t} className="transform">{t}</span>)}</div> : null}
                        </>
                      ) : (
                        <span className="muted" title="No source field feeds this field">
                          not mapped
                        </span>
                      )}
                    </td>
                  );
                })}
              </tr>
            ))}
          </tbody>
        </table>
      </TableWrap>
      {sources.length === 0 ? <p className="muted small">No source system is mapped onto this entity yet.</p> : null}
      <p className="muted small">* required</p>
    </section>
  );
}

function SourceHeader({ source }: { source: OntologySource }) {
  return (
    <span>
      {source.system}
      <span className="muted">/{source.object}</span>
      {source.mapping_version !== undefined && source.mapping_version !== null ? <span className="muted small"> · v{String(source.mapping_version)}</span> : null}
    </span>
  );
}

function MappingsSection() {
  const q = useQuery({ queryKey: ['mappings'], queryFn: api.mappings });
  const [open, setOpen] = useState<MappingSummary | null>(null);
  return (
    <section className="panel" id="mappings" aria-labelledby="mappings-title">
      <div className="panel-head">
        <h2 id="mappings-title">Mapping versions</h2>
      </div>
      <QueryView query={q} what="Mappings" isEmpty={(d) => listOf(d).length === 0} empty="No mappings are stored yet.">
        {(d) => (
          <TableWrap label="Mappings">
            <table className="table">
              <thead>
                <tr>
                  <th scope="col">System</th>
                  <th scope="col">Object</th>
                  <th scope="col">Entity</th>
                  <th scope="col">Version</th>
                  <th scope="col">Author</th>
                  <th scope="col">Created</th>
                  <th scope="col">
                    <span className="sr-only">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {listOf(d).map((m) => {
                  const isOpen = open?.system === m.system && open.object === m.object;
                  return (
                    <tr key={`${m.system}/${m.object}`}>
                      <td>{m.system}</td>
                      <td className="mono">{m.object}</td>
                      <td>{humanize(m.entity)}</td>
                      <td className="mono">v{String(m.version)}</td>
                      <td>{m.author ?? '—'}</td>
                      <td>{formatTime(m.created_at)}</td>
                      <td>
                        <button type="button" className="btn btn-small" aria-expanded={isOpen} onClick={() => setOpen(isOpen ? null : m)}>
                          {isOpen ? 'Hide history' : 'History'}
                        </button>
                      </td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </TableWrap>
        )}
      </QueryView>
      {open ? <MappingHistory key={`${open.system}/${open.object}`} mapping={open} /> : null}
    </section>
  );
}

function MappingHistory({ mapping }: { mapping: MappingSummary }) {
  const qc = useQueryClient();
  const canEdit = useCanEdit();
  const { system, object } = mapping;
  const versions = useQuery({
    queryKey: ['mappings', system, object, 'versions'],
    queryFn: () => api.mappingVersions(system, object),
  });
  const list = [...listOf(versions.data)].sort((a, b) => Number(b.version) - Number(a.version));
  const [from, setFrom] = useState<string>('');
  const [to, setTo] = useState<string>('');
  const fromV = from || (list[1] ? String(list[1].version) : '');
  const toV = to || (list[0] ? String(list[0].version) : '');
  const diff = useQuery({
    queryKey: ['mappings', system, object, 'diff', fromV, toV],
    queryFn: () => api.mappingDiff(system, object, fromV, toV),
    enabled: !!fromV && !!toV && fromV !== toV,
  });
  const [done, setDone] = useState<string | null>(null);
  const rollback = useMutation({
    mutationFn: (version: string | number) => api.rollbackMapping(system, object, version),
    onSuccess: (_r, version) => {
      setDone(`Rolled ${system}/${object} back to v${String(version)}; a new version now holds that mapping.`);
      void qc.invalidateQueries({ queryKey: ['mappings'] });
      void qc.invalidateQueries({ queryKey: ['ontology'] });
    },
  });

  return (
    <div className="history card" aria-live="polite">
      <h3>
        History of {system}/{object}
      </h3>
      <ActionMessage error={rollback.error} success={done} />
      {versions.isPending ? (
        <Loading label="Loading versions…" />
      ) : versions.isError ? (
        <ErrorNotice error={versions.error} what="Mapping versions" onRetry={() => void versions.refetch()} />
      ) : list.length === 0 ? (
        <Empty>No versions recorded.</Empty>
      ) : (
        <>
          <TableWrap label="Versions">
            <table className="table">
              <thead>
                <tr>
                  <th scope="col">Version</th>
                  <th scope="col">Author</th>
                  <th scope="col">Created</th>
                  <th scope="col">
                    <span className="sr-only">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {list.map((v, i) => (
                  <tr key={String(v.version)}>
                    <td className="mono">
                      v{String(v.version)}
                      {i === 0 ? <span className="muted small"> (current)</span> : null}
                    </td>
                    <td>{v.author ?? '—'}</td>
                    <td>{formatTime(v.created_at)}</td>
                    <td>
                      {i > 0 ? (
                        <button
                          type="button"
                          className="btn btn-small"
                          disabled={!canEdit || rollback.isPending}
                          onClick={() => {
                            if (window.confirm(`Roll ${system}/${object} back to v${String(v.version)}? Records are re-derived with it.`)) rollback.mutate(v.version);
                          }}
                        >
                          Roll back to v{String(v.version)}
                        </button>
                      ) : null}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </TableWrap>
          {list.length > 1 ? (
            <div className="diff-controls">
              <label className="inline-field">
                <span>From</span>
                <select value={fromV} onChange={(e) => setFrom(e.target.value)}>
                  {list.map((v) => (
                    <option key={String(v.version)} value={String(v.version)}>
                      v{String(v.version)}
                    </option>
                  ))}
                </select>
              </label>
              <label className="inline-field">
                <span>To</span>
                <select value={toV} onChange={(e) => setTo(e.target.value)}>
                  {list.map((v) => (
                    <option key={String(v.version)} value={String(v.version)}>
                      v{String(v.version)}
                    </option>
                  ))}
                </select>
              </label>
            </div>
          ) : (
            <p className="muted small">Only one version so far: nothing to compare.</p>
          )}
          {fromV && toV && fromV !== toV ? (
            diff.isPending ? (
              <Loading label="Loading the diff…" />
            ) : diff.isError ? (
              <ErrorNotice error={diff.error} what="Diff" onRetry={() => void diff.refetch()} />
            ) : (
              <DiffView diff={diff.data} />
            )
          ) : null}
        </>
      )}
    </div>
  );
}

/** Renders a diff as the server sends it: a unified-diff text, a list of changes, or JSON. */
export function DiffView({ diff }: { diff: unknown }) {
  const text = typeof diff === 'string' ? diff : diff && typeof diff === 'object' && typeof (diff as { diff?: unknown }).diff === 'string' ? ((diff as { diff: string }).diff) : null;
  if (text !== null) {
    if (!text.trim()) return <Empty>The two versions are identical.</Empty>;
    return (
      <pre className="code diff" aria-label="Diff">
        {text.replace(/\n$/, '').split('\n').map((line, i) => {
          const kind = line.startsWith('+') && !line.startsWith('+++') ? 'add' : line.startsWith('-') && !line.startsWith('---') ? 'del' : 'ctx';
          return (
            <span key={i} className={`diff-line diff-${kind}`}>
              {line}
              {'\n'}
            </span>
          );
        })}
      </pre>
    );
  }
  const changes = diff && typeof diff === 'object' ? (diff as { changes?: unknown }).changes : undefined;
  if (Array.isArray(changes)) {
    if (changes.length === 0) return <Empty>The two versions are identical.</Empty>;
    return (
      <TableWrap label="Changes">
        <table className="table">
          <thead>
            <tr>
              <th scope="col">Change</th>
              <th scope="col">Field</th>
              <th scope="col">Before</th>
              <th scope="col">After</th>
            </tr>
          </thead>
          <tbody>
            {changes.map((c: Record<string, unknown>, i) => {
              const kind = String(c.kind ?? c.op ?? c.type ?? 'changed');
              const sign = /add/i.test(kind) ? '+' : /remov|delet/i.test(kind) ? '−' : '~';
              return (
                <tr key={i}>
                  <td>
                    <span aria-hidden="true">{sign} </span>
                    {humanize(kind)}
                  </td>
                  <td className="mono">{String(c.field ?? c.target ?? c.path ?? '—')}</td>
                  <td className="mono small wrap">{show(c.before ?? c.from ?? c.old)}</td>
                  <td className="mono small wrap">{show(c.after ?? c.to ?? c.new)}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </TableWrap>
    );
  }
  return <pre className="code">{JSON.stringify(diff, null, 2)}</pre>;
}

function show(v: unknown): string {
  if (v === undefined || v === null) return '—';
  return typeof v === 'string' ? v : JSON.stringify(v);
}
