import net from 'node:net';
import { AdminServer, type AdminServerOptions } from '../../../src/admin/AdminServer';
import { Metrics } from '../../../src/admin/Metrics';
import type { HealthInput } from '../../../src/admin/types';
import { AgentError, ConfigError, InvalidStateError, SipError } from '../../../src/util/errors';
import { FakeCalls, parseExposition, raw, readStream, type Frame } from './helpers';

let calls: FakeCalls;
let health: HealthInput;
let server: AdminServer;
let base: string;
const servers: AdminServer[] = [];

async function start(opts: Partial<AdminServerOptions> = {}): Promise<AdminServer> {
  const s = new AdminServer({
    host: '127.0.0.1',
    port: 0,
    calls,
    health: () => health,
    status: () => ({ version: '0.1.0', activeCalls: calls.list().active.length, config: { ai: { apiKey: '[redacted]' } } }),
    metrics: new Metrics({ defaultMetrics: false }),
    ...opts,
  });
  servers.push(s);
  await s.listen();
  return s;
}

const JSON_HEADERS = { 'Content-Type': 'application/json' };

beforeEach(async () => {
  calls = new FakeCalls();
  health = { accounts: [{ name: 'office', registers: true, registered: true }], aiConfigured: true };
  server = await start();
  base = server.address!.url;
});
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});

describe('GET /healthz', () => {
  it('answers 200 ok when every registering account is registered and the AI endpoint is configured', async () => {
    health.accounts.push({ name: 'direct', registers: false, registered: false });
    const r = await raw(base, 'GET', '/healthz');
    expect(r.status).toBe(200);
    expect(r.json()).toMatchObject({ status: 'ok', accounts: [{ name: 'office', registered: true }, { name: 'direct', registers: false }] });
  });

  it('answers 503 with every reason otherwise', async () => {
    health = {
      accounts: [
        { name: 'office', registers: true, registered: false, status: 401, reason: 'Unauthorized' },
        { name: 'direct', registers: false, registered: false },
      ],
      aiConfigured: false,
    };
    const r = await raw(base, 'GET', '/healthz');
    expect(r.status).toBe(503);
    expect(r.json()).toEqual({
      status: 'unhealthy',
      reasons: ['account office is not registered (status 401 Unauthorized)', 'the AI endpoint is not configured'],
    });
  });

  it('answers 503 when the health callback throws', async () => {
    await server.close();
    server = await start({
      health: () => {
        throw new Error('registry gone');
      },
    });
    const r = await raw(server.address!.url, 'GET', '/healthz');
    expect(r.status).toBe(503);
    expect(r.json()).toEqual({ status: 'unhealthy', reasons: ['health check failed: registry gone'] });
  });

  it('answers HEAD like GET without a body', async () => {
    const r = await raw(base, 'HEAD', '/healthz');
    expect(r.status).toBe(200);
    expect(r.body).toBe('');
  });
});

describe('GET /metrics and /status', () => {
  it('serves the metrics as Prometheus text', async () => {
    server.metrics.callStarted();
    server.metrics.setRegistration('office', true);
    const r = await raw(base, 'GET', '/metrics');
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    const s = parseExposition(r.body);
    expect(s.get('sip_ai_agent_active_calls')).toBe(1);
    expect(s.get('sip_ai_agent_registration_state{account="office"}')).toBe(1);
  });

  it('serves the status callback as JSON', async () => {
    const r = await raw(base, 'GET', '/status');
    expect(r.status).toBe(200);
    expect(r.json()).toEqual({ version: '0.1.0', activeCalls: 0, config: { ai: { apiKey: '[redacted]' } } });
  });
});

describe('/calls', () => {
  beforeEach(() => {
    calls.add({ id: 'c1', state: 'active', from: 'sip:alice@pbx', startedAt: '2025-01-01T00:00:00.000Z' });
    calls.add({ id: 'c0', state: 'ended', endedAt: '2025-01-01T00:00:05.000Z', endReason: 'caller_hangup' });
  });

  it('GET /calls lists active and recent calls', async () => {
    const r = await raw(base, 'GET', '/calls');
    expect(r.status).toBe(200);
    expect(r.json()).toEqual({
      active: [{ id: 'c1', state: 'active', from: 'sip:alice@pbx', startedAt: '2025-01-01T00:00:00.000Z' }],
      recent: [{ id: 'c0', state: 'ended', endedAt: '2025-01-01T00:00:05.000Z', endReason: 'caller_hangup' }],
    });
  });

  it('GET /calls/:id returns the call, 404 for an unknown id', async () => {
    expect((await raw(base, 'GET', '/calls/c1')).json()).toMatchObject({ id: 'c1', state: 'active' });
    const r = await raw(base, 'GET', '/calls/nope');
    expect(r.status).toBe(404);
    expect(r.json()).toEqual({ error: 'no call with id nope' });
  });

  it('decodes percent-encoded ids and rejects broken encodings', async () => {
    calls.add({ id: 'a b', state: 'active' });
    expect((await raw(base, 'GET', '/calls/a%20b')).status).toBe(200);
    expect((await raw(base, 'GET', '/calls/%E0%A4%A')).status).toBe(400);
  });

  it('POST /calls answers 202 with the id and a Location', async () => {
    const r = await raw(base, 'POST', '/calls', {
      headers: JSON_HEADERS,
      body: JSON.stringify({ uri: 'sip:1000@pbx.example.com', instructions: 'Remind about the appointment', headers: { 'X-Campaign': 'spring' } }),
    });
    expect(r.status).toBe(202);
    expect(r.json()).toEqual({ id: 'out-1' });
    expect(r.headers.location).toBe('/calls/out-1');
    expect(calls.placed).toEqual([{ uri: 'sip:1000@pbx.example.com', instructions: 'Remind about the appointment', headers: { 'X-Campaign': 'spring' } }]);
  });

  it.each([
    [{}, 'uri', 'invalid request: uri is required'],
    [{ uri: 42 }, 'uri', 'invalid request: uri must be a string'],
    [{ uri: 'http://example.com' }, 'uri', 'invalid request: uri must be a sip:, sips: or tel: URI (e.g. sip:1000@pbx.example.com)'],
    [{ uri: 'sip:1@pbx', instructions: 7 }, 'instructions', 'invalid request: instructions must be a string'],
    [{ uri: 'sip:1@pbx', headers: ['x'] }, 'headers', 'invalid request: headers must be an object of header names to strings'],
    [{ uri: 'sip:1@pbx', headers: { Via: 'x' } }, 'headers.Via', 'invalid request: headers.Via is not allowed: only X- headers (letters, digits, -) may be added'],
    [{ uri: 'sip:1@pbx', headers: { 'X-A': 'a\r\nVia: evil' } }, 'headers.X-A', 'invalid request: headers.X-A must not contain control characters'],
    [{ uri: 'sip:1@pbx', callerId: 'x' }, 'callerId', 'invalid request: callerId is not a known field (uri, instructions, headers)'],
  ])('POST /calls %j -> 400 naming %s', async (body, field, error) => {
    const r = await raw(base, 'POST', '/calls', { headers: JSON_HEADERS, body: JSON.stringify(body) });
    expect(r.status).toBe(400);
    expect(r.json()).toEqual({ error, field });
    expect(calls.placed).toHaveLength(0);
  });

  it('POST /calls with bad JSON answers 400 with an error', async () => {
    const r = await raw(base, 'POST', '/calls', { headers: JSON_HEADERS, body: '{"uri": ' });
    expect(r.status).toBe(400);
    expect(String(r.json().error)).toMatch(/^invalid JSON: /);
    const empty = await raw(base, 'POST', '/calls', { headers: JSON_HEADERS, body: '' });
    expect(empty.json()).toEqual({ error: 'invalid JSON: the body is empty' });
    const arr = await raw(base, 'POST', '/calls', { headers: JSON_HEADERS, body: '[]' });
    expect(arr.status).toBe(400);
  });

  it('POST /calls without a JSON content type answers 415', async () => {
    const r = await raw(base, 'POST', '/calls', { headers: { 'Content-Type': 'text/plain' }, body: '{"uri":"sip:1@pbx"}' });
    expect(r.status).toBe(415);
    expect(calls.placed).toHaveLength(0);
  });

  it('answers 413 for a body over the limit, declared or streamed', async () => {
    const big = JSON.stringify({ uri: 'sip:1@pbx', instructions: 'x'.repeat(70 * 1024) });
    const declared = await raw(base, 'POST', '/calls', { headers: JSON_HEADERS, body: big });
    expect(declared.status).toBe(413);
    expect(declared.json()).toEqual({ error: 'request body too large [limit:65536 bytes]' });
    const streamed = await raw(base, 'POST', '/calls', { headers: JSON_HEADERS, body: big, chunked: true });
    expect(streamed.status).toBe(413);
    expect(calls.placed).toHaveLength(0);
  });

  it.each([
    ['InvalidStateError', new InvalidStateError('at capacity [active:8, max:8]'), 409],
    ['SipError', new SipError('no account can reach this URI [uri:sip:1@x]', 0), 502],
    ['TypeError', new TypeError('bad uri'), 400],
    ['an error with httpStatus', Object.assign(new Error('slow down'), { httpStatus: 429 }), 429],
  ])('maps a place() failure (%s) to %i with its message', async (_name, err, status) => {
    calls.placeError = err;
    const r = await raw(base, 'POST', '/calls', { headers: JSON_HEADERS, body: '{"uri":"sip:1@x"}' });
    expect(r.status).toBe(status);
    expect(r.json()).toEqual({ error: (err as Error).message });
  });

  it('does not leak the message of an unexpected error', async () => {
    calls.placeError = new Error('secret internals at /opt/thing');
    const r = await raw(base, 'POST', '/calls', { headers: JSON_HEADERS, body: '{"uri":"sip:1@x"}' });
    expect(r.status).toBe(500);
    expect(r.json()).toEqual({ error: 'internal error (see the daemon log)' });
  });

  it('DELETE /calls/:id hangs up, 404 for an unknown or ended call', async () => {
    const r = await raw(base, 'DELETE', '/calls/c1');
    expect(r.status).toBe(200);
    expect(r.json()).toEqual({ id: 'c1', status: 'hanging_up' });
    expect(calls.hungUp).toEqual(['c1']);
    expect((await raw(base, 'DELETE', '/calls/zzz')).status).toBe(404);
    expect((await raw(base, 'DELETE', '/calls/c0')).status).toBe(404);
  });
});

describe('routing', () => {
  it('answers 404 for an unknown route and 405 with Allow for a wrong method', async () => {
    const r = await raw(base, 'GET', '/nope');
    expect(r.status).toBe(404);
    expect(r.json()).toEqual({ error: 'no such endpoint [path:/nope]' });
    const m = await raw(base, 'PUT', '/calls');
    expect(m.status).toBe(405);
    expect(m.headers.allow).toBe('GET, POST');
    expect(m.json().error).toBe('method PUT not allowed on /calls (allowed: GET, POST)');
    expect((await raw(base, 'POST', '/calls/c1')).headers.allow).toBe('GET, DELETE');
    expect((await raw(base, 'POST', '/healthz')).status).toBe(405);
  });

  it('ignores the query string when routing', async () => {
    expect((await raw(base, 'GET', '/healthz?verbose=1')).status).toBe(200);
  });

  it('refuses a non-loopback Host header when no token is set (DNS rebinding)', async () => {
    const r = await raw(base, 'GET', '/calls', { headers: { Host: 'evil.example.com' } });
    expect(r.status).toBe(403);
    expect((await raw(base, 'GET', '/calls', { headers: { Host: 'localhost:8089' } })).status).toBe(200);
  });
});

describe('GET /calls/:id/events', () => {
  it('streams the state, the transcript so far, live lines, then ended, and closes', async () => {
    calls.add({
      id: 'c1',
      state: 'active',
      startedAt: '2025-01-01T00:00:00.000Z',
      transcript: [
        { speaker: 'agent', text: 'Hello!', seq: 0 },
        { speaker: 'caller', text: 'Hi', seq: 1 },
      ],
    });
    const done = readStream(base, '/calls/c1/events', {
      onFrame: (_f, all) => {
        if (all.length === 3) {
          calls.emit('c1', { type: 'transcript', speaker: 'caller', text: 'Hi', seq: 1 }); // already replayed
          calls.emit('c1', { type: 'transcript', speaker: 'agent', text: 'How can I help?', seq: 2 });
          calls.emit('c1', { type: 'state', state: 'ending', reason: 'caller_hangup' });
          calls.emit('c1', { type: 'ended', reason: 'caller_hangup', sipStatus: 200 });
          calls.emit('c1', { type: 'transcript', speaker: 'agent', text: 'after the end', seq: 3 });
        }
      },
    });
    const { status, headers, frames } = await done;
    expect(status).toBe(200);
    expect(headers['content-type']).toBe('text/event-stream; charset=utf-8');
    expect(frames.map((f) => [f.event, f.data])).toEqual([
      ['state', { state: 'active', at: '2025-01-01T00:00:00.000Z' }],
      ['transcript', { speaker: 'agent', text: 'Hello!', seq: 0 }],
      ['transcript', { speaker: 'caller', text: 'Hi', seq: 1 }],
      ['transcript', { speaker: 'agent', text: 'How can I help?', seq: 2 }],
      ['state', { state: 'ending', reason: 'caller_hangup' }],
      ['ended', { reason: 'caller_hangup', sipStatus: 200 }],
    ]);
    expect(calls.subscribers('c1')).toBe(0);
    expect(server.sseClients).toBe(0);
  });

  it('sends state and ended at once for a call that is already over', async () => {
    calls.add({ id: 'c0', state: 'ended', endedAt: '2025-01-01T00:00:05.000Z', endReason: 'agent_hangup' });
    const { frames } = await readStream(base, '/calls/c0/events');
    expect(frames.map((f) => f.event)).toEqual(['state', 'ended']);
    expect(frames[1].data).toEqual({ reason: 'agent_hangup', at: '2025-01-01T00:00:05.000Z' });
  });

  it('answers 404 JSON for an unknown call', async () => {
    const r = await raw(base, 'GET', '/calls/zzz/events');
    expect(r.status).toBe(404);
    expect(r.json()).toEqual({ error: 'no call with id zzz' });
  });

  it('sends heartbeat comments while the call is quiet', async () => {
    await server.close();
    server = await start({ heartbeatMs: 20 });
    calls.add({ id: 'q', state: 'active' });
    const { frames } = await readStream(server.address!.url, '/calls/q/events', {
      onFrame: (f: Frame) => {
        if (f.comment === 'heartbeat') calls.emit('q', { type: 'ended', reason: 'done' });
      },
    });
    expect(frames.map((f) => f.event ?? `:${f.comment}`)).toEqual(['state', ':heartbeat', 'ended']);
  });

  it('unsubscribes when the client goes away', async () => {
    calls.add({ id: 'c2', state: 'active' });
    await new Promise<void>((resolve) => {
      const sock = net.connect(Number(new URL(base).port), '127.0.0.1', () => {
        sock.write('GET /calls/c2/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
      });
      sock.once('data', () => {
        expect(calls.subscribers('c2')).toBe(1);
        sock.destroy();
        resolve();
      });
    });
    await calls.noSubscribers('c2');
    expect(calls.subscribers('c2')).toBe(0);
  });

  it('close() ends open event streams', async () => {
    calls.add({ id: 'c3', state: 'active' });
    const done = readStream(base, '/calls/c3/events', {
      onFrame: () => void server.close(),
    });
    const { frames } = await done;
    expect(frames.map((f) => f.event)).toEqual(['state']);
    expect(server.closed).toBe(true);
    expect(calls.subscribers('c3')).toBe(0);
  });

  it('refuses streams beyond maxSseClients with 503', async () => {
    await server.close();
    server = await start({ maxSseClients: 1 });
    const url = server.address!.url;
    calls.add({ id: 'c4', state: 'active' });
    let first: Promise<unknown> | undefined;
    await new Promise<void>((resolve) => {
      first = readStream(url, '/calls/c4/events', { onFrame: () => resolve() });
    });
    const second = await raw(url, 'GET', '/calls/c4/events');
    expect(second.status).toBe(503);
    calls.emit('c4', { type: 'ended' });
    await first;
  });
});

describe('authentication', () => {
  const TOKEN = 'correct-horse-battery-staple';

  it('refuses to bind a non-loopback address without a token', () => {
    expect(() => new AdminServer({ host: '0.0.0.0', calls, health: () => health, status: () => ({}) })).toThrow(ConfigError);
    let err: unknown;
    try {
      new AdminServer({ host: '192.0.2.10', calls, health: () => health, status: () => ({}) });
    } catch (e) {
      err = e;
    }
    expect((err as ConfigError).problems).toEqual([{ path: 'admin.token', message: 'is required when admin.listen (192.0.2.10) is not a loopback address' }]);
    expect(() => new AdminServer({ host: '::1', calls, health: () => health, status: () => ({}) })).not.toThrow();
  });

  it('requires the bearer token when one is set, answering 401 with WWW-Authenticate', async () => {
    const s = await start({ token: TOKEN });
    const url = s.address!.url;
    const none = await raw(url, 'GET', '/calls');
    expect(none.status).toBe(401);
    expect(none.headers['www-authenticate']).toBe('Bearer realm="sip-ai-agent"');
    const wrong = await raw(url, 'GET', '/calls', { headers: { Authorization: `Bearer ${TOKEN}x` } });
    expect(wrong.status).toBe(401);
    expect(wrong.headers['www-authenticate']).toBe('Bearer realm="sip-ai-agent", error="invalid_token"');
    const basic = await raw(url, 'GET', '/metrics', { headers: { Authorization: `Basic ${Buffer.from('a:b').toString('base64')}` } });
    expect(basic.status).toBe(401);
    const ok = await raw(url, 'GET', '/calls', { headers: { Authorization: `Bearer ${TOKEN}`, Host: 'agent.example.com' } });
    expect(ok.status).toBe(200);
    expect((await raw(url, 'GET', '/nope')).status).toBe(401); // routes are not revealed without the token
  });

  it('serves openPaths without the token, to loopback Host headers only', async () => {
    const s = await start({ token: TOKEN, openPaths: ['/metrics'] });
    const url = s.address!.url;
    expect((await raw(url, 'GET', '/metrics')).status).toBe(200);
    expect((await raw(url, 'GET', '/metrics', { headers: { Host: 'evil.example.com' } })).status).toBe(403);
    expect((await raw(url, 'GET', '/calls')).status).toBe(401);
  });

  it('leaves /healthz open unless protectHealthz is set', async () => {
    const open = await start({ token: TOKEN });
    expect((await raw(open.address!.url, 'GET', '/healthz')).status).toBe(200);
    const closed = await start({ token: TOKEN, protectHealthz: true });
    expect((await raw(closed.address!.url, 'GET', '/healthz')).status).toBe(401);
  });
});

describe('lifecycle', () => {
  it('listen() names host:port when the port is in use', async () => {
    const port = server.address!.port;
    const other = new AdminServer({ host: '127.0.0.1', port, calls, health: () => health, status: () => ({}), metrics: new Metrics({ defaultMetrics: false }) });
    servers.push(other);
    const err = await other.listen().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AgentError);
    expect((err as AgentError).code).toBe('ERR_ADMIN_LISTEN');
    expect((err as Error).message).toBe(
      `admin API cannot listen on 127.0.0.1:${port}: the address is already in use (is another sip-ai-agent running, or another service on this port?) [code:EADDRINUSE]`,
    );
    expect(other.address).toBeUndefined();
  });

  it('close() is idempotent and listen() after close() is refused', async () => {
    const a = server.close();
    expect(server.close()).toBe(a);
    await a;
    await expect(server.listen()).rejects.toThrow(InvalidStateError);
  });
});
