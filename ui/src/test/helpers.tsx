import type { ReactElement } from 'react';
import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { render } from '@testing-library/react';
import { MemoryRouter } from 'react-router';
import { vi } from 'vitest';
import { apiClient } from '../api/client';
import { AuthProvider } from '../auth/AuthContext';
import { LiveProvider } from '../live/LiveContext';

export interface MockResponse {
  status?: number;
  body?: unknown;
  headers?: Record<string, string>;
}

type Handler = (url: URL, init: RequestInit | undefined) => MockResponse | Promise<MockResponse>;

/**
 * Stubs global fetch with handlers keyed by "METHOD /path" (query ignored).
 * Unknown routes answer 404 in the backend's error shape.
 */
export function mockFetch(routes: Record<string, Handler | MockResponse>) {
  const calls: { method: string; url: URL; init: RequestInit | undefined }[] = [];
  const fn = vi.fn(async (input: string, init?: RequestInit) => {
    const url = new URL(input, 'http://localhost');
    const method = (init?.method ?? 'GET').toUpperCase();
    calls.push({ method, url, init });
    const key = `${method} ${url.pathname}`;
    const h = routes[key];
    const res: MockResponse = h === undefined ? { status: 404, body: { error: { code: 'not_found', message: 'no route', trace_id: 't-404' } } } : typeof h === 'function' ? await h(url, init) : h;
    const status = res.status ?? 200;
    const text = res.body === undefined ? '' : typeof res.body === 'string' ? res.body : JSON.stringify(res.body);
    return new Response(status === 204 ? null : text, { status, headers: { 'Content-Type': 'application/json', ...res.headers } });
  });
  vi.stubGlobal('fetch', fn);
  return { fn, calls };
}

/** A WebSocket stand-in the test drives by hand. */
export class FakeWebSocket {
  static instances: FakeWebSocket[] = [];
  url: string;
  readyState = 0;
  onopen: ((ev: Event) => void) | null = null;
  onclose: ((ev: CloseEvent) => void) | null = null;
  onerror: ((ev: Event) => void) | null = null;
  onmessage: ((ev: MessageEvent) => void) | null = null;
  closed = false;

  constructor(url: string) {
    this.url = url;
    FakeWebSocket.instances.push(this);
  }
  open() {
    this.readyState = 1;
    this.onopen?.(new Event('open'));
  }
  send(obj: unknown) {
    this.onmessage?.(new MessageEvent('message', { data: typeof obj === 'string' ? obj : JSON.stringify(obj) }));
  }
  serverClose(code = 1006) {
    this.readyState = 3;
    this.onclose?.(new CloseEvent('close', { code }));
  }
  close() {
    this.closed = true;
    this.readyState = 3;
  }
  static reset() {
    FakeWebSocket.instances = [];
  }
  static last(): FakeWebSocket {
    const ws = FakeWebSocket.instances[FakeWebSocket.instances.length - 1];
    if (!ws) throw new Error('no WebSocket was opened');
    return ws;
  }
}

export function signIn(accessToken = 'access-1', refreshToken = 'refresh-1') {
  apiClient.store.set({ accessToken, refreshToken });
}

export function renderApp(ui: ReactElement, { route = '/', ws = FakeWebSocket }: { route?: string; ws?: unknown } = {}) {
  const qc = new QueryClient({ defaultOptions: { queries: { retry: false, staleTime: Infinity }, mutations: { retry: false } } });
  const utils = render(
    <QueryClientProvider client={qc}>
      <AuthProvider>
        <LiveProvider WebSocketImpl={ws as typeof WebSocket}>
          <MemoryRouter initialEntries={[route]}>{ui}</MemoryRouter>
        </LiveProvider>
      </AuthProvider>
    </QueryClientProvider>,
  );
  return { ...utils, qc };
}
