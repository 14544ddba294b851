import { FakeRealtimeServer, type FakeSession } from '../../fakes/FakeRealtimeServer';
import { RawRealtimeClient } from '../../fakes/RawRealtimeClient';
import { synthTone } from '../../fakes/audio';

let server: FakeRealtimeServer;
let client: RawRealtimeClient;
let session: FakeSession;

beforeEach(async () => {
  server = new FakeRealtimeServer({ apiKey: 'k', burstFactor: Infinity });
  await server.listen();
  client = await RawRealtimeClient.connect(server.url, { Authorization: 'Bearer k' });
  session = await server.waitForSession(2000, 0);
  await client.waitFor('conversation.created');
});

afterEach(async () => {
  await client.close();
  await server.close();
});

async function updateError(sessionBody: Record<string, unknown>, eventId = 'evt_1'): Promise<Record<string, unknown>> {
  const mark = client.mark();
  client.send({ type: 'session.update', event_id: eventId, session: sessionBody });
  const ev = await client.waitFor((e) => e.type === 'error' || e.type === 'session.updated', 2000, mark);
  expect(ev.type).toBe('error');
  return ev['error'] as Record<string, unknown>;
}

describe('FakeRealtimeServer session.update', () => {
  it('rejects session.temperature as unknown_parameter, echoes event_id and keeps the previous config', async () => {
    const before = structuredClone(session.config);
    const err = await updateError({ type: 'realtime', instructions: 'changed', temperature: 0.8 }, 'evt_temp');
    expect(err).toEqual({
      type: 'invalid_request_error',
      code: 'unknown_parameter',
      param: 'session.temperature',
      message: "Unknown parameter: 'session.temperature'.",
      event_id: 'evt_temp',
    });
    expect(session.config).toEqual(before);
    expect(session.configHistory).toHaveLength(1);
  });

  it('rejects unknown keys at any depth with their full path', async () => {
    const err = await updateError({ type: 'realtime', audio: { input: { turn_detection: { type: 'server_vad', foo: 1 } } } });
    expect(err).toMatchObject({ code: 'unknown_parameter', param: 'session.audio.input.turn_detection.foo' });
    const beta = await updateError({ type: 'realtime', input_audio_format: 'g711_ulaw' });
    expect(beta).toMatchObject({ code: 'unknown_parameter', param: 'session.input_audio_format' });
  });

  it('answers a missing session.type with missing_required_parameter', async () => {
    const err = await updateError({ instructions: 'hi' });
    expect(err).toMatchObject({
      code: 'missing_required_parameter',
      param: 'session.type',
      message: "Missing required parameter: 'session.type'.",
    });
  });

  it.each([
    ['voice', { audio: { output: { voice: 'nova' } } }, 'session.audio.output.voice'],
    ['format type', { audio: { input: { format: { type: 'g711_ulaw' } } } }, 'session.audio.input.format.type'],
    ['pcm rate', { audio: { output: { format: { type: 'audio/pcm', rate: 16000 } } } }, 'session.audio.output.format.rate'],
    ['turn_detection type', { audio: { input: { turn_detection: { type: 'vad' } } } }, 'session.audio.input.turn_detection.type'],
    ['eagerness', { audio: { input: { turn_detection: { type: 'semantic_vad', eagerness: 'eager' } } } }, 'session.audio.input.turn_detection.eagerness'],
    ['noise_reduction type', { audio: { input: { noise_reduction: { type: 'telephone' } } } }, 'session.audio.input.noise_reduction.type'],
    ['two output_modalities', { output_modalities: ['text', 'audio'] }, 'session.output_modalities'],
  ])('rejects a bad %s with invalid_value', async (_name, body, param) => {
    const err = await updateError({ type: 'realtime', ...body });
    expect(err).toMatchObject({ code: 'invalid_value', param });
    expect(session.configHistory).toHaveLength(1);
  });

  it('reports wrong types and out-of-range numbers with their codes', async () => {
    expect(await updateError({ type: 'realtime', instructions: 5 })).toMatchObject({ code: 'invalid_type', param: 'session.instructions' });
    expect(await updateError({ type: 'realtime', audio: { output: { speed: 2 } } })).toMatchObject({
      code: 'decimal_above_max_value',
      param: 'session.audio.output.speed',
    });
    expect(await updateError({ type: 'realtime', max_output_tokens: 5000 })).toMatchObject({ code: 'integer_above_max_value' });
  });

  it('rejects a transcription update on a model socket and a model change', async () => {
    expect(await updateError({ type: 'transcription' })).toMatchObject({ code: 'invalid_value', param: 'session.type' });
    expect(await updateError({ type: 'realtime', model: 'gpt-4o-realtime-preview' })).toMatchObject({ param: 'session.model' });
  });

  it('applies a valid GA update and answers session.updated with the full effective config', async () => {
    const mark = client.mark();
    client.send({
      type: 'session.update',
      event_id: 'evt_ok',
      session: {
        type: 'realtime',
        instructions: 'Be brief.',
        audio: {
          input: { format: { type: 'audio/pcmu' }, turn_detection: { type: 'server_vad', silence_duration_ms: 300 }, noise_reduction: { type: 'near_field' } },
          output: { format: { type: 'audio/pcmu' }, voice: 'cedar' },
        },
        tools: [{ type: 'function', name: 'end_call', description: 'Hang up', parameters: { type: 'object', properties: {} } }],
      },
    });
    const updated = await client.waitFor('session.updated', 2000, mark);
    expect(updated['event_id']).not.toBe('evt_ok');
    const s = updated['session'] as Record<string, any>;
    expect(s['id']).toBe(session.id);
    expect(s['instructions']).toBe('Be brief.');
    expect(s['audio']['input']['format']).toEqual({ type: 'audio/pcmu' });
    expect(s['audio']['input']['turn_detection']).toEqual({
      type: 'server_vad',
      threshold: 0.5,
      prefix_padding_ms: 300,
      silence_duration_ms: 300,
      idle_timeout_ms: null,
      create_response: true,
      interrupt_response: true,
    });
    expect(s['audio']['output']).toEqual({ format: { type: 'audio/pcmu' }, voice: 'cedar', speed: 1 });
    expect(s['tools']).toHaveLength(1);
    expect(session.configHistory).toHaveLength(2);
    expect(session.inputFormat).toBe('audio/pcmu');
  });

  it('refuses a voice change once assistant audio exists but accepts the same voice', async () => {
    client.send({ type: 'response.create' });
    await client.waitFor('response.done');
    expect(await updateError({ type: 'realtime', audio: { output: { voice: 'ash' } } })).toMatchObject({
      code: 'cannot_update_voice',
      param: 'session.audio.output.voice',
    });
    const mark = client.mark();
    client.send({ type: 'session.update', session: { type: 'realtime', audio: { output: { voice: 'marin' } } } });
    await client.waitFor('session.updated', 2000, mark);
  });
});

describe('FakeRealtimeServer client event validation', () => {
  it('rejects an unknown event type and echoes event_id', async () => {
    client.send({ type: 'response.audio.create', event_id: 'evt_x' });
    const err = (await client.waitFor('error'))['error'] as Record<string, unknown>;
    expect(err).toMatchObject({ type: 'invalid_request_error', param: 'type', event_id: 'evt_x' });
    expect(err['message']).toContain("'response.audio.create'");
  });

  it('rejects unknown fields on any event', async () => {
    client.send({ type: 'input_audio_buffer.append', event_id: 'evt_a', audio: '', extra: true });
    expect((await client.waitFor('error'))['error']).toMatchObject({ code: 'unknown_parameter', param: 'extra', event_id: 'evt_a' });
  });

  it('rejects beta item content types and invalid JSON', async () => {
    client.send({ type: 'conversation.item.create', item: { type: 'message', role: 'assistant', content: [{ type: 'text', text: 'hi' }] } });
    expect((await client.waitFor('error'))['error']).toMatchObject({ code: 'invalid_value', param: 'item.content[0].type' });
    const mark = client.mark();
    client.sendRaw('{not json');
    expect((await client.waitFor('error', 2000, mark))['error']).toMatchObject({ code: 'invalid_json' });
  });

  it('logs received events with append audio summarized', async () => {
    client.append(synthTone({ toneHz: 0, ms: 20 }));
    client.send({ type: 'input_audio_buffer.clear' });
    await client.waitFor('input_audio_buffer.cleared');
    expect(session.receivedEvents.map((e) => e['type'])).toEqual(['input_audio_buffer.append', 'input_audio_buffer.clear']);
    expect(session.receivedEvents[0]!['audio']).toMatch(/^\[\d+ base64 chars\]$/);
  });
});
