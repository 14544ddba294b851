import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { FakeLiveServer, hearToneCheaply, liveToneReply, type LiveRespondScript } from '../../fakes/FakeLiveServer';
import { RawRealtimeClient, type ServerEvent } from '../../fakes/RawRealtimeClient';
import { concatPcm, decodeWire, encodeWire, synthTone } from '../../fakes/audio';
import { findToneSpans } from '../../helpers/audio-analysis';

const KEY = 'sk-live-test-456';
const RATE = 24000;
let server: FakeLiveServer;
const clients: RawRealtimeClient[] = [];

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await server?.close();
});

async function setup(opts: ConstructorParameters<typeof FakeLiveServer>[0] = {}, session: Record<string, unknown> = { model: 'gpt-live-1' }): Promise<RawRealtimeClient> {
  server = new FakeLiveServer({ apiKey: KEY, vadSilenceMs: 300, ...opts });
  await server.listen();
  const c = await RawRealtimeClient.connect(server.url, { Authorization: `Bearer ${KEY}` });
  clients.push(c);
  c.send({ type: 'session.start', session });
  await c.waitFor('session.started');
  return c;
}

/** Append PCM in 20 ms frames as session.input_audio.append (faster than real time; the VAD runs on audio time). */
function stream(c: RawRealtimeClient, pcm: Int16Array, frame = RATE / 50): void {
  for (let i = 0; i < pcm.length; i += frame) c.send({ type: 'session.input_audio.append', audio: encodeWire(pcm.subarray(i, i + frame), 'audio/pcm') });
}

/** One caller turn: 200 ms silence, a 700 Hz "phrase", then silence that ends the turn. */
function phrase(ms = 500, hz = 700): Int16Array {
  return concatPcm([synthTone({ toneHz: 0, ms: 200 }), synthTone({ toneHz: hz, ms, amplitude: 0.4 }), synthTone({ toneHz: 0, ms: 500 })]);
}

function audioOf(events: ServerEvent[]): Int16Array {
  return concatPcm(events.filter((e) => e.type === 'session.output_audio.delta').map((e) => decodeWire(e['delta'] as string, 'audio/pcm')));
}

describe('FakeLiveServer conversation', () => {
  it('answers a caller turn with its tone, both transcripts, and closes with usage', async () => {
    const c = await setup({ respond: liveToneReply({ toneHz: 1000, ms: 1200 }) });
    stream(c, phrase());
    await c.waitFor(() => c.all('session.output_audio.delta').length === 12, 5000);
    const input = c.all('session.input_transcript.delta').map((e) => e['delta']).join('');
    expect(input).toBe('tone 700');
    expect(c.all('session.input_transcript.delta')[0]).toMatchObject({ start_ms: expect.any(Number), end_ms: expect.any(Number), event_id: expect.any(String) });
    const deltas = c.all('session.output_audio.delta');
    expect(deltas.every((d) => !('event_id' in d))).toBe(true);
    const pcm = audioOf(c.events);
    expect(pcm.length / RATE).toBeCloseTo(1.2, 2);
    expect(findToneSpans(pcm, RATE, 1000, { frameMs: 10, minDurationMs: 50 })).toHaveLength(1);
    expect(c.all('session.output_transcript.delta').map((e) => e['delta']).join('')).toBe('Reply 1: this is a 1000 hertz test tone.');
    const s = server.sessions[0]!;
    expect(s.turns).toHaveLength(1);
    expect(s.utterances[0]).toMatchObject({ status: 'done', cause: 'turn' });

    c.send({ type: 'session.close', event_id: 'bye' });
    const closed = await c.waitFor('session.closed');
    expect(closed).toMatchObject({ reason: 'close_requested', client_event_id: 'bye', session: { id: s.id, status: 'active' }, usage: { seconds: 1 } });
    expect(await c.closed()).toMatchObject({ code: 1000 });
    expect(s.sessionClosedSent).toBe(true);
  });

  it('transcribes the caller while it speaks: a fragment when what it says changes, before the turn ends', async () => {
    const c = await setup();
    stream(c, concatPcm([synthTone({ toneHz: 0, ms: 200 }), synthTone({ toneHz: 700, ms: 1200, amplitude: 0.4 }), synthTone({ toneHz: 900, ms: 800, amplitude: 0.4 })]));
    const first = await c.waitFor('session.input_transcript.delta');
    expect(first).toMatchObject({ delta: 'tone 700' });
    await c.waitFor((e) => e.type === 'session.input_transcript.delta' && e['delta'] === ' tone 900');
    const s = server.sessions[0]!;
    expect(s.callerSpeaking).toBe(true);
    expect(s.turns).toHaveLength(0);
    expect(c.all('session.output_audio.delta')).toHaveLength(0);
    stream(c, synthTone({ toneHz: 0, ms: 500 }));
    await c.waitFor('session.output_audio.delta');
    expect(s.turns[0]).toMatchObject({ transcript: 'tone 700 tone 900' });
    expect(c.all('session.input_transcript.delta')).toHaveLength(2);
  });

  it('G.711 µ-law at 8 kHz both ways', async () => {
    const c = await setup({}, { model: 'gpt-live-1', audio: { format: { type: 'audio/pcmu', rate: 8000 } } });
    const pcm8 = concatPcm([synthTone({ toneHz: 0, ms: 200 }, 8000), synthTone({ toneHz: 700, ms: 500, amplitude: 0.4 }, 8000), synthTone({ toneHz: 0, ms: 500 }, 8000)]);
    for (let i = 0; i < pcm8.length; i += 160) c.send({ type: 'session.input_audio.append', audio: encodeWire(pcm8.subarray(i, i + 160), 'audio/pcmu') });
    await c.waitFor(() => c.all('session.output_audio.delta').length === 15, 5000);
    const out = concatPcm(c.all('session.output_audio.delta').map((e) => decodeWire(e['delta'] as string, 'audio/pcmu')));
    expect(out.length).toBe(12000);
    expect(findToneSpans(out, 8000, 1000, { frameMs: 10, minDurationMs: 50 })).toHaveLength(1);
  });

  it('stops talking when the caller talks over it and records what had been sent', async () => {
    const c = await setup({ burstFactor: 2, respond: liveToneReply({ toneHz: 1000, ms: 4000 }) });
    stream(c, phrase());
    await c.waitFor('session.output_audio.delta', 5000);
    await new Promise((r) => setTimeout(r, 300));
    stream(c, synthTone({ toneHz: 500, ms: 300, amplitude: 0.4 }));
    const s = server.sessions[0]!;
    await new Promise((r) => setTimeout(r, 400));
    expect(s.interruptions).toHaveLength(1);
    const i = s.interruptions[0]!;
    expect(i.wasSending).toBe(true);
    expect(i.deliveredMs).toBeLessThan(4000);
    expect(i.realTimePlayedMs).toBeLessThanOrEqual(i.deliveredMs);
    expect(s.utterances[0]!.status).toBe('interrupted');
    // No more audio after the interruption.
    expect(audioOf(c.events).length / RATE).toBeCloseTo(i.deliveredMs / 1000, 1);
  });

  it('records stalls of the input stream (audio behind real time) and the lead of a bursty client', async () => {
    const c = await setup();
    const frame = synthTone({ toneHz: 0, ms: 100 });
    c.send({ type: 'session.input_audio.append', audio: encodeWire(frame, 'audio/pcm') });
    await new Promise((r) => setTimeout(r, 50));
    c.send({ type: 'session.input_audio.append', audio: encodeWire(frame, 'audio/pcm') });
    await new Promise((r) => setTimeout(r, 700));
    c.send({ type: 'session.input_audio.append', audio: encodeWire(frame, 'audio/pcm') });
    stream(c, synthTone({ toneHz: 0, ms: 2000 }));
    c.send({ type: 'session.input_audio.mute' });
    await c.waitFor('session.input_audio.muted');
    const s = server.sessions[0]!;
    expect(s.inputGaps).toHaveLength(1);
    expect(s.inputGaps[0]!.lagMs).toBeGreaterThan(400);
    expect(s.inputGaps[0]!.atAudioMs).toBe(200);
    expect(s.maxLeadMs).toBeGreaterThan(1000);
  });

  it('mute: audio is received but no turn is taken', async () => {
    const c = await setup();
    c.send({ type: 'session.input_audio.mute', event_id: 'm' });
    expect(await c.waitFor('session.input_audio.muted')).toMatchObject({ client_event_id: 'm' });
    stream(c, phrase());
    c.send({ type: 'session.input_audio.unmute' });
    await c.waitFor('session.input_audio.unmuted');
    const s = server.sessions[0]!;
    expect(s.turns).toHaveLength(0);
    expect(s.dropped.mutedMs).toBeGreaterThan(1000);
  });
});

describe('FakeLiveServer delegation', () => {
  const delegateOn700: LiveRespondScript = () => [{ delegate: { name: 'end_call', arguments: { reason: 'caller asked' } } }];

  it('client delegation: delegation.created carries no task; commentary with its id is acknowledged and spoken', async () => {
    const c = await setup({ respond: delegateOn700 });
    stream(c, phrase());
    const created = await c.waitFor('session.delegation.created', 5000);
    const delegation = created['delegation'] as Record<string, unknown>;
    expect(delegation).toEqual({ id: expect.stringMatching(/^deleg_/), type: 'delegation', target: 'client' });
    expect(created['offset_ms']).toEqual(expect.any(Number));
    c.send({ type: 'session.thinking.append', content: 'looking it up', delegation_id: delegation['id'] });
    await c.waitFor('session.thinking.appended');
    c.send({ type: 'session.commentary.append', event_id: 'c1', content: 'Your order ships tomorrow.', delegation_id: delegation['id'] });
    expect(await c.waitFor('session.commentary.appended')).toMatchObject({ client_event_id: 'c1', start_ms: expect.any(Number), end_ms: expect.any(Number) });
    await c.waitFor((e) => e.type === 'session.output_transcript.delta' && String(e['delta']).includes('tomorrow.'), 5000);
    expect(findToneSpans(audioOf(c.events), RATE, 1200, { frameMs: 10, minDurationMs: 50 })).toHaveLength(1);
    const d = server.sessions[0]!.delegations[0]!;
    expect(d).toMatchObject({ target: 'client', name: 'end_call', answers: [{ kind: 'thinking' }, { kind: 'commentary', content: 'Your order ships tomorrow.' }] });
  });

  it('Responses delegation: a function call inside response.event; the output is accepted only in its shape, then spoken', async () => {
    const tools = [{ type: 'function', name: 'end_call', description: 'Hang up.', parameters: { type: 'object', properties: {} } }, { type: 'web_search' }];
    const c = await setup({ respond: delegateOn700 }, { model: 'gpt-live-1', delegation: { type: 'responses', responses: { model: 'gpt-5.5', tools } } });
    stream(c, phrase());
    const created = await c.waitFor('session.delegation.created', 5000);
    const delegation = created['delegation'] as Record<string, unknown>;
    expect(delegation).toMatchObject({ target: 'responses', response_id: expect.stringMatching(/^resp_/) });
    const done = await c.waitFor((e) => e.type === 'response.event' && (e['event'] as Record<string, unknown>)['type'] === 'response.output_item.done');
    expect(done['delegation_id']).toBe(delegation['id']);
    const item = (done['event'] as { item: Record<string, unknown> }).item;
    expect(item).toMatchObject({ type: 'function_call', name: 'end_call', arguments: '{"reason":"caller asked"}', status: 'completed' });
    const callId = item['call_id'] as string;

    const bad = async (it: Record<string, unknown>): Promise<Record<string, unknown>> => {
      const from = c.mark();
      c.send({ type: 'response.item.create', item: it });
      return (await c.waitFor('error', 3000, from))['error'] as Record<string, unknown>;
    };
    expect(await bad({ type: 'function_call_output', call_id: callId, output: 42 })).toMatchObject({ code: 'invalid_type', param: 'item.output' });
    expect(await bad({ type: 'function_call_output', call_id: callId, output: 'ok', result: 'ok' })).toMatchObject({ code: 'unknown_parameter', param: 'item.result' });
    expect(await bad({ type: 'function_call_output', call_id: 'call_unknown', output: 'ok' })).toMatchObject({ code: 'unknown_call_id', param: 'item.call_id' });
    expect(await bad({ type: 'function_call_output', output: 'ok' })).toMatchObject({ code: 'missing_required_parameter', param: 'item.call_id' });
    const from = c.mark();
    c.send({ type: 'session.commentary.append', content: 'x', delegation_id: delegation['id'] });
    expect(((await c.waitFor('error', 3000, from))['error'] as Record<string, unknown>)['message']).toMatch(/not accepted with Responses delegation/);

    c.send({ type: 'response.item.create', item: { type: 'function_call_output', call_id: callId, output: '{"ok":true}' } });
    expect(await bad({ type: 'function_call_output', call_id: callId, output: 'again' })).toMatchObject({ code: 'invalid_value', param: 'item.call_id' });
    c.send({ type: 'response.create' });
    const text = await c.waitFor((e) => e.type === 'response.event' && (e['event'] as Record<string, unknown>)['type'] === 'response.output_text.done');
    expect((text['event'] as Record<string, unknown>)['text']).toBe('The end_call result is: {"ok":true}');
    await c.waitFor((e) => e.type === 'session.output_transcript.delta' && String(e['delta']).includes('{"ok":true}'), 5000);
    expect(server.sessions[0]!.delegations[0]!.completed).toBe(true);
  });

  it('a script calling a function the session does not have is recorded as a script problem', async () => {
    const c = await setup({ respond: () => [{ delegate: { name: 'launch_rocket' } }] }, { model: 'gpt-live-1', delegation: { type: 'responses', responses: { model: 'gpt-5.5' } } });
    stream(c, phrase());
    await c.waitFor((e) => e.type === 'response.event' && (e['event'] as Record<string, unknown>)['type'] === 'response.output_text.done', 5000);
    expect(server.sessions[0]!.scriptProblems).toEqual(["function 'launch_rocket' is not among the session's Responses tools"]);
  });
});

describe('FakeLiveServer test hooks', () => {
  it('drop: the socket dies without session.closed', async () => {
    const c = await setup();
    server.dropAll();
    expect((await c.closed()).code).toBe(1006);
    expect(c.all('session.closed')).toHaveLength(0);
    expect(server.openSessions).toBe(0);
  });

  it('endSession(expired) and injectError reach the client in the protocol shapes', async () => {
    const c = await setup();
    const s = server.sessions[0]!;
    s.injectError('server_error', 'The server had an error.');
    expect((await c.waitFor('error'))['error']).toEqual({ type: 'server_error', code: 'server_error', message: 'The server had an error.' });
    s.endSession('expired');
    expect(await c.waitFor('session.closed')).toMatchObject({ reason: 'expired', usage: { seconds: 0 } });
    expect((await c.closed()).code).toBe(1000);
    expect(server.connectionCount).toBe(1);
    expect(s.receivedEvents.map((e) => e['type'])).toEqual(['session.start']);
  });
});

describe('fake-live-cli', () => {
  it('prints "listening <url>", answers a caller turn, and sums up each session on SIGTERM', async () => {
    const root = join(__dirname, '..', '..', '..');
    const child = spawn(
      process.execPath,
      ['-r', './test/fakes/ts-register.js', 'test/fakes/fake-live-cli.ts', '--port', '0', '--key', 'sk-cli', '--burst', 'inf', '--tone-hz', '500', '--reply-ms', '300', '--silence-ms', '300'],
      { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const lines = createInterface({ input: child.stdout! });
    const it = lines[Symbol.asyncIterator]();
    const first = (await it.next()).value as string;
    expect(first).toMatch(/^listening ws:\/\/127\.0\.0\.1:\d+\/v1\/live\/sessions$/);
    const c = await RawRealtimeClient.connect(first.slice('listening '.length), { Authorization: 'Bearer sk-cli' });
    c.send({ type: 'session.start', session: { model: 'gpt-live-1' } });
    await c.waitFor('session.started');
    stream(c, phrase());
    await c.waitFor(() => c.all('session.output_audio.delta').length === 3, 5000);
    const bytes = c.all('session.output_audio.delta').reduce((n, e) => n + Buffer.from(e['delta'] as string, 'base64').length, 0);
    expect(bytes).toBe(300 * 48);
    await c.close();
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    const summary = JSON.parse((await it.next()).value as string) as Record<string, unknown>;
    expect(summary).toMatchObject({ utterances: 1, interruptions: 0, errors: [] });
    expect(await exited).toBe(0);
  }, 20_000);
});

describe('hearToneCheaply', () => {
  const chunk = (audio: Int16Array, sampleRate = RATE) => ({ audio, sampleRate, startMs: 0, endMs: (audio.length * 1000) / sampleRate });

  it('names the tone of a chunk, through G.711 and at every wire rate', () => {
    for (const [hz, rate] of [[700, 24000], [900, 16000], [1000, 8000]] as const) {
      expect(hearToneCheaply(chunk(synthTone({ toneHz: hz, ms: 400, amplitude: 0.4 }, rate), rate))).toBe(`tone ${hz}`);
    }
    const mu = decodeWire(encodeWire(synthTone({ toneHz: 700, ms: 400, amplitude: 0.4 }, 8000), 'audio/pcmu'), 'audio/pcmu');
    expect(hearToneCheaply(chunk(mu, 8000))).toBe('tone 700');
  });

  it('hears nothing in silence, in line noise below -50 dBFS, or in an empty chunk', () => {
    expect(hearToneCheaply(chunk(new Int16Array(9600)))).toBe('');
    const hiss = Int16Array.from({ length: 9600 }, (_, i) => ((i * 7919) % 41) - 20);
    expect(hearToneCheaply(chunk(hiss))).toBe('');
    expect(hearToneCheaply(chunk(new Int16Array(0)))).toBe('');
  });

  it('takes the tone most of the chunk carries', () => {
    const mixed = concatPcm([synthTone({ toneHz: 700, ms: 100, amplitude: 0.4 }), synthTone({ toneHz: 900, ms: 300, amplitude: 0.4 })]);
    expect(hearToneCheaply(chunk(mixed))).toBe('tone 900');
  });
});
