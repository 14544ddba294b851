/**
 * The console's doors on the admin server: static files (and nothing else) under /console/, sign-in
 * for a cookie, the cookie opening what the token opens, CSRF and Origin on state changes, history
 * query errors, recordings with Range, and the health history.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { AdminServer, type AdminServerOptions } from '../../../src/admin/AdminServer';
import { SESSION_COOKIE } from '../../../src/admin/console/sessions';
import { Metrics } from '../../../src/admin/Metrics';
import type { HistoryQuery, RecordingFile } from '../../../src/admin/types';
import { FakeCalls, raw } from './helpers';

const TOKEN = 'unit-test-admin-token-0123456789';
let dir: string;
let calls: FakeCalls & { queries: HistoryQuery[]; recordingFile?: RecordingFile };
const servers: AdminServer[] = [];

async function start(opts: Partial<AdminServerOptions> = {}): Promise<{ s: AdminServer; base: string; host: string }> {
  const s = new AdminServer({
    host: '127.0.0.1',
    port: 0,
    token: TOKEN,
    calls,
    health: () => ({ accounts: [], aiConfigured: true }),
    status: () => ({ version: 'test' }),
    metrics: new Metrics({ defaultMetrics: false }),
    consoleDir: path.join(dir, 'console'),
    ...opts,
  });
  servers.push(s);
  await s.listen();
  return { s, base: s.address!.url, host: `127.0.0.1:${s.address!.port}` };
}

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'console-server-'));
  fs.mkdirSync(path.join(dir, 'console', 'sub'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'console', 'index.html'), '<!doctype html><title>console</title>');
  fs.writeFileSync(path.join(dir, 'console', 'app.js'), 'console.log(1)');
  fs.writeFileSync(path.join(dir, 'console', 'notes.txt'), 'not a console file type');
  fs.writeFileSync(path.join(dir, 'console', '.hidden.js'), 'HIDDEN_CONTENT');
  fs.writeFileSync(path.join(dir, 'console', 'sub', 'x.js'), 'NESTED_CONTENT');
  fs.writeFileSync(path.join(dir, 'secret.json'), '{"SECRET_CONTENT":true}');
  // A recording of 1000 bytes: byte i is i % 256.
  fs.writeFileSync(path.join(dir, 'rec.wav'), Buffer.from(Array.from({ length: 1000 }, (_, i) => i % 256)));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

beforeEach(() => {
  const c = new FakeCalls() as FakeCalls & { queries: HistoryQuery[]; recordingFile?: RecordingFile };
  c.queries = [];
  c.add({ id: 'live-1', state: 'conversing', from: 'sip:1000@pbx' });
  Object.assign(c, {
    history: (q: HistoryQuery) => {
      c.queries.push(q);
      return { calls: [{ id: 'old-1', state: 'ended' }], next: null, complete: true };
    },
    recording: (id: string) => (id === 'old-1' ? { path: path.join(dir, 'rec.wav'), contentType: 'audio/wav' } : undefined),
  });
  calls = c;
});
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});

/** Sign in from the console's own origin; returns the cookie and the CSRF token. */
async function signIn(base: string, host: string): Promise<{ cookie: string; csrf: string }> {
  const r = await raw(base, 'POST', '/console/session', {
    headers: { 'Content-Type': 'application/json', Origin: `http://${host}` },
    body: JSON.stringify({ token: TOKEN }),
  });
  expect(r.status).toBe(201);
  const set = String(r.headers['set-cookie']);
  expect(set).toMatch(/HttpOnly; SameSite=Strict; Path=\//);
  return { cookie: set.split(';')[0], csrf: r.json().csrf as string };
}

describe('console files', () => {
  it('serves the page with a strict CSP, nosniff and no framing, without a token', async () => {
    const { base } = await start();
    const r = await raw(base, 'GET', '/console/');
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(r.headers['content-security-policy']).toMatch(/default-src 'none'; script-src 'self'/);
    expect(r.headers['content-security-policy']).toMatch(/frame-ancestors 'none'/);
    expect(r.headers['content-security-policy']).not.toMatch(/unsafe/);
    expect(r.headers['x-content-type-options']).toBe('nosniff');
    expect(r.headers['x-frame-options']).toBe('DENY');
    const js = await raw(base, 'GET', '/console/app.js');
    expect(js.headers['content-type']).toMatch(/^text\/javascript/);
    const again = await raw(base, 'GET', '/console/app.js', { headers: { 'If-None-Match': String(js.headers.etag) } });
    expect(again.status).toBe(304);
    expect((await raw(base, 'GET', '/console')).headers.location).toBe('/console/');
  });

  it.each([
    '/console/../secret.json',
    '/console/%2e%2e/secret.json',
    '/console/..%2fsecret.json',
    '/console/%2e%2e%2fsecret.json',
    '/console/sub/x.js',
    '/console/sub%2fx.js',
    '/console/.hidden.js',
    '/console/notes.txt',
    '/console/app.js%00.html',
    '/console/%E0%A4%A',
    '/console//etc/passwd',
    '/console/index.html/',
  ])('answers %s with an error, never a file outside the built set', async (p) => {
    const { base } = await start();
    const r = await raw(base, 'GET', p);
    // 401: a client that normalised the dot-dot away asked for an API path.
    expect([400, 401, 404]).toContain(r.status);
    expect(r.body).not.toMatch(/SECRET_CONTENT|NESTED_CONTENT|HIDDEN_CONTENT/);
  });

  it('says the console is not built when the directory is missing', async () => {
    const { base } = await start({ consoleDir: path.join(dir, 'nowhere') });
    const r = await raw(base, 'GET', '/console/');
    expect(r.status).toBe(404);
    expect(r.json().error).toMatch(/npm run build:console/);
  });

  it('puts nosniff and frame-ancestors on API answers too', async () => {
    const { base } = await start();
    const r = await raw(base, 'GET', '/calls');
    expect(r.status).toBe(401);
    expect(r.headers['x-content-type-options']).toBe('nosniff');
    expect(r.headers['content-security-policy']).toMatch(/frame-ancestors 'none'/);
  });
});

describe('console sign-in', () => {
  it('trades the token for a cookie that opens the API', async () => {
    const { base, host } = await start();
    expect((await raw(base, 'GET', '/console/session')).json()).toEqual({ authenticated: false, tokenRequired: true });
    const { cookie, csrf } = await signIn(base, host);
    const state = (await raw(base, 'GET', '/console/session', { headers: { Cookie: cookie } })).json();
    expect(state).toEqual({ authenticated: true, tokenRequired: true, csrf });
    const list = await raw(base, 'GET', '/calls', { headers: { Cookie: cookie } });
    expect(list.status).toBe(200);
    expect((list.json().active as { id: string }[]).map((c) => c.id)).toEqual(['live-1']);
  });

  it.each([
    [{ Origin: 'http://evil.example' }, JSON.stringify({ token: TOKEN }), 403, /Origin/],
    [{}, JSON.stringify({ token: TOKEN }), 403, /Origin/],
    [{ Origin: 'ORIGIN' }, JSON.stringify({ token: 'wrong-token' }), 401, /invalid admin token/],
    [{ Origin: 'ORIGIN' }, JSON.stringify({}), 401, /invalid admin token/],
    [{ Origin: 'ORIGIN' }, JSON.stringify({ token: 42 }), 400, /token must be a string/],
    [{ Origin: 'ORIGIN' }, JSON.stringify({ token: TOKEN, admin: true }), 400, /admin is not a known field/],
    [{ Origin: 'ORIGIN' }, JSON.stringify([TOKEN]), 400, /JSON object/],
    [{ Origin: 'ORIGIN' }, '{"token":', 400, /invalid JSON/],
  ])('refuses a sign-in with headers %p and body %s', async (h, body, status, msg) => {
    const { base, host } = await start();
    const headers: Record<string, string> = { 'Content-Type': 'application/json' };
    for (const [k, v] of Object.entries(h)) headers[k] = v === 'ORIGIN' ? `http://${host}` : v;
    const r = await raw(base, 'POST', '/console/session', { headers, body });
    expect(r.status).toBe(status);
    expect(r.json().error).toMatch(msg);
    expect(r.headers['set-cookie']).toBeUndefined();
  });

  it('marks the cookie Secure when a TLS proxy says the browser came over HTTPS', async () => {
    const { base, host } = await start();
    const r = await raw(base, 'POST', '/console/session', {
      headers: { 'Content-Type': 'application/json', Origin: `https://${host}`, 'X-Forwarded-Proto': 'https' },
      body: JSON.stringify({ token: TOKEN }),
    });
    expect(r.status).toBe(201);
    expect(String(r.headers['set-cookie'])).toMatch(/; Secure$/);
  });

  it('answers 429 after too many wrong tokens', async () => {
    const { base, host } = await start();
    const headers = { 'Content-Type': 'application/json', Origin: `http://${host}` };
    let last = 0;
    for (let i = 0; i < 21; i++) last = (await raw(base, 'POST', '/console/session', { headers, body: JSON.stringify({ token: `wrong-${i}` }) })).status;
    expect(last).toBe(429);
  });

  it('a made-up or signed-out cookie opens nothing', async () => {
    const { base, host } = await start();
    const { cookie, csrf } = await signIn(base, host);
    // The cookie is named after the port: two daemons on one host keep their sessions apart.
    expect(cookie.startsWith(`${SESSION_COOKIE}_${host.split(':')[1]}=`)).toBe(true);
    expect((await raw(base, 'GET', '/calls', { headers: { Cookie: `${cookie.split('=')[0]}=${'A'.repeat(43)}` } })).status).toBe(401);
    const out = await raw(base, 'DELETE', '/console/session', { headers: { Cookie: cookie, 'X-CSRF-Token': csrf, Origin: `http://${host}` } });
    expect(out.status).toBe(200);
    expect(String(out.headers['set-cookie'])).toMatch(/Max-Age=0/);
    expect((await raw(base, 'GET', '/calls', { headers: { Cookie: cookie } })).status).toBe(401);
  });
});

describe('CSRF on state changes made with the cookie', () => {
  it.each([
    ['no CSRF header', (o: string) => ({ Origin: o }), /missing CSRF token/],
    ['a wrong CSRF token', (o: string) => ({ Origin: o, 'X-CSRF-Token': 'nope' }), /invalid CSRF token/],
    ['no Origin', () => ({ 'X-CSRF-Token': 'CSRF' }), /Origin/],
    ['another Origin', () => ({ Origin: 'http://evil.example', 'X-CSRF-Token': 'CSRF' }), /Origin/],
  ])('refuses hang-up and dial-out with %s', async (_what, extra, msg) => {
    const { base, host } = await start();
    const { cookie, csrf } = await signIn(base, host);
    const headers = (more: Record<string, string>): Record<string, string> => {
      const h: Record<string, string> = { Cookie: cookie, 'Content-Type': 'application/json' };
      for (const [k, v] of Object.entries(more)) h[k] = v === 'CSRF' ? csrf : v;
      return h;
    };
    const del = await raw(base, 'DELETE', '/calls/live-1', { headers: headers(extra(`http://${host}`)) });
    expect(del.status).toBe(403);
    expect(del.json().error).toMatch(msg);
    const post = await raw(base, 'POST', '/calls', { headers: headers(extra(`http://${host}`)), body: JSON.stringify({ uri: 'sip:1000@pbx' }) });
    expect(post.status).toBe(403);
    expect(calls.hungUp).toEqual([]);
    expect(calls.placed).toEqual([]);
  });

  it('lets them through with the session token from the same origin; a bearer client needs neither', async () => {
    const { base, host } = await start();
    const { cookie, csrf } = await signIn(base, host);
    const h = { Cookie: cookie, 'X-CSRF-Token': csrf, Origin: `http://${host}`, 'Content-Type': 'application/json' };
    expect((await raw(base, 'DELETE', '/calls/live-1', { headers: h })).status).toBe(200);
    expect((await raw(base, 'POST', '/calls', { headers: h, body: JSON.stringify({ uri: 'sip:1000@pbx', instructions: 'Be brief.' }) })).status).toBe(202);
    expect((await raw(base, 'POST', '/calls', { headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json' }, body: JSON.stringify({ uri: 'sip:2000@pbx' }) })).status).toBe(202);
    expect(calls.hungUp).toEqual(['live-1']);
    expect(calls.placed.map((p) => p.uri)).toEqual(['sip:1000@pbx', 'sip:2000@pbx']);
  });

  it('on a token-less loopback API, sign-in needs no token, and a cookie request still needs the CSRF token', async () => {
    const { base, host } = await start({ token: undefined });
    expect((await raw(base, 'GET', '/console/session')).json()).toEqual({ authenticated: false, tokenRequired: false });
    const r = await raw(base, 'POST', '/console/session', { headers: { 'Content-Type': 'application/json', Origin: `http://${host}` }, body: '{}' });
    expect(r.status).toBe(201);
    const cookie = String(r.headers['set-cookie']).split(';')[0];
    expect((await raw(base, 'DELETE', '/calls/live-1', { headers: { Cookie: cookie, Origin: `http://${host}` } })).status).toBe(403);
    expect((await raw(base, 'GET', '/console/', { headers: { Host: 'evil.example' } })).status).toBe(403);
  });
});

describe('history queries', () => {
  it('passes a validated query to the history and pages the answer', async () => {
    const { base } = await start();
    const r = await raw(base, 'GET', '/calls?caller=1000&limit=5&offset=10', { headers: { Authorization: `Bearer ${TOKEN}` } });
    expect(r.status).toBe(200);
    expect(r.json()).toEqual({ recent: [{ id: 'old-1', state: 'ended' }], page: { limit: 5, offset: 10, next: null, complete: true } });
    expect(calls.queries).toEqual([{ caller: '1000', limit: 5, offset: 10 }]);
  });

  it.each([
    ['/calls?limit=1000', 'limit'],
    ['/calls?since=nope', 'since'],
    ['/calls?sort=asc', 'sort'],
    ['/calls?minDuration=-3', 'minDuration'],
  ])('answers %s with 400 naming %s', async (p, field) => {
    const { base } = await start();
    const r = await raw(base, 'GET', p, { headers: { Authorization: `Bearer ${TOKEN}` } });
    expect(r.status).toBe(400);
    expect(r.json()).toMatchObject({ field, error: expect.stringContaining(field) });
    expect(calls.queries).toEqual([]);
  });

  it('needs the token like the plain list', async () => {
    const { base } = await start();
    expect((await raw(base, 'GET', '/calls?caller=1000')).status).toBe(401);
  });
});

describe('recordings', () => {
  const auth = { Authorization: `Bearer ${TOKEN}` };
  it('sends the whole file, or the range asked for', async () => {
    const { base } = await start();
    const whole = await raw(base, 'GET', '/calls/old-1/recording', { headers: auth });
    expect(whole.status).toBe(200);
    expect(whole.headers['accept-ranges']).toBe('bytes');
    expect(whole.headers['content-length']).toBe('1000');
    const part = await raw(base, 'GET', '/calls/old-1/recording', { headers: { ...auth, Range: 'bytes=10-12' } });
    expect(part.status).toBe(206);
    expect(part.headers['content-range']).toBe('bytes 10-12/1000');
    expect([...Buffer.from(part.body, 'latin1')]).toEqual([10, 11, 12]);
    const tail = await raw(base, 'GET', '/calls/old-1/recording', { headers: { ...auth, Range: 'bytes=-2' } });
    expect(tail.headers['content-range']).toBe('bytes 998-999/1000');
    const head = await raw(base, 'HEAD', '/calls/old-1/recording', { headers: auth });
    expect(head.status).toBe(200);
    expect(head.body).toBe('');
  });

  it('answers an unsatisfiable range with 416 and the size, and ignores a malformed one', async () => {
    const { base } = await start();
    const r = await raw(base, 'GET', '/calls/old-1/recording', { headers: { ...auth, Range: 'bytes=1000-' } });
    expect(r.status).toBe(416);
    expect(r.headers['content-range']).toBe('bytes */1000');
    for (const bad of ['bytes=5-1', 'bytes=0-1,3-4', 'pages=1-2', 'bytes=x-']) {
      const w = await raw(base, 'GET', '/calls/old-1/recording', { headers: { ...auth, Range: bad } });
      expect([bad, w.status, w.headers['content-length']]).toEqual([bad, 200, '1000']);
    }
  });

  it('is 404 for a call without one, and needs the token or a session', async () => {
    const { base } = await start();
    expect((await raw(base, 'GET', '/calls/live-1/recording', { headers: auth })).status).toBe(404);
    expect((await raw(base, 'GET', '/calls/old-1/recording')).status).toBe(401);
  });
});

describe('GET /health/history', () => {
  it('reports the interval and the sample in progress', async () => {
    const { base } = await start();
    const r = await raw(base, 'GET', '/health/history?minutes=60', { headers: { Authorization: `Bearer ${TOKEN}` } });
    expect(r.status).toBe(200);
    expect(r.json()).toMatchObject({ intervalSec: 60, samples: [], current: { activeCalls: 0, calls: {}, underruns: 0 } });
  });

  it.each(['minutes=0', 'minutes=abc', 'minutes=1.5', 'hours=1', 'minutes=1000000'])('refuses ?%s with 400', async (q) => {
    const { base } = await start();
    const r = await raw(base, 'GET', `/health/history?${q}`, { headers: { Authorization: `Bearer ${TOKEN}` } });
    expect(r.status).toBe(400);
  });
});
