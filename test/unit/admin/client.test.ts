import http from 'node:http';
import net from 'node:net';
import { AdminClient, AdminClientError } from '../../../src/admin/client';
import { AdminServer } from '../../../src/admin/AdminServer';
import { Metrics } from '../../../src/admin/Metrics';
import { SseParser } from '../../../src/admin/sseParser';
import type { TranscriptEntry } from '../../../src/admin/types';
import { FakeCalls } from './helpers';

const TOKEN = 'a-long-enough-admin-token';
let calls: FakeCalls;
let server: AdminServer;
let client: AdminClient;

beforeEach(async () => {
  calls = new FakeCalls();
  server = new AdminServer({
    port: 0,
    token: TOKEN,
    calls,
    health: () => ({ accounts: [{ name: 'office', registers: true, registered: false, status: 408 }], aiConfigured: true }),
    status: () => ({ version: '0.1.0' }),
    metrics: new Metrics({ defaultMetrics: false }),
  });
  await server.listen();
  client = new AdminClient({ baseUrl: server.address!.url, token: TOKEN });
});
afterEach(async () => {
  await server.close();
});

async function failure(p: Promise<unknown>): Promise<AdminClientError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(AdminClientError);
    return err as AdminClientError;
  }
  throw new Error('expected a rejection');
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

describe('AdminClient', () => {
  it('reads status, calls, health and metrics', async () => {
    calls.add({ id: 'c1', state: 'active' });
    expect(await client.status()).toEqual({ version: '0.1.0' });
    expect(await client.calls()).toEqual({ active: [{ id: 'c1', state: 'active' }], recent: [] });
    expect(await client.call('c1')).toEqual({ id: 'c1', state: 'active' });
    expect(await client.health()).toEqual({ status: 'unhealthy', reasons: ['account office is not registered (status 408)'] });
    expect(await client.metrics()).toContain('sip_ai_agent_active_calls 0');
  });

  it('places a call and hangs it up', async () => {
    const placed = await client.placeCall('sip:1000@pbx', { instructions: 'Be brief' });
    expect(placed).toEqual({ id: 'out-1' });
    expect(calls.placed).toEqual([{ uri: 'sip:1000@pbx', instructions: 'Be brief' }]);
    await client.hangup('out-1');
    expect(calls.hungUp).toEqual(['out-1']);
  });

  it('turns API errors into sentences with the status', async () => {
    const e404 = await failure(client.hangup('nope'));
    expect(e404.message).toBe('no call with id nope (HTTP 404)');
    expect(e404.status).toBe(404);
    const e400 = await failure(client.placeCall('http://x'));
    expect(e400.message).toBe('invalid request: uri must be a sip:, sips: or tel: URI (e.g. sip:1000@pbx.example.com) (HTTP 400)');
  });

  it('explains a missing or wrong token', async () => {
    const url = server.address!.url;
    expect((await failure(new AdminClient({ baseUrl: url }).status())).message).toBe(
      `the daemon at ${url} requires an admin token (set admin.token or pass --token)`,
    );
    expect((await failure(new AdminClient({ baseUrl: url, token: 'wrong' }).status())).message).toBe(
      `the daemon at ${url} refused the admin token (check admin.token)`,
    );
  });

  it('says no daemon is listening when the connection is refused', async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    const err = await failure(new AdminClient({ baseUrl: url }).status());
    expect(err.message).toBe(`no daemon is listening on ${url} (is sip-ai-agent running?)`);
    expect(err.status).toBe(0);
  });

  it('says when something else answers on the port', async () => {
    const other = http.createServer((_q, s) => {
      s.writeHead(200, { 'Content-Type': 'text/html' });
      s.end('<html>router login</html>');
    });
    await new Promise<void>((r) => other.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(other.address() as net.AddressInfo).port}`;
    try {
      const err = await failure(new AdminClient({ baseUrl: url }).status());
      expect(err.message).toBe(`unexpected answer from ${url} (HTTP 200, text/html): is this the sip-ai-agent admin API?`);
    } finally {
      await new Promise<void>((r) => other.close(() => r()));
    }
  });

  it('gives up on a daemon that does not answer', async () => {
    // Reads (so it notices the client leaving) but never answers.
    const mute = net.createServer((sock) => sock.resume());
    await new Promise<void>((r) => mute.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(mute.address() as net.AddressInfo).port}`;
    try {
      const err = await failure(new AdminClient({ baseUrl: url, timeoutMs: 100 }).status());
      expect(err.message).toBe(`the daemon at ${url} did not answer within 0.1 s`);
    } finally {
      await new Promise<void>((r) => mute.close(() => r()));
    }
  });

  it('rejects a base URL that is not http(s)', () => {
    expect(() => new AdminClient({ baseUrl: 'ftp://x' })).toThrow('invalid admin URL ftp://x: only http and https are supported');
    expect(() => new AdminClient({ baseUrl: 'not a url' })).toThrow(/invalid admin URL not a url/);
  });

  describe('transcript()', () => {
    it('returns the lines so far without follow', async () => {
      calls.add({ id: 'c1', state: 'ended', endedAt: '2025-01-01T00:00:01.000Z', endReason: 'caller_hangup', transcript: [{ speaker: 'agent', text: 'Bye' }] });
      const seen: TranscriptEntry[] = [];
      const r = await client.transcript('c1', { onLine: (l) => seen.push(l) });
      expect(seen).toEqual([{ speaker: 'agent', text: 'Bye' }]);
      expect(r).toEqual({ lines: seen, state: 'ended', ended: { reason: 'caller_hangup', at: '2025-01-01T00:00:01.000Z' }, aborted: false });
    });

    it('follows the stream line by line until the call ends', async () => {
      calls.add({ id: 'c2', state: 'active', transcript: [{ speaker: 'agent', text: 'Hello', seq: 0 }] });
      const seen: string[] = [];
      const r = await client.transcript('c2', {
        follow: true,
        onLine: (l) => {
          seen.push(l.text);
          if (l.text === 'Hello') {
            calls.emit('c2', { type: 'transcript', speaker: 'caller', text: 'Line\nwith a newline', seq: 1 });
            calls.emit('c2', { type: 'ended', reason: 'agent_hangup' });
          }
        },
      });
      expect(seen).toEqual(['Hello', 'Line\nwith a newline']);
      expect(r.ended).toEqual({ reason: 'agent_hangup', at: undefined });
      expect(r.state).toBe('active');
      expect(r.aborted).toBe(false);
    });

    it('stops following on abort and resolves with what arrived', async () => {
      calls.add({ id: 'c3', state: 'active' });
      const ac = new AbortController();
      const r = await client.transcript('c3', { follow: true, onState: () => ac.abort(), signal: ac.signal });
      expect(r.aborted).toBe(true);
      expect(r.ended).toBeUndefined();
      await calls.noSubscribers('c3');
      expect(calls.subscribers('c3')).toBe(0);
    });

    it('rejects when the daemon closes the stream before the call ends', async () => {
      calls.add({ id: 'c4', state: 'active' });
      const err = await failure(client.transcript('c4', { follow: true, onState: () => void server.close() }));
      expect(err.message).toBe(`the daemon at ${server.address!.url} closed the event stream before the call ended (is it stopping?)`);
    });

    it('reports an unknown call', async () => {
      expect((await failure(client.transcript('zz', { follow: true }))).message).toBe('no call with id zz (HTTP 404)');
    });
  });
});

describe('SseParser', () => {
  it('parses events split at any byte, with CRLF, CR or LF line ends', () => {
    const text = ': hello\r\nretry: 2000\r\n\r\nid: 1\nevent: state\ndata: {"a":1}\n\nevent: transcript\rdata: line one\rdata: line two\r\r: more\n';
    for (let cut = 0; cut <= text.length; cut++) {
      const p = new SseParser();
      const out = [...p.push(text.slice(0, cut)), ...p.push(text.slice(cut))];
      expect(out).toEqual([
        { event: 'state', data: '{"a":1}', id: '1' },
        { event: 'transcript', data: 'line one\nline two', id: '1' },
      ]);
      expect(p.retryMs).toBe(2000);
    }
  });

  it('defaults the event name to message and ignores unknown fields and data-less blocks', () => {
    const p = new SseParser();
    expect(p.push('\uFEFFfoo: bar\n\ndata\n\ndata:x\n\n')).toEqual([
      { event: 'message', data: '', id: undefined },
      { event: 'message', data: 'x', id: undefined },
    ]);
  });

  it('refuses an endless line', () => {
    const p = new SseParser(16);
    expect(() => p.push('data: ' + 'x'.repeat(40))).toThrow(RangeError);
  });
});
