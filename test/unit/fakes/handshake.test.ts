import { FakeRealtimeServer } from '../../fakes/FakeRealtimeServer';
import { RawRealtimeClient, type HandshakeRefusal } from '../../fakes/RawRealtimeClient';

const KEY = 'sk-test-123';
let server: FakeRealtimeServer;

beforeEach(async () => {
  server = new FakeRealtimeServer({ apiKey: KEY });
  await server.listen();
});

afterEach(async () => {
  await server.close();
});

async function refusal(url: string, headers: Record<string, string>): Promise<HandshakeRefusal> {
  try {
    const c = await RawRealtimeClient.connect(url, headers);
    await c.close();
  } catch (err) {
    return (err as Error & { refusal: HandshakeRefusal }).refusal;
  }
  throw new Error('handshake was accepted');
}

describe('FakeRealtimeServer handshake', () => {
  it('binds 127.0.0.1 on an ephemeral port and reports the session url', () => {
    expect(server.port).toBeGreaterThan(0);
    expect(server.url).toBe(`ws://127.0.0.1:${server.port}/v1/realtime?model=gpt-realtime`);
  });

  it('refuses a missing key with 401 and an invalid_api_key JSON body', async () => {
    const r = await refusal(server.url, {});
    expect(r.status).toBe(401);
    expect(r.body).toMatchObject({ error: { type: 'invalid_request_error', code: 'invalid_api_key' } });
    expect(server.connectionCount).toBe(0);
    expect(server.handshakes).toEqual([expect.objectContaining({ status: 401, code: 'invalid_api_key' })]);
  });

  it('refuses a wrong key with 401 and does not echo the key', async () => {
    const r = await refusal(server.url, { Authorization: 'Bearer sk-wrong' });
    expect(r.status).toBe(401);
    expect(JSON.stringify(r.body)).not.toContain('sk-wrong');
    expect(r.body).toMatchObject({ error: { code: 'invalid_api_key' } });
  });

  it('refuses every handshake with 429 while rate limited', async () => {
    server.rateLimited = true;
    const r = await refusal(server.url, { Authorization: `Bearer ${KEY}` });
    expect(r.status).toBe(429);
    expect(r.body).toMatchObject({ error: { code: 'rate_limit_exceeded' } });
    server.rateLimited = false;
    const c = await RawRealtimeClient.connect(server.url, { Authorization: `Bearer ${KEY}` });
    await c.close();
  });

  it('refuses unknown paths with 404 and a missing model with 400', async () => {
    expect((await refusal(`${server.baseUrl}/v1/realtimex?model=gpt-realtime`, { Authorization: `Bearer ${KEY}` })).status).toBe(404);
    const r = await refusal(`${server.baseUrl}/v1/realtime`, { Authorization: `Bearer ${KEY}` });
    expect(r.status).toBe(400);
    expect(r.body).toMatchObject({ error: { code: 'missing_required_parameter', param: 'model' } });
  });

  it('accepts Bearer auth and sends session.created with a full default session, then conversation.created', async () => {
    const c = await RawRealtimeClient.connect(server.url, { Authorization: `Bearer ${KEY}` });
    const created = await c.waitFor('session.created');
    const conv = await c.waitFor('conversation.created');
    expect(c.events.map((e) => e.type).slice(0, 2)).toEqual(['session.created', 'conversation.created']);
    expect(created['event_id']).toMatch(/^event_/);
    const s = created['session'] as Record<string, any>;
    expect(s['id']).toMatch(/^sess_/);
    expect(s).toMatchObject({
      object: 'realtime.session',
      type: 'realtime',
      model: 'gpt-realtime',
      output_modalities: ['audio'],
      tools: [],
      tool_choice: 'auto',
      max_output_tokens: 'inf',
      audio: {
        input: { format: { type: 'audio/pcm', rate: 24000 }, transcription: null, turn_detection: { type: 'server_vad', threshold: 0.5 } },
        output: { format: { type: 'audio/pcm', rate: 24000 }, voice: 'marin', speed: 1 },
      },
    });
    expect(typeof s['instructions']).toBe('string');
    expect(s['expires_at']).toBeGreaterThan(Date.now() / 1000);
    expect(conv['conversation']).toMatchObject({ object: 'realtime.conversation', id: expect.stringMatching(/^conv_/) });
    expect(server.connectionCount).toBe(1);
    expect(server.sessions[0]!.id).toBe(s['id']);
    expect(server.sessions[0]!.headers['authorization']).toBe(`Bearer ${KEY}`);
    await c.close();
  });

  it('accepts the api-key header on the Azure GA path, taking the deployment from model', async () => {
    const c = await RawRealtimeClient.connect(`${server.baseUrl}/openai/v1/realtime?model=my-deployment`, { 'api-key': KEY });
    const created = await c.waitFor('session.created');
    expect((created['session'] as Record<string, unknown>)['model']).toBe('my-deployment');
    await c.close();
  });

  it('answers the OpenAI-Beta realtime=v1 header with beta_api_shape_disabled and close 4000', async () => {
    const c = await RawRealtimeClient.connect(server.url, { Authorization: `Bearer ${KEY}`, 'OpenAI-Beta': 'realtime=v1' });
    const closed = await c.closed();
    expect(closed.code).toBe(4000);
    expect(c.events.map((e) => e.type)).toEqual(['error']);
    expect(c.events[0]!['error']).toMatchObject({ type: 'invalid_request_error', code: 'beta_api_shape_disabled' });
  });

  it('close() is idempotent and releases the port', async () => {
    const c = await RawRealtimeClient.connect(server.url, { Authorization: `Bearer ${KEY}` });
    const p1 = server.close();
    const p2 = server.close();
    expect(p1).toBe(p2);
    await p1;
    expect((await c.closed()).code).toBe(1001);
    expect(server.closed).toBe(true);
    await expect(RawRealtimeClient.connect(server.url, { Authorization: `Bearer ${KEY}` })).rejects.toThrow();
  });
});
