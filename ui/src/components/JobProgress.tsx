import type { Job } from '../api/types';
import { formatNumber, formatRelative, isJobActive, jobDetail, jobProgress, shortId } from '../lib/format';
import { ProgressBar } from './ProgressBar';
import { StatusBadge } from './StatusBadge';
import { TableWrap } from './TableWrap';

export function JobProgress({ job, showErrors = true, maxErrors = 100, errorsOpen }: { job: Job; showErrors?: boolean; maxErrors?: number; errorsOpen?: boolean }) {
  const value = jobProgress(job);
  const active = isJobActive(job.status);
  const errors = job.errors ?? [];
  const badLines = new Set(errors.map((e) => e.line)).size;
  return (
    <div className="job" data-job-id={job.id} data-job-status={job.status}>
      <div className="job-head">
        <StatusBadge status={job.status} />
        <span className="mono small" title={job.id}>
          {job.kind ? `${job.kind} · ` : ''}
          {job.entity ? `${job.entity} · ` : ''}
          {shortId(job.id, 12)}
        </span>
        {job.trace_id ? (
          <span className="muted small">
            trace <code title={job.trace_id}>{shortId(job.trace_id, 12)}</code>
          </span>
        ) : null}
        <span className="muted small">
          {job.finished_at ? `finished ${formatRelative(job.finished_at)}` : job.started_at ? `started ${formatRelative(job.started_at)}` : job.created_at ? `queued ${formatRelative(job.created_at)}` : ''}
        </span>
      </div>
      <ProgressBar
        value={active ? value : job.status === 'succeeded' ? 1 : value}
        label={`Job ${job.id} progress`}
        detail={jobDetail(job)}
        tone={job.status === 'failed' ? 'bad' : job.status === 'succeeded' ? 'ok' : 'info'}
      />
      <dl className="job-counts">
        <div>
          <dt>Read</dt>
          <dd data-count="rows_read">{formatNumber(job.rows_read ?? 0)}</dd>
        </div>
        <div>
          <dt>Published</dt>
          <dd data-count="published">{formatNumber(job.published ?? 0)}</dd>
        </div>
        <div>
          <dt>Rejected</dt>
          <dd data-count="rejected">{formatNumber(job.rejected ?? 0)}</dd>
        </div>
      </dl>
      {showErrors && errors.length > 0 ? (
        <details className="job-errors" open={errorsOpen ?? errors.length <= 10}>
          <summary>
            {formatNumber(errors.length)} error{errors.length === 1 ? '' : 's'} in {formatNumber(badLines)} row{badLines === 1 ? '' : 's'}
          </summary>
          <TableWrap label="Row errors">
            <table className="table">
              <thead>
                <tr>
                  <th scope="col">Line</th>
                  <th scope="col">Column</th>
                  <th scope="col">Reason</th>
                </tr>
              </thead>
              <tbody>
                {errors.slice(0, maxErrors).map((e, i) => (
                  <tr key={`${e.line}-${e.column ?? ''}-${i}`}>
                    <td className="mono">{e.line}</td>
                    <td className="mono">{e.column || '—'}</td>
                    <td className="wrap">{e.reason}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </TableWrap>
          {errors.length > maxErrors ? <p className="muted small">Showing the first {maxErrors}.</p> : null}
        </details>
      ) : null}
    </div>
  );
}
