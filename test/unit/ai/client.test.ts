import net from 'node:net';
import { silentLogger } from '../../../src/logging/logger';
import { AiSessionError, InvalidStateError } from '../../../src/util/errors';
import { RealtimeClient, buildRealtimeUrl, type RealtimeClientOptions } from '../../../src/ai/RealtimeClient';
import type { ServerEvent } from '../../../src/ai/events';
import { ScriptedServer } from './scriptedServer';

const log = silentLogger();
let server: ScriptedServer;
const clients: RealtimeClient[] = [];

function client(opts: Partial<RealtimeClientOptions> = {}): RealtimeClient {
  const c = new RealtimeClient({ url: server.url(), model: 'gpt-realtime', apiKey: 'sk-test-123', pingIntervalMs: 0, ...opts }, log);
  clients.push(c);
  return c;
}

async function rejection(p: Promise<unknown>): Promise<AiSessionError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(AiSessionError);
    return err as AiSessionError;
  }
  throw new Error('expected a rejection');
}

beforeEach(async () => {
  server = await ScriptedServer.start();
});
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await server.stop();
});

describe('RealtimeClient connection', () => {
  it('sends a bearer token, no OpenAI-Beta header, and the model as a query parameter', async () => {
    const c = client({ headers: { 'OpenAI-Beta': 'realtime=v1', 'OpenAI-Project': 'proj_1' } });
    const created = await c.connect();
    expect(created.type).toBe('session.created');
    const { url, headers } = server.upgrades[0];
    expect(url).toBe('/v1/realtime?model=gpt-realtime');
    expect(headers.authorization).toBe('Bearer sk-test-123');
    expect(headers['api-key']).toBeUndefined();
    expect(headers['openai-beta']).toBeUndefined();
    expect(headers['openai-project']).toBe('proj_1');
    expect(c.state).toBe('open');
    expect(c.sessionId).toBe('sess_1');
    expect(typeof c.connectMs).toBe('number');
    expect(c.connectMs).toBeGreaterThanOrEqual(0);
  });

  it('sends an api-key header for Azure and keeps an existing query string', async () => {
    const c = client({ url: server.url('/openai/v1/realtime?api-version=2025-08-28'), model: 'my-deployment', auth: 'api-key' });
    await c.connect();
    const { url, headers } = server.upgrades[0];
    expect(url).toBe('/openai/v1/realtime?api-version=2025-08-28&model=my-deployment');
    expect(headers['api-key']).toBe('sk-test-123');
    expect(headers.authorization).toBeUndefined();
    expect(headers['openai-beta']).toBeUndefined();
  });

  it('rejects a non-WebSocket URL with aiCode invalid_url', async () => {
    expect(() => buildRealtimeUrl('https://api.openai.com/v1/realtime')).toThrow(AiSessionError);
    const err = await rejection(client({ url: 'http://127.0.0.1/x' }).connect());
    expect(err.aiCode).toBe('invalid_url');
  });

  it('rejects a 401 upgrade with invalid_api_key and the server message from the body', async () => {
    server.behaviour = {
      refuse: { status: 401, body: JSON.stringify({ error: { message: 'Incorrect API key provided: sk-te***23.', type: 'invalid_request_error', code: 'invalid_api_key' } }) },
    };
    const err = await rejection(client().connect());
    expect(err.aiCode).toBe('invalid_api_key');
    expect(err.message).toContain('status:401');
    expect(err.message).toContain('Incorrect API key provided');
    expect(err.message).not.toContain('sk-test-123');
  });

  it('maps a 429 refusal to rate_limited', async () => {
    server.behaviour = { refuse: { status: 429, body: JSON.stringify({ error: { message: 'Rate limit reached', code: 'rate_limit_exceeded' } }) } };
    const err = await rejection(client().connect());
    expect(err.aiCode).toBe('rate_limited');
    expect(err.message).toContain('Rate limit reached');
  });

  it('times out with connect_timeout when session.created never comes', async () => {
    server.behaviour = { silent: true };
    const c = client({ connectTimeoutMs: 150 });
    const err = await rejection(c.connect());
    expect(err.aiCode).toBe('connect_timeout');
    expect(c.closed).toBe(true);
  });

  it('reports unreachable when nothing listens on the port', async () => {
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const err = await rejection(client({ url: `ws://127.0.0.1:${port}/v1/realtime` }).connect());
    expect(err.aiCode).toBe('unreachable');
  });

  it('rejects with the server error code when the server refuses the session before session.created', async () => {
    server.behaviour = { silent: true };
    const c = client();
    const p = c.connect();
    const peer = await server.peer(1);
    peer.send({ type: 'error', event_id: 'e', error: { type: 'invalid_request_error', code: 'beta_api_shape_disabled', message: 'The beta API shape is disabled.' } });
    peer.ws.close(4000, 'beta');
    const err = await rejection(p);
    expect(err.aiCode).toBe('beta_api_shape_disabled');
  });

  it('maps close code 4000 before session.created to beta_api_shape_disabled', async () => {
    server.behaviour = { silent: true };
    const c = client();
    const p = c.connect();
    (await server.peer(1)).ws.close(4000);
    expect((await rejection(p)).aiCode).toBe('beta_api_shape_disabled');
  });

  it('rejects a pending connect() with aiCode closed when close() is called', async () => {
    server.behaviour = { silent: true };
    const c = client();
    const p = c.connect();
    await server.peer(1);
    c.close();
    expect((await rejection(p)).aiCode).toBe('closed');
  });

  it('refuses a second connect()', async () => {
    const c = client();
    await c.connect();
    await expect(c.connect()).rejects.toBeInstanceOf(InvalidStateError);
  });
});

describe('RealtimeClient events', () => {
  it('assigns sequential evt_<n> ids, keeps a given id, and returns the id', async () => {
    const c = client();
    await c.connect();
    const peer = await server.peer(1);
    expect(c.send({ type: 'input_audio_buffer.commit' })).toBe('evt_1');
    expect(c.send({ type: 'response.cancel', event_id: 'mine' })).toBe('mine');
    expect(c.send({ type: 'response.create' })).toBe('evt_2');
    expect((await peer.next('input_audio_buffer.commit')).event_id).toBe('evt_1');
    expect((await peer.next('response.cancel')).event_id).toBe('mine');
    expect((await peer.next('response.create')).event_id).toBe('evt_2');
  });

  it('remembers appendAudio() appends apart, so they explain errors without crowding out other events', async () => {
    const c = client({ sentEventHistory: 2 });
    await c.connect();
    const u = c.send({ type: 'input_audio_buffer.commit' });
    let first = '';
    for (let i = 0; i < 300; i++) {
      const id = c.appendAudio(Buffer.from([1, 2, 3]));
      if (i === 0) first = id;
    }
    const last = c.appendAudio(Buffer.from([1, 2, 3, 4, 5, 6]));
    expect(c.sentEvent(u)?.type).toBe('input_audio_buffer.commit');
    expect(c.sentEvent(last)).toMatchObject({ type: 'input_audio_buffer.append', event: { type: 'input_audio_buffer.append', event_id: last, audio_base64_chars: 8 } });
    expect(c.sentEvent(first)).toBeUndefined(); // older than the append history
    expect(c.stats.evictedSentRecords).toBe(0);
  });

  it('remembers sent events by id, without audio payloads, within its cap', async () => {
    const c = client({ sentEventHistory: 2 });
    await c.connect();
    const a = c.send({ type: 'input_audio_buffer.append', audio: 'AAAA' });
    expect(c.sentEvent(a)?.event).toMatchObject({ type: 'input_audio_buffer.append', audio_base64_chars: 4 });
    expect(c.sentEvent(a)?.event.audio).toBeUndefined();
    c.send({ type: 'input_audio_buffer.commit' });
    const t = c.send({ type: 'conversation.item.truncate', item_id: 'item_1', content_index: 0, audio_end_ms: 5 });
    expect(c.sentEvent(a)).toBeUndefined();
    expect(c.sentEvent(t)?.type).toBe('conversation.item.truncate');
    expect(c.stats.evictedSentRecords).toBe(1);
  });

  it('emits known events, and drops unknown, malformed and binary frames with counts', async () => {
    const c = client();
    const seen: ServerEvent[] = [];
    c.on('event', (ev) => seen.push(ev));
    await c.connect();
    const peer = await server.peer(1);
    // Frames arrive in order: once the last one is out, the client has handled the others.
    const last = c.waitFor('event', 2000);
    peer.ws.send('not json');
    peer.send({ type: 'output_audio_buffer.started', response_id: 'r' });
    peer.ws.send(Buffer.from([1, 2, 3]), { binary: true });
    peer.send({ type: 'response.audio.delta', response_id: 'r', item_id: 'i', delta: 'AAA=' });
    await last;
    expect(seen.map((e) => e.type)).toEqual(['session.created', 'response.output_audio.delta']);
    expect(c.stats).toMatchObject({ unknownEvents: 1, malformedEvents: 1, binaryFrames: 1 });
  });

  it('throws InvalidStateError when sending before connect or after close', async () => {
    const c = client();
    expect(() => c.send({ type: 'input_audio_buffer.commit' })).toThrow(InvalidStateError);
    await c.connect();
    c.close();
    expect(() => c.send({ type: 'input_audio_buffer.commit' })).toThrow(InvalidStateError);
  });
});

describe('RealtimeClient lifecycle', () => {
  it("emits 'close' once on close() and never 'died'", async () => {
    const c = client();
    await c.connect();
    const peer = await server.peer(1);
    const closes: number[] = [];
    const died = jest.fn();
    c.on('close', () => closes.push(1));
    c.on('died', died);
    c.close();
    c.close();
    expect(c.closed).toBe(true);
    expect((await peer.closed()).code).toBe(1000);
    expect(closes).toHaveLength(1);
    expect(died).not.toHaveBeenCalled();
  });

  it("emits 'died' with the close code when the server drops the socket", async () => {
    const c = client();
    await c.connect();
    const peer = await server.peer(1);
    const died = c.waitFor('died', 2000);
    peer.ws.terminate();
    const [err, info] = await died;
    expect(err).toBeInstanceOf(AiSessionError);
    expect(err.aiCode).toBe('connection_lost');
    expect(info.closeCode).toBe(1006);
    expect(c.closed).toBe(true);
  });

  it("names a recent server error as the cause of death (session_expired)", async () => {
    const c = client();
    await c.connect();
    const peer = await server.peer(1);
    const died = c.waitFor('died', 2000);
    peer.send({ type: 'error', error: { type: 'invalid_request_error', code: 'session_expired', message: 'Your session hit the maximum duration of 60 minutes.' } });
    peer.ws.close(1000);
    const [err, info] = await died;
    expect(err.aiCode).toBe('session_expired');
    expect(info.closeCode).toBe(1000);
  });

  it('kills a socket whose peer stops answering pings', async () => {
    const c = client({ pingIntervalMs: 40 });
    await c.connect();
    const peer = await server.peer(1);
    // Pause the server side's socket so pings go unanswered.
    (peer.ws as unknown as { _socket: net.Socket })._socket.pause();
    const [err] = await c.waitFor('died', 2000);
    expect(err.aiCode).toBe('ping_timeout');
  });
});
