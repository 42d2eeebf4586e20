import { afterEach, describe, expect, it, vi } from 'vitest';
import { FakeWebSocket } from '../test/helpers';
import { LiveSocket, liveUrl } from './liveSocket';

afterEach(() => FakeWebSocket.reset());

function socket(token: (stale: boolean) => Promise<string | null> = async () => 'tok') {
  return new LiveSocket({
    url: (t, since) => liveUrl(t, since, { protocol: 'https:', host: 'example.test' }),
    token,
    WebSocketImpl: FakeWebSocket as unknown as typeof WebSocket,
    maxBackoffMs: 1000,
  });
}

describe('LiveSocket', () => {
  it('connects with the token, delivers messages and tracks the last seq', async () => {
    const s = socket();
    const got: unknown[] = [];
    const statuses: string[] = [];
    s.onMessage((m) => got.push(m));
    s.onStatus((st) => statuses.push(st));
    s.start();
    await vi.waitFor(() => expect(FakeWebSocket.instances).toHaveLength(1));
    const ws = FakeWebSocket.last();
    expect(ws.url).toBe('wss://example.test/dcl/ws?token=tok');
    ws.open();
    ws.send({ type: 'record.upserted', seq: 5, entity: 'account', id: 'A1' });
    ws.send('not json');
    ws.send({ nope: true });
    ws.send({ type: 'stats', seq: 3 });
    expect(got).toHaveLength(2);
    expect(s.since).toBe(5);
    expect(statuses).toEqual(['connecting', 'open']);
    s.stop();
    expect(ws.closed).toBe(true);
  });

  it('reconnects with ?since= the last seq after a drop', async () => {
    vi.useFakeTimers();
    const s = socket();
    s.start();
    await vi.waitFor(() => expect(FakeWebSocket.instances).toHaveLength(1));
    const ws = FakeWebSocket.last();
    ws.open();
    ws.send({ type: 'record.upserted', seq: 42, entity: 'account', id: 'A1' });
    ws.serverClose(1013);
    expect(s.state).toBe('reconnecting');
    await vi.advanceTimersByTimeAsync(1100);
    expect(FakeWebSocket.instances).toHaveLength(2);
    expect(FakeWebSocket.last().url).toBe('wss://example.test/dcl/ws?token=tok&since=42');
    s.stop();
  });

  it('asks for a fresh token after a refused handshake', async () => {
    vi.useFakeTimers();
    const token = vi.fn(async (_stale: boolean) => 'tok');
    const s = socket(token);
    s.start();
    await vi.waitFor(() => expect(FakeWebSocket.instances).toHaveLength(1));
    FakeWebSocket.last().serverClose(1006);
    await vi.advanceTimersByTimeAsync(1100);
    expect(token).toHaveBeenLastCalledWith(true);
    s.stop();
  });

  it('stops when there is no token', async () => {
    const s = socket(async () => null);
    s.start();
    await vi.waitFor(() => expect(s.state).toBe('closed'));
    expect(FakeWebSocket.instances).toHaveLength(0);
  });
});
