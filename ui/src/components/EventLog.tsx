import type { LogEntry } from '../lib/events';
import { formatClock } from '../lib/format';
import { Empty } from './States';

export function EventLog({ entries, emptyText }: { entries: LogEntry[]; emptyText: string }) {
  if (entries.length === 0) return <Empty>{emptyText}</Empty>;
  return (
    <ol className="event-log" aria-label="Events, newest first">
      {entries.map((e) => (
        <li key={e.key} className={`event tone-${e.tone}`} data-type={e.type} data-id={e.id ?? ''}>
          <time className="event-time" dateTime={e.time}>
            {formatClock(e.time)}
          </time>
          <span className="event-type">{e.type}</span>
          <span className="event-text">{e.text}</span>
          {e.traceId ? (
            <span className="event-trace">
              trace <code title={e.traceId}>{e.traceId}</code>
            </span>
          ) : null}
        </li>
      ))}
    </ol>
  );
}
