import { EnergyVad, thresholdToDbfs } from '../../fakes/vad';
import { FakeRealtimeServer, type FakeSession, type RespondContext } from '../../fakes/FakeRealtimeServer';
import { RawRealtimeClient, type ServerEvent } from '../../fakes/RawRealtimeClient';
import { concatPcm, synthTone, rmsDbfs } from '../../fakes/audio';

const silence = (ms: number, rate = 24000): Int16Array => synthTone({ toneHz: 0, ms }, rate);
const tone = (ms: number, rate = 24000, amplitude = 0.3): Int16Array => synthTone({ toneHz: 440, ms, amplitude }, rate);

/** Deterministic low-level noise (LCG) at roughly `dbfs`. */
function noise(ms: number, dbfs: number, rate = 24000): Int16Array {
  const n = Math.round((ms * rate) / 1000);
  const out = new Int16Array(n);
  const peak = 32768 * 10 ** (dbfs / 20) * Math.sqrt(3);
  let x = 12345;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    out[i] = Math.round(((x / 0x7fffffff) * 2 - 1) * peak);
  }
  return out;
}

describe('EnergyVad', () => {
  it('maps threshold linearly in dB from -60 to -10 dBFS', () => {
    expect(thresholdToDbfs(0)).toBe(-60);
    expect(thresholdToDbfs(0.5)).toBe(-35);
    expect(thresholdToDbfs(1)).toBe(-10);
  });

  it('reports speech_started with prefix padding and speech_stopped including the silence, on the sample timeline', () => {
    const vad = new EnergyVad({ threshold: 0.5, prefixPaddingMs: 300, silenceDurationMs: 500 });
    const audio = concatPcm([silence(500), tone(600), silence(800)]);
    const events = [];
    for (let i = 0; i < audio.length; i += 480) events.push(...vad.push(audio.subarray(i, i + 480), 24000));
    expect(events).toEqual([
      { type: 'speech_started', audioStartMs: 200, onsetMs: 500 },
      { type: 'speech_stopped', audioEndMs: 1600 },
    ]);
    expect(vad.positionMs).toBeCloseTo(1900, 6);
  });

  it('ignores noise below the threshold and hears quiet speech at a low threshold', () => {
    const quiet = concatPcm([noise(300, -50), tone(300, 24000, 0.006), silence(600)]);
    expect(rmsDbfs(tone(300, 24000, 0.006))).toBeLessThan(-35);
    expect(new EnergyVad({ threshold: 0.5, prefixPaddingMs: 0, silenceDurationMs: 200 }).push(quiet, 24000)).toEqual([]);
    const low = new EnergyVad({ threshold: 0.1, prefixPaddingMs: 0, silenceDurationMs: 200 }).push(quiet, 24000);
    expect(low.map((e) => e.type)).toEqual(['speech_started', 'speech_stopped']);
  });

  it('rejects a click shorter than the minimum speech duration', () => {
    const vad = new EnergyVad({ threshold: 0.5, prefixPaddingMs: 0, silenceDurationMs: 200, minSpeechMs: 30 });
    expect(vad.push(concatPcm([silence(100), tone(20), silence(400)]), 24000)).toEqual([]);
  });

  it('keeps a turn open across pauses shorter than silence_duration_ms', () => {
    const vad = new EnergyVad({ threshold: 0.5, prefixPaddingMs: 0, silenceDurationMs: 500 });
    const ev = vad.push(concatPcm([tone(300), silence(300), tone(300), silence(600)]), 24000);
    expect(ev).toEqual([
      { type: 'speech_started', audioStartMs: 0, onsetMs: 0 },
      { type: 'speech_stopped', audioEndMs: 1400 },
    ]);
  });
});

describe('FakeRealtimeServer server VAD', () => {
  let server: FakeRealtimeServer;
  let client: RawRealtimeClient;
  let session: FakeSession;
  const contexts: RespondContext[] = [];

  beforeEach(async () => {
    contexts.length = 0;
    server = new FakeRealtimeServer({
      burstFactor: 4,
      respond: (ctx) => {
        contexts.push(ctx);
        return [{ audio: { toneHz: 1000, ms: 30_000 }, transcript: 'a long reply that can be interrupted' }];
      },
    });
    await server.listen();
    client = await RawRealtimeClient.connect(server.url, { Authorization: 'Bearer any' });
    session = await server.waitForSession(2000, 0);
    await client.waitFor('conversation.created');
  });

  afterEach(async () => {
    await client.close();
    await server.close();
  });

  const types = (from: number, to = client.events.length): string[] => client.events.slice(from, to).map((e) => e.type);

  it('detects a turn, commits it as a user item and creates a response', async () => {
    client.appendFramed(concatPcm([silence(500), tone(600), silence(800)]), 480);
    const created = await client.waitFor('response.created');
    const started = client.all('input_audio_buffer.speech_started')[0]!;
    const stopped = client.all('input_audio_buffer.speech_stopped')[0]!;
    expect(started['audio_start_ms']).toBe(200);
    expect(stopped['audio_end_ms']).toBe(1600);
    expect(stopped['item_id']).toBe(started['item_id']);
    const i = client.events.indexOf(started);
    expect(types(i, client.events.indexOf(created) + 1)).toEqual([
      'input_audio_buffer.speech_started',
      'input_audio_buffer.speech_stopped',
      'input_audio_buffer.committed',
      'conversation.item.added',
      'conversation.item.done',
      'response.created',
    ]);
    const added = client.all('conversation.item.added')[0]!['item'] as Record<string, unknown>;
    expect(added).toMatchObject({ id: started['item_id'], type: 'message', role: 'user', content: [{ type: 'input_audio', transcript: null }] });
    expect(contexts[0]!.trigger).toBe('vad');
    expect(contexts[0]!.userItem).toMatchObject({ itemId: started['item_id'], sampleRate: 24000, format: 'audio/pcm' });
    expect(contexts[0]!.userItem!.durationMs).toBeCloseTo(1400, 6);
    expect(session.receivedMs).toBeCloseTo(1900, 6);
    expect(session.receivedAudio().samples.length).toBe(1900 * 24);
  });

  it('cancels the active response on barge-in with reason turn_detected, then answers the new turn', async () => {
    client.appendFramed(concatPcm([tone(400), silence(600)]), 480);
    await client.waitFor('response.output_audio.delta');
    const mark = client.mark();
    client.appendFramed(concatPcm([tone(400), silence(600)]), 480);
    const done = await client.waitFor('response.done', 3000, mark);
    const resp = done['response'] as Record<string, any>;
    expect(resp['status']).toBe('cancelled');
    expect(resp['status_details']).toEqual({ type: 'cancelled', reason: 'turn_detected' });
    expect(resp['output'][0]['status']).toBe('incomplete');
    const second = await client.waitFor('response.created', 3000, mark);
    const seq = types(mark, client.events.indexOf(second) + 1).filter((t) => !t.endsWith('.delta'));
    expect(seq).toEqual([
      'input_audio_buffer.speech_started',
      'response.output_audio.done',
      'response.output_audio_transcript.done',
      'response.content_part.done',
      'response.output_item.done',
      'conversation.item.done',
      'response.done',
      'input_audio_buffer.speech_stopped',
      'input_audio_buffer.committed',
      'conversation.item.added',
      'conversation.item.done',
      'response.created',
    ]);
    const cancelledId = resp['id'];
    const late = client.events.slice(client.events.indexOf(done)).filter((e: ServerEvent) => e['response_id'] === cancelledId);
    expect(late).toEqual([]);
    expect(session.responses[0]).toMatchObject({ status: 'cancelled', reason: 'turn_detected', trigger: 'vad' });
  });

  it('honours create_response:false and interrupt_response:false', async () => {
    client.send({
      type: 'session.update',
      session: { type: 'realtime', audio: { input: { turn_detection: { type: 'server_vad', create_response: false, interrupt_response: false } } } },
    });
    await client.waitFor('session.updated');
    client.appendFramed(concatPcm([tone(300), silence(600)]), 480);
    await client.waitFor('conversation.item.done');
    client.send({ type: 'response.create' });
    await client.waitFor('response.output_audio.delta');
    const mark = client.mark();
    client.appendFramed(concatPcm([tone(300), silence(600)]), 480);
    await client.waitFor('input_audio_buffer.committed', 2000, mark);
    expect(session.activeResponseId).not.toBeNull();
    expect(types(mark)).not.toContain('response.done');
    expect(session.responses).toHaveLength(1);
  });

  it('runs VAD on G.711 µ-law input at 8 kHz and keeps the received audio at its native rate', async () => {
    client.send({ type: 'session.update', session: { type: 'realtime', audio: { input: { format: { type: 'audio/pcmu' } } } } });
    await client.waitFor('session.updated');
    const audio = concatPcm([silence(500, 8000), tone(600, 8000), silence(800, 8000)]);
    client.appendFramed(audio, 160, 'audio/pcmu');
    const stopped = await client.waitFor('input_audio_buffer.speech_stopped');
    expect(client.all('input_audio_buffer.speech_started')[0]!['audio_start_ms']).toBe(200);
    expect(stopped['audio_end_ms']).toBe(1600);
    await client.waitFor('response.created');
    const rx = session.receivedAudio();
    expect(rx.format).toBe('audio/pcmu');
    expect(rx.sampleRate).toBe(8000);
    expect(rx.samples.length).toBe(audio.length);
    let maxErr = 0;
    for (let i = 0; i < audio.length; i++) maxErr = Math.max(maxErr, Math.abs(rx.samples[i]! - audio[i]!));
    expect(maxErr).toBeLessThan(400);
    expect(contexts[0]!.userItem).toMatchObject({ sampleRate: 8000, format: 'audio/pcmu' });
    expect(contexts[0]!.userItem!.audio.length).toBe(1400 * 8);
  });

  it('treats semantic_vad as energy VAD with a fixed end-of-turn silence', async () => {
    client.send({ type: 'session.update', session: { type: 'realtime', audio: { input: { turn_detection: { type: 'semantic_vad', eagerness: 'high' } } } } });
    await client.waitFor('session.updated');
    client.appendFramed(concatPcm([silence(400), tone(500), silence(1000)]), 480);
    const stopped = await client.waitFor('input_audio_buffer.speech_stopped');
    expect(stopped['audio_end_ms']).toBe(900 + 800);
  });

  it('fires idle_timeout_ms on the received timeline after the response audio would have played', async () => {
    server.respond = () => [{ audio: { toneHz: 1000, ms: 1500 }, transcript: 'hello' }];
    session.respond = server.respond;
    client.send({
      type: 'session.update',
      session: { type: 'realtime', audio: { input: { turn_detection: { type: 'server_vad', idle_timeout_ms: 5000 } } } },
    });
    await client.waitFor('session.updated');
    client.send({ type: 'response.create' });
    await client.waitFor('response.done');
    client.appendFramed(silence(6400), 480);
    client.appendFramed(silence(600), 480);
    const t = await client.waitFor('input_audio_buffer.timeout_triggered');
    expect(t['audio_start_ms']).toBe(1500);
    expect(t['audio_end_ms']).toBe(6500);
    await client.waitFor((e) => e.type === 'response.created' && client.all('response.created').length === 2);
    expect(session.responses[1]!.trigger).toBe('idle_timeout');
  });

  it('requires 100 ms for a manual commit and answers clear with cleared', async () => {
    client.send({ type: 'session.update', session: { type: 'realtime', audio: { input: { turn_detection: null } } } });
    await client.waitFor('session.updated');
    client.append(tone(50));
    client.send({ type: 'input_audio_buffer.commit', event_id: 'evt_c' });
    expect((await client.waitFor('error'))['error']).toMatchObject({ code: 'input_audio_buffer_commit_empty', event_id: 'evt_c' });
    client.append(tone(100));
    client.send({ type: 'input_audio_buffer.commit' });
    const committed = await client.waitFor('input_audio_buffer.committed');
    expect(session.items.find((i) => i.id === committed['item_id'])!.audio!.length).toBe(150 * 24);
    expect(types(0)).not.toContain('input_audio_buffer.speech_started');
    client.send({ type: 'input_audio_buffer.clear' });
    await client.waitFor('input_audio_buffer.cleared');
  });
});
