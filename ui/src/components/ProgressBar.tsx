import { formatPercent } from '../lib/format';

interface Props {
  /** 0..1, or null when the total is unknown (an indeterminate bar). */
  value: number | null;
  label: string;
  /** Text shown beside the bar, e.g. "1,200 of 5,000 rows". */
  detail?: string;
  tone?: 'ok' | 'bad' | 'info';
}

export function ProgressBar({ value, label, detail, tone = 'info' }: Props) {
  const pct = value === null ? null : Math.round(value * 1000) / 10;
  return (
    <div className="progress">
      <div
        className={`progress-track tone-${tone}${value === null ? ' indeterminate' : ''}`}
        role="progressbar"
        aria-label={label}
        aria-valuemin={0}
        aria-valuemax={100}
        aria-valuenow={pct ?? undefined}
        aria-valuetext={detail ?? (pct === null ? 'in progress' : `${pct}%`)}
      >
        <div className="progress-fill" style={{ width: pct === null ? undefined : `${pct}%` }} />
      </div>
      <span className="progress-text">
        {pct === null ? '' : formatPercent(value)}
        {detail ? <span className="muted"> {detail}</span> : null}
      </span>
    </div>
  );
}
