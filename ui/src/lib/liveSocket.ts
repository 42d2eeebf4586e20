// One WebSocket to /dcl/ws per signed-in tab. Reconnects with backoff and
// resumes from the last sequence number it saw (`?since=`).

import type { LiveMessage } from '../api/types';

export type LiveStatus = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'closed';

export interface LiveSocketOptions {
  /** Builds the URL for a connection attempt; `since` is the last seq seen. */
  url: (token: string, since: number | null) => string;
  /** The current access token, refreshed first when `stale` is set. */
  token: (stale: boolean) => Promise<string | null>;
  WebSocketImpl?: typeof WebSocket;
  maxBackoffMs?: number;
}

type MessageListener = (msg: LiveMessage) => void;
type StatusListener = (status: LiveStatus, failures: number) => void;

export class LiveSocket {
  private ws: WebSocket | null = null;
  private status: LiveStatus = 'idle';
  private failures = 0;
  private lastSeq: number | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private stopped = true;
  private staleToken = false;
  private readonly messageListeners = new Set<MessageListener>();
  private readonly statusListeners = new Set<StatusListener>();
  private readonly opts: LiveSocketOptions;

  constructor(opts: LiveSocketOptions) {
    this.opts = opts;
  }

  get state(): LiveStatus {
    return this.status;
  }

  get failureCount(): number {
    return this.failures;
  }

  get since(): number | null {
    return this.lastSeq;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    void this.connect();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onopen = ws.onclose = ws.onerror = ws.onmessage = null;
      try {
        ws.close(1000, 'bye');
      } catch {
        // already closed
      }
    }
    this.setStatus('closed');
  }

  onMessage(l: MessageListener): () => void {
    this.messageListeners.add(l);
    return () => this.messageListeners.delete(l);
  }

  onStatus(l: StatusListener): () => void {
    this.statusListeners.add(l);
    return () => this.statusListeners.delete(l);
  }

  private setStatus(s: LiveStatus) {
    this.status = s;
    for (const l of this.statusListeners) l(s, this.failures);
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    this.setStatus(this.failures === 0 ? 'connecting' : 'reconnecting');
    let token: string | null;
    try {
      token = await this.opts.token(this.staleToken);
    } catch {
      token = null;
    }
    if (this.stopped) return;
    if (!token) {
      this.stop();
      return;
    }
    this.staleToken = false;
    const Impl = this.opts.WebSocketImpl ?? WebSocket;
    let ws: WebSocket;
    try {
      ws = new Impl(this.opts.url(token, this.lastSeq));
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    let opened = false;
    ws.onopen = () => {
      opened = true;
      this.failures = 0;
      this.setStatus('open');
    };
    ws.onmessage = (ev: MessageEvent) => {
      if (typeof ev.data !== 'string') return;
      let msg: LiveMessage;
      try {
        msg = JSON.parse(ev.data) as LiveMessage;
      } catch {
        return;
      }
      if (!msg || typeof msg !== 'object' || typeof msg.type !== 'string') return;
      if (typeof msg.seq === 'number' && (this.lastSeq === null || msg.seq > this.lastSeq)) this.lastSeq = msg.seq;
      for (const l of this.messageListeners) l(msg);
    };
    ws.onclose = (ev: CloseEvent) => {
      if (this.ws !== ws) return;
      this.ws = null;
      // A refused handshake or a policy close usually means the token expired.
      if (!opened || ev.code === 1008 || ev.code === 4001 || ev.code === 4401) this.staleToken = true;
      this.scheduleReconnect();
    };
    ws.onerror = () => {
      // onclose follows and schedules the reconnect.
    };
  }

  private scheduleReconnect() {
    if (this.stopped) return;
    this.failures++;
    this.setStatus('reconnecting');
    const max = this.opts.maxBackoffMs ?? 15_000;
    const base = Math.min(max, 500 * 2 ** Math.min(this.failures, 5));
    const delay = base / 2 + Math.random() * (base / 2);
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.connect();
    }, delay);
  }
}

/** ws(s)://<this host>/dcl/ws?token=…[&since=…] */
export function liveUrl(token: string, since: number | null, loc: Pick<Location, 'protocol' | 'host'> = window.location): string {
  const proto = loc.protocol === 'https:' ? 'wss:' : 'ws:';
  const qs = new URLSearchParams({ token });
  if (since !== null) qs.set('since', String(since));
  return `${proto}//${loc.host}/dcl/ws?${qs.toString()}`;
}
