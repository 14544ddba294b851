import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { FakeRealtimeServer } from '../../fakes/FakeRealtimeServer';
import { RawRealtimeClient } from '../../fakes/RawRealtimeClient';

const AUTH = { Authorization: 'Bearer any' };

describe('FakeRealtimeServer test controls', () => {
  let server: FakeRealtimeServer;

  beforeEach(async () => {
    server = new FakeRealtimeServer({ burstFactor: Infinity });
    await server.listen();
  });

  afterEach(async () => {
    await server.close();
  });

  it('expireSession sends session_expired then closes the socket', async () => {
    const c = await RawRealtimeClient.connect(server.url, AUTH);
    const s = await server.waitForSession(2000, 0);
    await c.waitFor('conversation.created');
    expect(server.expireSession(s.id)).toBe(true);
    const closed = await c.closed();
    expect(closed.code).toBe(1000);
    const last = c.events[c.events.length - 1]!;
    expect(last.type).toBe('error');
    expect(last['error']).toMatchObject({
      type: 'invalid_request_error',
      code: 'session_expired',
      message: 'Your session hit the maximum duration of 60 minutes.',
    });
    expect((await s.waitClosed()).code).toBe(1000);
    expect(s.closed).toBe(true);
    expect(server.expireSession(s.id)).toBe(false);
  });

  it('expires sessions by itself after sessionMaxMs', async () => {
    await server.close();
    server = new FakeRealtimeServer({ sessionMaxMs: 50 });
    await server.listen();
    const c = await RawRealtimeClient.connect(server.url, AUTH);
    await c.closed();
    expect(c.all('error')[0]!['error']).toMatchObject({ code: 'session_expired' });
  });

  it('dropSession kills the TCP connection without a close frame, mid-response', async () => {
    await server.close();
    server = new FakeRealtimeServer({ burstFactor: 1 });
    await server.listen();
    const c = await RawRealtimeClient.connect(server.url, AUTH);
    const s = await server.waitForSession(2000, 0);
    c.send({ type: 'response.create' });
    await c.waitFor('response.output_audio.delta');
    expect(server.dropSession(s.id)).toBe(true);
    expect((await c.closed()).code).toBe(1006);
    expect(c.all('response.done')).toEqual([]);
    await s.waitClosed();
    expect(s.closed).toBe(true);
    expect(s.responses[0]).toMatchObject({ status: 'failed', reason: 'disconnected' });
  });

  it('dropAll drops every open session and counts connections', async () => {
    const a = await RawRealtimeClient.connect(server.url, AUTH);
    const b = await RawRealtimeClient.connect(server.url, AUTH);
    await server.waitForSession(2000, 1);
    server.dropAll();
    expect((await a.closed()).code).toBe(1006);
    expect((await b.closed()).code).toBe(1006);
    expect(server.connectionCount).toBe(2);
    const again = await RawRealtimeClient.connect(server.url, AUTH);
    expect(server.connectionCount).toBe(3);
    await again.close();
  });

  it('waitFor matches events by type or predicate across sessions and directions', async () => {
    const pending = server.waitFor('session.update');
    const out = server.waitFor((o) => o.dir === 'out' && o.event['type'] === 'session.updated');
    const c = await RawRealtimeClient.connect(server.url, AUTH);
    c.send({ type: 'session.update', session: { type: 'realtime', instructions: 'x' } });
    const got = await pending;
    expect(got.dir).toBe('in');
    expect(got.session).toBe(server.sessions[0]);
    expect((await out).event['session']).toMatchObject({ instructions: 'x' });
    const s = got.session;
    const mark = s.mark();
    c.send({ type: 'response.create' });
    await c.waitFor('response.done');
    // With a mark, events logged before the call still match.
    expect((await s.waitFor('response.done', 100, mark)).dir).toBe('out');
    await expect(s.waitFor('response.done', 20)).rejects.toThrow(/timed out/);
    await c.close();
  });

  it('exposes the session record: url, headers, config history, events, items', async () => {
    const c = await RawRealtimeClient.connect(`${server.baseUrl}/v1/realtime?model=gpt-realtime-2025-08-28`, { ...AUTH, 'X-Test': '1' });
    c.send({ type: 'session.update', session: { type: 'realtime', instructions: 'y' } });
    c.send({ type: 'conversation.item.create', item: { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'hello' }] } });
    await c.waitFor('conversation.item.done');
    const s = server.sessions[0]!;
    expect(s.url).toBe('/v1/realtime?model=gpt-realtime-2025-08-28');
    expect(s.model).toBe('gpt-realtime-2025-08-28');
    expect(s.headers['x-test']).toBe('1');
    expect(s.configHistory.map((cfg) => cfg['instructions'])).toEqual([expect.any(String), 'y']);
    expect(s.receivedEvents.map((e) => e['type'])).toEqual(['session.update', 'conversation.item.create']);
    expect(s.sentEvents.map((e) => e['type'])).toEqual([
      'session.created',
      'conversation.created',
      'session.updated',
      'conversation.item.added',
      'conversation.item.done',
    ]);
    expect(s.items[0]).toMatchObject({ role: 'user', content: [{ type: 'input_text', text: 'hello' }] });
    await c.close();
  });
});

describe('fake-realtime-cli', () => {
  it('prints "listening <url>" and serves sessions until SIGTERM', async () => {
    const root = join(__dirname, '..', '..', '..');
    const child = spawn(
      process.execPath,
      ['-r', './test/fakes/ts-register.js', 'test/fakes/fake-realtime-cli.ts', '--port', '0', '--key', 'sk-cli', '--burst', 'inf', '--tone-hz', '500', '--reply-ms', '300'],
      { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const lines = createInterface({ input: child.stdout! });
    const it = lines[Symbol.asyncIterator]();
    const first = (await it.next()).value as string;
    expect(first).toMatch(/^listening ws:\/\/127\.0\.0\.1:\d+\/v1\/realtime\?model=gpt-realtime$/);
    const url = first.slice('listening '.length);
    const c = await RawRealtimeClient.connect(url, { Authorization: 'Bearer sk-cli' });
    c.send({ type: 'response.create' });
    await c.waitFor('response.done');
    const bytes = c.all('response.output_audio.delta').reduce((n, e) => n + Buffer.from(e['delta'] as string, 'base64').length, 0);
    expect(bytes).toBe(300 * 48);
    await c.close();
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    const summary = JSON.parse((await it.next()).value as string) as Record<string, unknown>;
    expect(summary).toMatchObject({ responses: 1, errors: [] });
    expect(await exited).toBe(0);
  }, 20_000);
});
