import type { ReactNode } from 'react';
import type { UseQueryResult } from '@tanstack/react-query';
import { isApiError } from '../api/client';

export function Loading({ label = 'Loading…' }: { label?: string }) {
  return (
    <div className="state state-loading" role="status" aria-busy="true">
      <span className="spinner" aria-hidden="true" />
      <span>{label}</span>
    </div>
  );
}

export function Empty({ children }: { children: ReactNode }) {
  return (
    <div className="state state-empty" role="status">
      <span className="state-icon" aria-hidden="true">
        ∅
      </span>
      <div>{children}</div>
    </div>
  );
}

/**
 * An error as the server gave it: a 404 means the endpoint is not on this
 * server (yet); anything else shows the message, code and trace id.
 */
export function ErrorNotice({ error, what, onRetry }: { error: unknown; what?: string; onRetry?: () => void }) {
  if (isApiError(error) && error.notAvailable) {
    return (
      <div className="state state-unavailable" role="status" data-state="unavailable">
        <span className="state-icon" aria-hidden="true">
          ⊘
        </span>
        <div>
          <strong>{what ? `${what}: not available on this server` : 'Not available on this server'}</strong>
          <div className="muted small">
            The server answered 404{error.message && error.message !== 'Not Found' ? ` (${error.message})` : ''}.
          </div>
        </div>
      </div>
    );
  }
  const message = isApiError(error) ? error.message : error instanceof Error ? error.message : String(error);
  return (
    <div className="state state-error" role="alert" data-state="error">
      <span className="state-icon" aria-hidden="true">
        ✕
      </span>
      <div>
        <strong>{what ? `Could not load ${what.toLowerCase()}` : 'Something went wrong'}</strong>
        <div>{message}</div>
        {isApiError(error) ? (
          <div className="muted small">
            {error.status ? `HTTP ${error.status} · ` : ''}
            {error.code}
            {error.traceId ? (
              <>
                {' · trace '}
                <code>{error.traceId}</code>
              </>
            ) : null}
          </div>
        ) : null}
        {onRetry ? (
          <button type="button" className="btn btn-small" onClick={onRetry}>
            Try again
          </button>
        ) : null}
      </div>
    </div>
  );
}

interface QueryViewProps<T> {
  query: Pick<UseQueryResult<T>, 'data' | 'error' | 'isPending' | 'isError' | 'refetch'>;
  what: string;
  isEmpty?: (data: T) => boolean;
  empty?: ReactNode;
  loadingLabel?: string;
  children: (data: T) => ReactNode;
}

/** Loading, error and empty states for one query, then the content. */
export function QueryView<T>({ query, what, isEmpty, empty, loadingLabel, children }: QueryViewProps<T>) {
  if (query.isPending) return <Loading label={loadingLabel ?? `Loading ${what.toLowerCase()}…`} />;
  if (query.isError) return <ErrorNotice error={query.error} what={what} onRetry={() => void query.refetch()} />;
  const data = query.data as T;
  if (isEmpty?.(data)) return <Empty>{empty ?? `No ${what.toLowerCase()} yet.`}</Empty>;
  return <>{children(data)}</>;
}

/** An inline result of an action (saved, failed …) announced to screen readers. */
export function ActionMessage({ error, success }: { error?: unknown; success?: ReactNode }) {
  if (error) return <ErrorNotice error={error} />;
  if (success)
    return (
      <div className="state state-success" role="status">
        <span className="state-icon" aria-hidden="true">
          ✓
        </span>
        <div>{success}</div>
      </div>
    );
  return null;
}
