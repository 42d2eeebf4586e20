import { statusInfo } from '../lib/format';

/** A status as icon + words; the colour only repeats what the text says. */
export function StatusBadge({ status, label }: { status: string | null | undefined; label?: string }) {
  const info = statusInfo(status);
  return (
    <span className={`badge tone-${info.tone}`} data-status={status ?? ''}>
      <span className="badge-icon" aria-hidden="true">
        {info.icon}
      </span>
      {label ?? info.label}
    </span>
  );
}
