import { createContext, useCallback, useContext, useEffect, useMemo, useRef, useState, type ReactNode } from 'react';
import { useQueryClient, type QueryClient, type QueryKey } from '@tanstack/react-query';
import { apiClient } from '../api/client';
import type { Job, JobMessage, LiveMessage, Page } from '../api/types';
import { useAuth } from '../auth/AuthContext';
import { LiveSocket, liveUrl, type LiveStatus } from '../lib/liveSocket';

interface LiveValue {
  status: LiveStatus;
  failures: number;
  subscribe: (l: (msg: LiveMessage) => void) => () => void;
}

const noop = () => () => {};
const LiveContext = createContext<LiveValue>({ status: 'idle', failures: 0, subscribe: noop });

async function currentToken(stale: boolean): Promise<string | null> {
  const t = apiClient.store.get();
  if (!t) return null;
  const expiring = t.expiresAt !== undefined && t.expiresAt - Date.now() < 15_000;
  if ((stale || expiring) && t.refreshToken) {
    await apiClient.refresh();
  }
  return apiClient.store.get()?.accessToken ?? null;
}

export function LiveProvider({ children, WebSocketImpl }: { children: ReactNode; WebSocketImpl?: typeof WebSocket }) {
  const { signedIn } = useAuth();
  const qc = useQueryClient();
  const [status, setStatus] = useState<LiveStatus>('idle');
  const [failures, setFailures] = useState(0);
  const listeners = useRef(new Set<(msg: LiveMessage) => void>());

  useEffect(() => {
    if (!signedIn) return;
    const s = new LiveSocket({ url: liveUrl, token: currentToken, WebSocketImpl });
    const offStatus = s.onStatus((st, f) => {
      setStatus(st);
      setFailures(f);
    });
    const updateCache = cacheUpdater(qc);
    const offMsg = s.onMessage((msg) => {
      updateCache(msg);
      for (const l of listeners.current) l(msg);
    });
    s.start();
    return () => {
      offStatus();
      offMsg();
      s.stop();
      setStatus('idle');
      setFailures(0);
    };
  }, [signedIn, qc, WebSocketImpl]);

  const subscribe = useCallback((l: (msg: LiveMessage) => void) => {
    const set = listeners.current;
    set.add(l);
    return () => {
      set.delete(l);
    };
  }, []);
  const value = useMemo<LiveValue>(() => ({ status, failures, subscribe }), [status, failures, subscribe]);
  return <LiveContext.Provider value={value}>{children}</LiveContext.Provider>;
}

// eslint-disable-next-line react-refresh/only-export-components
export function useLive(): LiveValue {
  return useContext(LiveContext);
}

/** Calls `handler` for each live message; the handler may change freely. */
// eslint-disable-next-line react-refresh/only-export-components
export function useLiveMessages(handler: (msg: LiveMessage) => void): void {
  const { subscribe } = useLive();
  const ref = useRef(handler);
  useEffect(() => {
    ref.current = handler;
  });
  useEffect(() => subscribe((m) => ref.current(m)), [subscribe]);
}

/**
 * Keeps cached queries truthful as events arrive: a job update is written
 * into the cache directly; other events mark the affected queries stale
 * (at most once a second per query) so they refetch from the server.
 */
function cacheUpdater(qc: QueryClient): (msg: LiveMessage) => void {
  const last = new Map<string, number>();
  const pending = new Map<string, ReturnType<typeof setTimeout>>();
  const invalidate = (key: QueryKey, ms = 1000) => {
    const k = JSON.stringify(key);
    const now = Date.now();
    const since = now - (last.get(k) ?? 0);
    if (pending.has(k)) return;
    const run = () => {
      pending.delete(k);
      last.set(k, Date.now());
      void qc.invalidateQueries({ queryKey: key });
    };
    if (since >= ms) run();
    else pending.set(k, setTimeout(run, ms - since));
  };

  return (msg) => {
    switch (msg.type) {
      case 'record.upserted':
      case 'record.deleted':
        invalidate(['state'], 2000);
        invalidate(['view'], 1500);
        break;
      case 'stats':
        invalidate(['state'], 2000);
        break;
      case 'job.updated': {
        const job = (msg as JobMessage).job;
        if (job && typeof job.id === 'string') {
          qc.setQueryData<Job>(['job', job.id], job);
          qc.setQueryData<Page<Job>>(['jobs'], (old) => {
            if (!old || !Array.isArray(old.data)) return old;
            const i = old.data.findIndex((j) => j.id === job.id);
            const data = i === -1 ? [job, ...old.data] : old.data.map((j) => (j.id === job.id ? job : j));
            return { ...old, data };
          });
        }
        invalidate(['state'], 2000);
        break;
      }
      default:
        if (msg.type.startsWith('drift.')) {
          invalidate(['drift']);
          invalidate(['metrics']);
          invalidate(['events']);
          invalidate(['connections']);
          invalidate(['state'], 2000);
        } else if (msg.type.startsWith('dlq.')) {
          invalidate(['dlq']);
          invalidate(['state'], 2000);
        } else if (msg.type.startsWith('connection.')) {
          invalidate(['connections']);
          invalidate(['metrics']);
          invalidate(['events']);
        } else if (msg.type.startsWith('job.')) {
          invalidate(['jobs']);
        } else if (msg.type.startsWith('mapping.')) {
          invalidate(['ontology']);
          invalidate(['mappings']);
        }
    }
  };
}
