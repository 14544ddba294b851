import { FakeLiveServer } from '../../fakes/FakeLiveServer';
import { RawRealtimeClient, type HandshakeRefusal, type ServerEvent } from '../../fakes/RawRealtimeClient';
import { encodeWire, synthTone } from '../../fakes/audio';

const KEY = 'sk-live-test-123';
const AUTH = { Authorization: `Bearer ${KEY}` };
let server: FakeLiveServer;
const clients: RawRealtimeClient[] = [];

beforeEach(async () => {
  server = new FakeLiveServer({ apiKey: KEY, maxAppendBytes: 64 * 1024 });
  await server.listen();
});

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await server.close();
});

async function connect(url = server.url, headers: Record<string, string> = AUTH): Promise<RawRealtimeClient> {
  const c = await RawRealtimeClient.connect(url, headers);
  clients.push(c);
  return c;
}

async function refusal(url: string, headers: Record<string, string>): Promise<HandshakeRefusal> {
  try {
    const c = await RawRealtimeClient.connect(url, headers);
    await c.close();
  } catch (err) {
    return (err as Error & { refusal: HandshakeRefusal }).refusal;
  }
  throw new Error('handshake was accepted');
}

/** Send one event and resolve with the error it caused. */
async function errorFor(c: RawRealtimeClient, event: Record<string, unknown>): Promise<Record<string, unknown>> {
  const from = c.mark();
  c.send(event);
  const e = await c.waitFor('error', 3000, from);
  return e['error'] as Record<string, unknown>;
}

async function started(session: Record<string, unknown> = { model: 'gpt-live-1' }): Promise<{ c: RawRealtimeClient; ev: ServerEvent }> {
  const c = await connect();
  c.send({ type: 'session.start', event_id: 'evt_start', session });
  const ev = await c.waitFor('session.started');
  return { c, ev };
}

describe('FakeLiveServer handshake', () => {
  it('refuses a missing or wrong key with 401 invalid_api_key and never echoes the key', async () => {
    const none = await refusal(server.url, {});
    expect(none.status).toBe(401);
    expect(none.body).toMatchObject({ error: { type: 'invalid_request_error', code: 'invalid_api_key' } });
    const wrong = await refusal(server.url, { Authorization: 'Bearer sk-wrong-key' });
    expect(wrong.status).toBe(401);
    expect(JSON.stringify(wrong.body)).not.toContain('sk-wrong-key');
    expect(server.connectionCount).toBe(0);
  });

  it('takes Bearer on the OpenAI path and the Azure api-key header on the Azure path', async () => {
    await connect(server.url, AUTH);
    await connect(server.azureUrl, { 'api-key': KEY });
    expect(server.connectionCount).toBe(2);
    expect(server.handshakes.map((h) => h.status)).toEqual([101, 101]);
  });

  it('refuses query parameters (the model belongs in session.start) and unknown paths', async () => {
    const q = await refusal(`${server.url}?model=gpt-live-1`, AUTH);
    expect(q.status).toBe(400);
    expect(q.body).toMatchObject({ error: { code: 'unknown_parameter', param: 'model' } });
    expect((await refusal(`${server.baseUrl}/v1/realtime`, AUTH)).status).toBe(404);
  });

  it('refuses every handshake with 429 while rate limited', async () => {
    server.rateLimited = true;
    expect((await refusal(server.url, AUTH)).status).toBe(429);
  });
});

describe('FakeLiveServer session.start', () => {
  it('answers with the resolved session: defaults filled in, id, expiry, client_event_id', async () => {
    const { ev } = await started({ model: 'gpt-live-1', instructions: 'Be brief.' });
    expect(ev['client_event_id']).toBe('evt_start');
    expect(ev['session']).toMatchObject({
      id: expect.stringMatching(/^sess_/),
      model: 'gpt-live-1',
      status: 'active',
      instructions: 'Be brief.',
      audio: { format: { type: 'audio/pcm', rate: 24000 }, output: { voice: 'marin' } },
      delegation: { type: 'client' },
      store: false,
    });
    expect((ev['session'] as { expires_at: number }).expires_at).toBeGreaterThan(Date.now() / 1000);
  });

  it('rejects any other event before session.start, then still accepts the start', async () => {
    const c = await connect();
    const err = await errorFor(c, { type: 'session.input_audio.append', event_id: 'e1', audio: '' });
    expect(err).toMatchObject({ type: 'invalid_request_error', code: 'session_not_started', client_event_id: 'e1' });
    c.send({ type: 'session.start', session: { model: 'gpt-live-1' } });
    await c.waitFor('session.started');
    expect(server.sessions[0]!.started).toBe(true);
  });

  it.each([
    [{ model: 'gpt-live-1', voice: 'marin' }, 'unknown_parameter', 'session.voice'],
    [{ model: 'gpt-live-1', audio: { output: { voice: 'marin', speed: 1 } } }, 'unknown_parameter', 'session.audio.output.speed'],
    [{ model: 'gpt-live-1', audio: { format: { type: 'audio/pcm', rate: 44100 } } }, 'invalid_value', 'session.audio.format.rate'],
    [{ model: 'gpt-live-1', audio: { format: { type: 'audio/pcm' } } }, 'missing_required_parameter', 'session.audio.format.rate'],
    [{ model: 'gpt-live-1', audio: { format: { type: 'audio/pcmu', rate: 16000 } } }, 'invalid_value', 'session.audio.format.rate'],
    [{ model: 'gpt-live-1', audio: { format: { type: 'audio/opus', rate: 48000 } } }, 'invalid_value', 'session.audio.format.type'],
    [{ model: 42 }, 'invalid_type', 'session.model'],
    [{ instructions: 'hi' }, 'missing_required_parameter', 'session.model'],
    [{ model: 'gpt-live-1', turn_detection: { type: 'server_vad' } }, 'unknown_parameter', 'session.turn_detection'],
    [{ model: 'gpt-live-1', delegation: { type: 'responses', responses: {} } }, 'missing_required_parameter', 'session.delegation.responses.model'],
    [{ model: 'gpt-live-1', delegation: { type: 'responses', responses: { model: 'gpt-5.5', tools: [{ type: 'function' }] } } }, 'missing_required_parameter', 'session.delegation.responses.tools[0].name'],
    [
      { model: 'gpt-live-1', delegation: { type: 'responses', responses: { model: 'gpt-5.5', tools: [{ type: 'function', name: 'f', parameters: {}, extra: 1 }] } } },
      'unknown_parameter',
      'session.delegation.responses.tools[0].extra',
    ],
    [{ model: 'gpt-live-1', delegation: { type: 'responses', responses: { model: 'gpt-5.5', tools: [{ type: 'crystal_ball' }] } } }, 'invalid_value', 'session.delegation.responses.tools[0].type'],
    [{ model: 'gpt-live-1', delegation: { type: 'server' } }, 'invalid_value', 'session.delegation.type'],
    [{ model: 'gpt-live-1', input: [{ role: 'user', content: [{ type: 'input_text', text: 'a' }, { type: 'input_text', text: 'b' }] }] }, 'invalid_value', 'session.input[0].content'],
    [{ model: 'gpt-live-1', instructions: 'x'.repeat(4 * 16_384 + 8) }, 'string_above_max_length', 'session.instructions'],
    [
      { model: 'gpt-live-1', input: Array.from({ length: 9 }, () => ({ role: 'user', content: [{ type: 'input_text', text: 'y'.repeat(4000) }] })) },
      'string_above_max_length',
      'session.input',
    ],
  ].map(([session, code, param]) => [param, code, session] as const))('a bad session config at %s gets %s and leaves the session unstarted', async (param, code, session) => {
    const c = await connect();
    const err = await errorFor(c, { type: 'session.start', event_id: 'bad', session });
    expect(err).toMatchObject({ code, param, client_event_id: 'bad' });
    expect(server.sessions[0]!.started).toBe(false);
  });

  it('rejects a second session.start', async () => {
    const { c } = await started();
    expect(await errorFor(c, { type: 'session.start', session: { model: 'gpt-live-1' } })).toMatchObject({ code: 'session_already_started' });
  });
});

describe('FakeLiveServer client events after the start', () => {
  it('rejects unknown event types (no Realtime events: truncate, commit, response.cancel)', async () => {
    const { c } = await started();
    for (const type of ['conversation.item.truncate', 'input_audio_buffer.commit', 'response.cancel', 'session.input_audio.commit']) {
      expect(await errorFor(c, { type })).toMatchObject({ code: 'invalid_value', param: 'type' });
    }
  });

  it('rejects invalid base64, half samples and oversize audio, keeping none of it', async () => {
    const { c } = await started();
    expect(await errorFor(c, { type: 'session.input_audio.append', audio: 'not base64!' })).toMatchObject({ code: 'invalid_value', param: 'audio' });
    expect(await errorFor(c, { type: 'session.input_audio.append', audio: Buffer.from([1, 2, 3]).toString('base64') })).toMatchObject({ code: 'invalid_value' });
    const big = encodeWire(synthTone({ toneHz: 440, ms: 2000 }), 'audio/pcm');
    expect(await errorFor(c, { type: 'session.input_audio.append', audio: big })).toMatchObject({ code: 'invalid_value', message: expect.stringContaining('too large') });
    expect(await errorFor(c, { type: 'session.input_audio.append', audio: 5 })).toMatchObject({ code: 'invalid_type', param: 'audio' });
    expect(server.sessions[0]!.receivedMs).toBe(0);
  });

  it('rejects appends without delegation_id, with an unknown one, or over 500 tokens', async () => {
    const { c } = await started();
    expect(await errorFor(c, { type: 'session.commentary.append', content: 'x' })).toMatchObject({ code: 'missing_required_parameter', param: 'delegation_id' });
    expect(await errorFor(c, { type: 'session.commentary.append', content: 'x', delegation_id: 'deleg_nope' })).toMatchObject({ code: 'unknown_delegation' });
    expect(await errorFor(c, { type: 'session.thinking.append', content: 'y'.repeat(2004), delegation_id: null })).toMatchObject({ code: 'string_above_max_length' });
    expect(await errorFor(c, { type: 'session.instructions.append', content: ['a'], delegation_id: null })).toMatchObject({ code: 'invalid_type', param: 'content' });
  });

  it('rejects Responses-only events under client delegation', async () => {
    const { c } = await started();
    const item = { type: 'function_call_output', call_id: 'call_1', output: 'ok' };
    expect(await errorFor(c, { type: 'response.item.create', item })).toMatchObject({ message: 'response.item.create requires Responses delegation.' });
    expect(await errorFor(c, { type: 'response.create' })).toMatchObject({ message: 'response.create requires Responses delegation.' });
  });

  it('session.update changes Responses settings but never the delegation type', async () => {
    const { c } = await started({ model: 'gpt-live-1', delegation: { type: 'responses', responses: { model: 'gpt-5.5' } } });
    expect(await errorFor(c, { type: 'session.update', session: { delegation: { type: 'client' } } })).toMatchObject({ code: 'invalid_value', param: 'session.delegation.type' });
    expect(await errorFor(c, { type: 'session.update', session: { instructions: 'new' } })).toMatchObject({ code: 'unknown_parameter', param: 'session.instructions' });
    c.send({ type: 'session.update', session: { delegation: { type: 'responses', responses: { max_output_tokens: 512 } } } });
    const up = await c.waitFor('session.updated');
    expect(up['session']).toMatchObject({ delegation: { type: 'responses', responses: { model: 'gpt-5.5', max_output_tokens: 512 } } });
  });

  it('rejects binary frames and malformed JSON without closing', async () => {
    const { c } = await started();
    let from = c.mark();
    c.sendRaw('{not json');
    expect((await c.waitFor('error', 3000, from))['error']).toMatchObject({ code: 'invalid_json' });
    from = c.mark();
    c.send({ type: 'session.input_audio.mute' });
    await c.waitFor('session.input_audio.muted', 3000, from);
    expect(c.closeInfo).toBeNull();
  });
});
