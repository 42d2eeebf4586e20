import { describe, expect, it, vi } from 'vitest';
import { ApiClient, ApiError, TokenStore, parseError, tokensFrom } from './client';

function memoryStorage(): Storage {
  const m = new Map<string, string>();
  return {
    get length() {
      return m.size;
    },
    clear: () => m.clear(),
    getItem: (k) => m.get(k) ?? null,
    key: (i) => [...m.keys()][i] ?? null,
    removeItem: (k) => void m.delete(k),
    setItem: (k, v) => void m.set(k, v),
  };
}

type Reply = { status: number; body?: unknown; headers?: Record<string, string> };

function client(replies: (req: { url: string; init: RequestInit }) => Reply, tokens = { accessToken: 'old', refreshToken: 'r1' }) {
  const store = new TokenStore(memoryStorage());
  store.set(tokens);
  const seen: { url: string; init: RequestInit }[] = [];
  const fetch = vi.fn(async (url: string, init?: RequestInit) => {
    const req = { url, init: init ?? {} };
    seen.push(req);
    const r = replies(req);
    return new Response(r.body === undefined ? null : JSON.stringify(r.body), { status: r.status, headers: r.headers });
  });
  return { c: new ApiClient({ fetch, store }), store, seen, fetch };
}

const auth = (init: RequestInit) => (init.headers as Record<string, string>).Authorization;

describe('ApiClient', () => {
  it('sends the bearer token and parses JSON', async () => {
    const { c, seen } = client(() => ({ status: 200, body: { ok: true } }));
    await expect(c.get('/api/v1/x', { query: { limit: 5, cursor: null, stage: 'Closed Won' } })).resolves.toEqual({ ok: true });
    expect(seen[0]!.url).toBe('/api/v1/x?limit=5&stage=Closed+Won');
    expect(auth(seen[0]!.init)).toBe('Bearer old');
  });

  it('refreshes once on 401 and retries with the new token', async () => {
    const { c, store, seen } = client(({ url, init }) => {
      if (url === '/api/v1/auth/refresh') {
        expect(JSON.parse(init.body as string)).toEqual({ refresh_token: 'r1' });
        return { status: 200, body: { access_token: 'new', refresh_token: 'r2', token_type: 'bearer', expires_in: 60 } };
      }
      return auth(init) === 'Bearer new' ? { status: 200, body: { n: 1 } } : { status: 401, body: { error: { code: 'unauthorized', message: 'expired' } } };
    });
    await expect(c.get('/api/v1/y')).resolves.toEqual({ n: 1 });
    expect(seen.map((s) => s.url)).toEqual(['/api/v1/y', '/api/v1/auth/refresh', '/api/v1/y']);
    expect(store.get()?.accessToken).toBe('new');
    expect(store.get()?.refreshToken).toBe('r2');
    expect(store.get()?.expiresAt).toBeGreaterThan(Date.now());
  });

  it('shares one refresh between concurrent 401s', async () => {
    const { c, seen } = client(({ url, init }) => {
      if (url === '/api/v1/auth/refresh') return { status: 200, body: { access_token: 'new', token_type: 'bearer' } };
      return auth(init) === 'Bearer new' ? { status: 200, body: {} } : { status: 401 };
    });
    await Promise.all([c.get('/a'), c.get('/b'), c.get('/c')]);
    expect(seen.filter((s) => s.url === '/api/v1/auth/refresh')).toHaveLength(1);
  });

  it('keeps the old refresh token when the server does not rotate it', async () => {
    const { c, store } = client(({ url, init }) => {
      if (url === '/api/v1/auth/refresh') return { status: 200, body: { access_token: 'new', token_type: 'bearer' } };
      return auth(init) === 'Bearer new' ? { status: 200, body: {} } : { status: 401 };
    });
    await c.get('/a');
    expect(store.get()?.refreshToken).toBe('r1');
  });

  it('signs out when the refresh fails, and does not retry twice', async () => {
    const { c, store, seen } = client(({ url }) =>
      url === '/api/v1/auth/refresh' ? { status: 401, body: { error: { code: 'invalid_token', message: 'nope' } } } : { status: 401, body: { error: { code: 'unauthorized', message: 'expired', trace_id: 'tr-1' } } },
    );
    const lost = vi.fn();
    c.onAuthLost(lost);
    const err = await c.get('/a').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).status).toBe(401);
    expect((err as ApiError).traceId).toBe('tr-1');
    expect(store.get()).toBeNull();
    expect(lost).toHaveBeenCalledTimes(1);
    expect(seen.map((s) => s.url)).toEqual(['/a', '/api/v1/auth/refresh']);
  });

  it('signs out when a retried request is still unauthorized', async () => {
    const { c, store, seen } = client(({ url }) =>
      url === '/api/v1/auth/refresh' ? { status: 200, body: { access_token: 'new', token_type: 'bearer' } } : { status: 401 },
    );
    await expect(c.get('/a')).rejects.toMatchObject({ status: 401 });
    expect(seen).toHaveLength(3);
    expect(store.get()).toBeNull();
  });

  it('signs out on 401 without a refresh token', async () => {
    const { c, store, seen } = client(() => ({ status: 401 }), { accessToken: 'old', refreshToken: '' });
    await expect(c.get('/a')).rejects.toMatchObject({ status: 401 });
    expect(seen).toHaveLength(1);
    expect(store.get()).toBeNull();
  });

  it('never refreshes for anonymous calls such as login', async () => {
    const { c, seen, store } = client(() => ({ status: 401, body: { error: { code: 'bad_credentials', message: 'Wrong email or password' } } }));
    await expect(c.post('/api/v1/auth/login', { email: 'a', password: 'b' }, { anonymous: true })).rejects.toMatchObject({
      status: 401,
      code: 'bad_credentials',
      message: 'Wrong email or password',
    });
    expect(seen).toHaveLength(1);
    expect(auth(seen[0]!.init)).toBeUndefined();
    expect(store.get()?.accessToken).toBe('old');
  });

  it('marks 404 as not available', async () => {
    const { c } = client(() => ({ status: 404, body: { error: { code: 'not_found', message: 'Not Found' } } }));
    const err = (await c.get('/api/v1/aam/metrics').catch((e: unknown) => e)) as ApiError;
    expect(err.notAvailable).toBe(true);
  });

  it('turns a network failure into an ApiError', async () => {
    const store = new TokenStore(memoryStorage());
    const c = new ApiClient({ store, fetch: () => Promise.reject(new TypeError('Failed to fetch')) });
    await expect(c.get('/a')).rejects.toMatchObject({ status: 0, code: 'network' });
  });

  it('returns undefined for an empty body (202/204)', async () => {
    const { c } = client(() => ({ status: 204 }));
    await expect(c.delete('/a')).resolves.toBeUndefined();
  });
});

describe('parseError', () => {
  const raw = (status: number, text: string, traceId: string | null = null) => ({ status, statusText: 'Status', text, traceId });

  it('reads the backend error shape', () => {
    const e = parseError(raw(422, JSON.stringify({ error: { code: 'invalid', message: 'entity is required', trace_id: 'abc' } })));
    expect(e).toMatchObject({ status: 422, code: 'invalid', message: 'entity is required', traceId: 'abc' });
  });

  it('falls back to the X-Trace-Id header and status text', () => {
    const e = parseError(raw(502, '<html>Bad gateway</html>', 'hdr-trace'));
    expect(e).toMatchObject({ status: 502, code: 'http_502', message: 'Status', traceId: 'hdr-trace' });
  });

  it('uses a short plain-text body as the message', () => {
    expect(parseError(raw(500, 'database is down')).message).toBe('database is down');
  });

  it('accepts a bare string error', () => {
    expect(parseError(raw(400, JSON.stringify({ error: 'bad cursor' }))).message).toBe('bad cursor');
  });
});

describe('TokenStore', () => {
  it('keeps tokens in memory and localStorage, and clears both', () => {
    const storage = memoryStorage();
    const s = new TokenStore(storage);
    s.set(tokensFrom({ access_token: 'a', refresh_token: 'r', token_type: 'bearer', expires_in: 10 }, 1000));
    expect(s.get()).toEqual({ accessToken: 'a', refreshToken: 'r', expiresAt: 11_000 });
    expect(new TokenStore(storage).get()?.accessToken).toBe('a');
    s.clear();
    expect(s.get()).toBeNull();
    expect(new TokenStore(storage).get()).toBeNull();
  });

  it('ignores garbage in storage', () => {
    const storage = memoryStorage();
    storage.setItem('autonomos.auth', '{not json');
    expect(new TokenStore(storage).get()).toBeNull();
  });
});
