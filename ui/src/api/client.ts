// The HTTP client: bearer tokens kept in memory and localStorage, one
// refresh attempt on a 401, errors parsed from the backend's error shape.

import type { TokenResponse } from './types';

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly traceId: string | undefined;

  constructor(status: number, code: string, message: string, traceId?: string) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.traceId = traceId || undefined;
  }

  /** The endpoint (or the resource) does not exist on this server. */
  get notAvailable(): boolean {
    return this.status === 404;
  }

  get unauthorized(): boolean {
    return this.status === 401;
  }
}

export function isApiError(e: unknown): e is ApiError {
  return e instanceof ApiError;
}

/** A response reduced to what the client needs, from fetch or XHR. */
export interface RawResponse {
  status: number;
  statusText: string;
  text: string;
  traceId: string | null;
}

/**
 * Turns a non-2xx response into an ApiError. The backend answers
 * `{"error":{"code","message","trace_id"}}`; anything else (a proxy's HTML
 * page, an empty body) still yields a useful error.
 */
export function parseError(res: RawResponse): ApiError {
  let code = `http_${res.status}`;
  let message = res.statusText || `Request failed with status ${res.status}`;
  let traceId = res.traceId ?? undefined;
  if (res.text) {
    try {
      const body: unknown = JSON.parse(res.text);
      const err = body && typeof body === 'object' ? (body as { error?: unknown }).error : undefined;
      if (err && typeof err === 'object') {
        const e = err as { code?: unknown; message?: unknown; trace_id?: unknown };
        if (typeof e.code === 'string' && e.code) code = e.code;
        if (typeof e.message === 'string' && e.message) message = e.message;
        if (typeof e.trace_id === 'string' && e.trace_id) traceId = e.trace_id;
      } else if (typeof err === 'string' && err) {
        message = err;
      }
    } catch {
      // Not JSON: keep the status text; a short plain-text body is more useful.
      const trimmed = res.text.trim();
      if (trimmed && trimmed.length < 200 && !trimmed.startsWith('<')) message = trimmed;
    }
  }
  return new ApiError(res.status, code, message, traceId);
}

export interface Tokens {
  accessToken: string;
  refreshToken?: string;
  /** Epoch milliseconds when the access token expires, when known. */
  expiresAt?: number;
}

const STORAGE_KEY = 'autonomos.auth';

type Listener = (tokens: Tokens | null) => void;

/** Tokens in memory, mirrored to localStorage so a reload stays signed in. */
export class TokenStore {
  private tokens: Tokens | null;
  private listeners = new Set<Listener>();
  private readonly storage: Storage | null;

  constructor(storage: Storage | null = safeLocalStorage()) {
    this.storage = storage;
    this.tokens = this.load();
  }

  get(): Tokens | null {
    return this.tokens;
  }

  set(tokens: Tokens | null): void {
    this.tokens = tokens;
    try {
      if (tokens) this.storage?.setItem(STORAGE_KEY, JSON.stringify(tokens));
      else this.storage?.removeItem(STORAGE_KEY);
    } catch {
      // Storage full or disabled: memory still holds the token.
    }
    for (const l of this.listeners) l(tokens);
  }

  clear(): void {
    this.set(null);
  }

  subscribe(l: Listener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  private load(): Tokens | null {
    try {
      const raw = this.storage?.getItem(STORAGE_KEY);
      if (!raw) return null;
      const t = JSON.parse(raw) as Partial<Tokens>;
      if (typeof t.accessToken !== 'string' || !t.accessToken) return null;
      return {
        accessToken: t.accessToken,
        refreshToken: typeof t.refreshToken === 'string' ? t.refreshToken : undefined,
        expiresAt: typeof t.expiresAt === 'number' ? t.expiresAt : undefined,
      };
    } catch {
      return null;
    }
  }
}

function safeLocalStorage(): Storage | null {
  try {
    return typeof window !== 'undefined' ? window.localStorage : null;
  } catch {
    return null;
  }
}

export function tokensFrom(res: TokenResponse, now = Date.now()): Tokens {
  return {
    accessToken: res.access_token,
    refreshToken: res.refresh_token,
    expiresAt: typeof res.expires_in === 'number' ? now + res.expires_in * 1000 : undefined,
  };
}

export type Query = Record<string, string | number | boolean | null | undefined>;

export interface RequestOptions {
  query?: Query;
  body?: unknown;
  /** Send without the bearer token and never try a refresh (auth endpoints). */
  anonymous?: boolean;
  signal?: AbortSignal;
  headers?: Record<string, string>;
}

export interface UploadOptions {
  onProgress?: (loaded: number, total: number) => void;
  signal?: AbortSignal;
}

export type FetchFn = (input: string, init?: RequestInit) => Promise<Response>;

export interface ApiClientOptions {
  baseUrl?: string;
  fetch?: FetchFn;
  store?: TokenStore;
}

const REFRESH_PATH = '/api/v1/auth/refresh';

export class ApiClient {
  readonly store: TokenStore;
  private readonly baseUrl: string;
  private readonly fetchFn: FetchFn;
  private refreshing: Promise<boolean> | null = null;
  private authLostHandlers = new Set<() => void>();

  constructor(opts: ApiClientOptions = {}) {
    this.baseUrl = (opts.baseUrl ?? '').replace(/\/$/, '');
    this.fetchFn = opts.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.store = opts.store ?? new TokenStore();
  }

  /** Called when the session is gone (refresh failed or impossible). */
  onAuthLost(handler: () => void): () => void {
    this.authLostHandlers.add(handler);
    return () => this.authLostHandlers.delete(handler);
  }

  url(path: string, query?: Query): string {
    let u = this.baseUrl + path;
    if (query) {
      const qs = new URLSearchParams();
      for (const [k, v] of Object.entries(query)) {
        if (v === undefined || v === null || v === '') continue;
        qs.set(k, String(v));
      }
      const s = qs.toString();
      if (s) u += (u.includes('?') ? '&' : '?') + s;
    }
    return u;
  }

  get<T>(path: string, opts: RequestOptions = {}): Promise<T> {
    return this.request<T>('GET', path, opts);
  }

  post<T>(path: string, body?: unknown, opts: RequestOptions = {}): Promise<T> {
    return this.request<T>('POST', path, { ...opts, body });
  }

  put<T>(path: string, body?: unknown, opts: RequestOptions = {}): Promise<T> {
    return this.request<T>('PUT', path, { ...opts, body });
  }

  delete<T>(path: string, opts: RequestOptions = {}): Promise<T> {
    return this.request<T>('DELETE', path, opts);
  }

  async request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    const send = (token: string | undefined) => this.sendFetch(method, path, opts, token);
    return this.withAuth<T>(send, !!opts.anonymous);
  }

  /**
   * Multipart upload through XMLHttpRequest, which (unlike fetch) reports
   * upload progress. Same token handling as every other request.
   */
  upload<T>(path: string, form: FormData, opts: UploadOptions = {}): Promise<T> {
    const send = (token: string | undefined) => sendXhr(this.url(path), form, token, opts);
    return this.withAuth<T>(send, false);
  }

  /** Exchanges the refresh token for new tokens; concurrent callers share one attempt. */
  refresh(): Promise<boolean> {
    if (!this.refreshing) {
      this.refreshing = this.doRefresh().finally(() => {
        this.refreshing = null;
      });
    }
    return this.refreshing;
  }

  private async doRefresh(): Promise<boolean> {
    const refreshToken = this.store.get()?.refreshToken;
    if (!refreshToken) return false;
    try {
      const res = await this.sendFetch('POST', REFRESH_PATH, { body: { refresh_token: refreshToken } }, undefined);
      if (res.status < 200 || res.status >= 300) return false;
      const body = JSON.parse(res.text) as TokenResponse;
      if (!body.access_token) return false;
      const next = tokensFrom(body);
      // Some servers rotate refresh tokens, some do not.
      if (!next.refreshToken) next.refreshToken = refreshToken;
      this.store.set(next);
      return true;
    } catch {
      return false;
    }
  }

  private async withAuth<T>(send: (token: string | undefined) => Promise<RawResponse>, anonymous: boolean): Promise<T> {
    const token = anonymous ? undefined : this.store.get()?.accessToken;
    let res = await send(token);
    if (res.status === 401 && !anonymous) {
      const refreshed = await this.refresh();
      if (refreshed) {
        res = await send(this.store.get()?.accessToken);
      }
      if (res.status === 401) {
        this.store.clear();
        for (const h of this.authLostHandlers) h();
      }
    }
    if (res.status < 200 || res.status >= 300) throw parseError(res);
    if (!res.text) return undefined as T;
    try {
      return JSON.parse(res.text) as T;
    } catch {
      throw new ApiError(res.status, 'bad_response', 'The server answered with something that is not JSON.', res.traceId ?? undefined);
    }
  }

  private async sendFetch(method: string, path: string, opts: RequestOptions, token: string | undefined): Promise<RawResponse> {
    const headers: Record<string, string> = { Accept: 'application/json', ...opts.headers };
    let body: BodyInit | undefined;
    if (opts.body !== undefined) {
      headers['Content-Type'] = 'application/json';
      body = JSON.stringify(opts.body);
    }
    if (token) headers.Authorization = `Bearer ${token}`;
    let res: Response;
    try {
      res = await this.fetchFn(this.url(path, opts.query), { method, headers, body, signal: opts.signal });
    } catch (e) {
      if (e instanceof DOMException && e.name === 'AbortError') throw e;
      throw new ApiError(0, 'network', 'The server could not be reached. Check your connection and try again.');
    }
    const text = await res.text();
    return { status: res.status, statusText: res.statusText, text, traceId: res.headers.get('X-Trace-Id') };
  }
}

function sendXhr(url: string, form: FormData, token: string | undefined, opts: UploadOptions): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', url);
    xhr.setRequestHeader('Accept', 'application/json');
    if (token) xhr.setRequestHeader('Authorization', `Bearer ${token}`);
    if (opts.onProgress) {
      const cb = opts.onProgress;
      xhr.upload.onprogress = (ev) => cb(ev.loaded, ev.lengthComputable ? ev.total : 0);
    }
    xhr.onload = () =>
      resolve({
        status: xhr.status,
        statusText: xhr.statusText,
        text: xhr.responseText,
        traceId: xhr.getResponseHeader('X-Trace-Id'),
      });
    xhr.onerror = () => reject(new ApiError(0, 'network', 'The upload could not reach the server.'));
    xhr.onabort = () => reject(new DOMException('Upload cancelled', 'AbortError'));
    opts.signal?.addEventListener('abort', () => xhr.abort(), { once: true });
    xhr.send(form);
  });
}

export const apiClient = new ApiClient();
