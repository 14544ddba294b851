/** LiveClient against a scripted loopback peer: the handshake, timeouts, frames it ignores and counts, the backlog cap, close. */
import { silentLogger } from '../../../src/logging/logger';
import { AiSessionError, InvalidStateError } from '../../../src/util/errors';
import { LiveClient, buildLiveUrl, type LiveClientOptions } from '../../../src/ai/live/LiveClient';
import type { LiveServerEvent, LiveWireSessionConfig } from '../../../src/ai/live/wire';
import { ScriptedServer, type Peer } from './scriptedServer';

const log = silentLogger();
let server: ScriptedServer;
const clients: LiveClient[] = [];
const SESSION: LiveWireSessionConfig = { model: 'gpt-live-1', audio: { format: { type: 'audio/pcm', rate: 24000 }, output: { voice: 'marin' } }, delegation: { type: 'client' } };

function client(opts: Partial<LiveClientOptions> = {}): LiveClient {
  const c = new LiveClient({ url: server.url('/v1/live/sessions'), apiKey: 'sk-live-1', pingIntervalMs: 0, connectTimeoutMs: 2000, ...opts }, log);
  clients.push(c);
  return c;
}

async function open(c: LiveClient): Promise<Peer> {
  const p = c.connect(SESSION);
  const peer = await server.peer(server.peers.length + 1);
  const start = await peer.next('session.start');
  peer.send({ type: 'session.started', event_id: 's1', client_event_id: start.event_id, session: { id: 'live_1', model: 'gpt-live-1', expires_at: 1_900_000_000 } });
  await p;
  return peer;
}

beforeEach(async () => {
  server = await ScriptedServer.start();
  server.behaviour = { silent: true };
});
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await server.stop();
});

describe('LiveClient', () => {
  it('refuses a URL with a query or another scheme', () => {
    expect(() => buildLiveUrl('wss://api.openai.com/v1/live/sessions?model=gpt-live-1')).toThrow(/no query parameters/);
    expect(() => buildLiveUrl('https://api.openai.com/v1/live/sessions')).toThrow(AiSessionError);
    expect(buildLiveUrl('wss://res.openai.azure.com/openai/v1/live/sessions').pathname).toBe('/openai/v1/live/sessions');
  });

  it('sends the api-key header for Azure, session.start first, and knows the session id and expiry', async () => {
    const c = client({ auth: 'api-key' });
    const peer = await open(c);
    expect(server.upgrades[0].headers['api-key']).toBe('sk-live-1');
    expect(server.upgrades[0].headers.authorization).toBeUndefined();
    expect(peer.received.map((m) => m.type)).toEqual(['session.start']);
    expect(c.sessionId).toBe('live_1');
    expect(c.expiresAt).toBe(1_900_000_000);
  });

  it('times out when session.started never comes', async () => {
    const c = client({ connectTimeoutMs: 300 });
    const p = c.connect(SESSION);
    await (await server.peer(1)).next('session.start');
    await expect(p).rejects.toMatchObject({ aiCode: 'connect_timeout' });
  });

  it('rejects with closed_before_ready when the socket closes before session.started', async () => {
    const c = client();
    const p = c.connect(SESSION);
    const peer = await server.peer(1);
    await peer.next('session.start');
    peer.ws.close(1011, 'boom');
    await expect(p).rejects.toMatchObject({ aiCode: 'closed_before_ready' });
  });

  it('ignores and counts binary frames, unknown types and malformed events; the next good event still arrives', async () => {
    const c = client();
    const peer = await open(c);
    const got: LiveServerEvent[] = [];
    c.on('event', (e) => got.push(e));
    peer.ws.send(Buffer.from([1, 2, 3]));
    peer.ws.send('not json');
    peer.send({ type: 'response.output_audio.delta', delta: 'AAAA' });
    peer.send({ type: 'session.output_audio.delta', delta: '%%%' });
    peer.send({ type: 'session.usage.updated', event_id: 'u', usage: { seconds: 3 } });
    await new Promise((r) => setTimeout(r, 100));
    expect(got.map((e) => e.type)).toEqual(['session.usage.updated']);
    expect(c.stats).toMatchObject({ binaryFrames: 1, unknownEvents: 1, malformedEvents: 2 });
  });

  it('send() before session.started throws InvalidStateError; ids are stamped and remembered to explain errors', async () => {
    const c = client();
    expect(() => c.send({ type: 'session.close' })).toThrow(InvalidStateError);
    const peer = await open(c);
    const id = c.send({ type: 'session.thinking.append', content: 'x', delegation_id: null });
    expect((await peer.next('session.thinking.append')).event_id).toBe(id);
    expect(c.sentEvent(id)?.type).toBe('session.thinking.append');
  });

  it('refuses audio while the socket backlog is over the cap, and counts it', async () => {
    const c = client({ maxSendBufferBytes: 256 * 1024 });
    const peer = await open(c);
    // The peer stops reading: the kernel buffers fill, then the socket's own queue grows.
    (peer.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    const chunk = Buffer.alloc(192 * 1024, 1);
    let sent = 0;
    while (c.appendAudio(chunk) && sent < 1000) {
      sent++;
      await new Promise((r) => setImmediate(r));
    }
    expect(sent).toBeLessThan(1000);
    expect(c.stats.backlogRefusals).toBe(1);
    expect(c.bufferedAmount).toBeGreaterThan(256 * 1024);
  });

  it('a dropped socket is died (connection_lost); an error just before explains it', async () => {
    const c = client();
    const peer = await open(c);
    const died = new Promise<AiSessionError>((r) => c.once('died', (e) => r(e)));
    peer.send({ type: 'error', event_id: 'e', error: { code: 'server_overloaded', message: 'busy', type: 'server_error' } });
    await new Promise((r) => setTimeout(r, 50));
    peer.ws.terminate();
    expect((await died).aiCode).toBe('server_overloaded');
  });

  it('close() asks for session.close and hands over the final usage', async () => {
    const c = client();
    const peer = await open(c);
    const final = new Promise<LiveServerEvent>((r) => c.close({ graceMs: 1000, onClosed: (ev) => ev.type === 'session.closed' && r(ev) }));
    await peer.next('session.close');
    peer.send({ type: 'session.closed', event_id: 'c', reason: 'close_requested', usage: { seconds: 12.5 }, session: { id: 'live_1' } });
    expect(await final).toMatchObject({ reason: 'close_requested', usage: { seconds: 12.5 } });
    await peer.closed();
    expect(c.closed).toBe(true);
  });
});
