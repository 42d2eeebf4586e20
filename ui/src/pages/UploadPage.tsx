import { useRef, useState, type FormEvent } from 'react';
import { useQuery } from '@tanstack/react-query';
import { Link } from 'react-router';
import { api } from '../api/endpoints';
import type { EntityName } from '../api/types';
import { useCanEdit } from '../auth/AuthContext';
import { Field } from '../components/Field';
import { JobProgress } from '../components/JobProgress';
import { PageHeader } from '../components/Layout';
import { ProgressBar } from '../components/ProgressBar';
import { ErrorNotice, Loading } from '../components/States';
import { formatBytes, isJobActive } from '../lib/format';

export function UploadPage() {
  const canEdit = useCanEdit();
  const [entity, setEntity] = useState<EntityName>('opportunity');
  const [system, setSystem] = useState('');
  const [file, setFile] = useState<File | null>(null);
  const [sent, setSent] = useState<{ loaded: number; total: number } | null>(null);
  const [uploading, setUploading] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [jobId, setJobId] = useState<string | null>(null);
  const abort = useRef<AbortController | null>(null);

  const job = useQuery({
    queryKey: ['job', jobId],
    queryFn: () => api.job(jobId!),
    enabled: !!jobId,
    // Live updates come over the WebSocket; poll as well until the job ends.
    refetchInterval: (q) => (q.state.data && !isJobActive(q.state.data.status) ? false : 1000),
  });

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (!file) return;
    setError(null);
    setJobId(null);
    setUploading(true);
    setSent({ loaded: 0, total: file.size });
    const ctrl = new AbortController();
    abort.current = ctrl;
    try {
      const res = await api.upload(file, entity, system.trim() || undefined, {
        signal: ctrl.signal,
        onProgress: (loaded, total) => setSent({ loaded, total: total || file.size }),
      });
      if (!res?.job_id) throw new Error('The server accepted the file but returned no job id.');
      setJobId(res.job_id);
    } catch (err) {
      if (!(err instanceof DOMException && err.name === 'AbortError')) setError(err);
    } finally {
      setUploading(false);
      abort.current = null;
    }
  };

  return (
    <>
      <PageHeader title="Upload CSV" />
      <p className="lead muted">
        Send a CSV file through the file-source mapping. Every good row becomes a canonical event; bad rows are reported with
        their line and reason, and never stop the rest.
      </p>
      <form className="card form upload-form" onSubmit={submit} aria-busy={uploading}>
        <div className="form-grid">
          <Field label="Entity">
            <select name="entity" value={entity} onChange={(e) => setEntity(e.target.value as EntityName)}>
              <option value="account">Account</option>
              <option value="opportunity">Opportunity</option>
              <option value="contact">Contact</option>
            </select>
          </Field>
          <Field label="Source system" hint="Optional; defaults to filesource.">
            <input name="system" value={system} placeholder="filesource" onChange={(e) => setSystem(e.target.value)} />
          </Field>
          <Field label="CSV file" hint={file ? formatBytes(file.size) : undefined}>
            <input name="file" type="file" accept=".csv,text/csv" aria-required="true" onChange={(e) => setFile(e.target.files?.[0] ?? null)} />
          </Field>
        </div>
        <div className="toolbar">
          <button type="submit" className="btn btn-primary" disabled={!file || uploading || !canEdit}>
            {uploading ? 'Uploading…' : 'Upload'}
          </button>
          {uploading ? (
            <button type="button" className="btn" onClick={() => abort.current?.abort()}>
              Cancel upload
            </button>
          ) : null}
          {!canEdit ? <span className="muted small">Viewers cannot upload.</span> : null}
        </div>
        {uploading && sent ? (
          <ProgressBar
            value={sent.total ? sent.loaded / sent.total : null}
            label="Upload progress"
            detail={`${formatBytes(sent.loaded)} of ${formatBytes(sent.total)} sent`}
          />
        ) : null}
        {error ? <ErrorNotice error={error} /> : null}
      </form>

      {jobId ? (
        <section className="panel" aria-labelledby="job-title" aria-live="polite">
          <div className="panel-head">
            <h2 id="job-title">Ingestion job</h2>
            <Link to="/live">Watch it on the DCL page →</Link>
          </div>
          {job.data ? (
            <>
              <JobProgress job={job.data} />
              {job.isError ? <ErrorNotice error={job.error} what="Job status" /> : null}
            </>
          ) : job.isError ? (
            <ErrorNotice error={job.error} what="Job status" onRetry={() => void job.refetch()} />
          ) : (
            <Loading label={`Job ${jobId} accepted; waiting for its status…`} />
          )}
        </section>
      ) : null}
    </>
  );
}
