import { silentLogger } from '../../../src/logging/logger';
import { InvalidStateError } from '../../../src/util/errors';
import { EchoBackend } from '../../../src/ai/EchoBackend';
import { aiAudioFormatInfo, type AiAudioFormat } from '../../../src/ai/audioFormat';
import { decodeAiAudio } from '../../../src/ai/echo/codec';
import { goertzel } from '../../helpers/audio-analysis';
import { sine } from '../../helpers/tone';
import {
  BASE_SESSION,
  appendChunked,
  audioOf,
  closeAll,
  concat,
  doneWith,
  noise,
  rateOf,
  settle,
  silence,
  startedSession,
  wire,
} from './echoHelpers';

// Pacing, loop turns and the session clock are fake: each test runs in simulated time.
beforeEach(() => jest.useFakeTimers({ doNotFake: ['nextTick', 'queueMicrotask'] }));
afterEach(() => {
  closeAll();
  jest.useRealTimers();
});

/** 300 ms quiet, a 1 s 440 Hz burst, 800 ms quiet: the utterance every format test sends. */
function utterance(format: AiAudioFormat, quiet: (ms: number, rate: number) => Int16Array = silence): Buffer {
  const rate = rateOf(format);
  return wire(concat(quiet(300, rate), sine(440, 1000, rate, 0.3), quiet(800, rate)), format);
}

describe('EchoBackend', () => {
  it("is named 'echo' and hands out idle sessions with the requested formats", () => {
    const backend = new EchoBackend();
    expect(backend.name).toBe('echo');
    const s = backend.createSession({ ...BASE_SESSION, inputFormat: 'pcmu', outputFormat: 'pcmu' }, silentLogger());
    expect(s.state).toEqual({ name: 'idle' });
    expect(s.audioFormat.input).toEqual(aiAudioFormatInfo('pcmu'));
    expect(s.audioFormat.output.sampleRate).toBe(8000);
    s.close();
  });

  it('rejects out-of-range settings with RangeError at construction', () => {
    expect(() => new EchoBackend({ chunkMs: 0 })).toThrow(RangeError);
    expect(() => new EchoBackend({ speedup: 0.5 })).toThrow(RangeError);
    expect(() => new EchoBackend({ vad: { silenceMs: -1 } })).toThrow(/silenceMs/);
    expect(() => new EchoBackend({ vad: { maxUtteranceMs: 10 * 60_000 } })).toThrow(RangeError);
  });
});

describe('EchoSession echo', () => {
  it.each<AiAudioFormat>(['pcm', 'pcmu', 'pcma'])('plays a %s utterance back with the same content, padded by 40 ms each side', async (format) => {
    const { s, rec } = await startedSession({ inputFormat: format, outputFormat: format });
    const input = utterance(format);
    appendChunked(s, input, format);
    const outcome = await settle(doneWith(s, 'completed'));

    const bpm = aiAudioFormatInfo(format).bytesPerMs;
    expect(rec.speechStarted).toEqual([{ itemId: 'item_echo_1', audioStartMs: 260 }]);
    expect(rec.speechStopped).toEqual([{ itemId: 'item_echo_1', audioEndMs: 1340 }]);
    expect(outcome).toEqual({
      responseId: 'resp_echo_1',
      status: 'completed',
      requested: false,
      usage: { total_tokens: 0, input_tokens: 0, output_tokens: 0 },
    });
    const echoed = audioOf(rec, 'resp_echo_1');
    // Same format: the echo is the received bytes themselves, from the padded onset to the padded end.
    expect(echoed.length).toBe(1080 * bpm);
    expect(echoed.equals(input.subarray(260 * bpm, 1340 * bpm))).toBe(true);
    expect(rec.audio.every((a) => a.itemId === 'item_echo_2')).toBe(true);
    expect(rec.audio.slice(0, -1).every((a) => a.data.length === 100 * bpm)).toBe(true);
    expect(s.usage.costUsd).toBe(0);
    expect(s.usage.responses).toBe(1);
    expect(s.stats).toMatchObject({ utterances: 1, emittedMs: 1080, appendedBytes: input.length, droppedAudioChunks: 0 });
  });

  it('emits the turn in the Realtime order with transcripts for the records', async () => {
    const { s, rec } = await startedSession({ inputFormat: 'pcmu', outputFormat: 'pcmu' });
    appendChunked(s, utterance('pcmu'), 'pcmu');
    await settle(doneWith(s, 'completed'));
    const order = rec.order.filter((e) => !e.startsWith('audio:'));
    expect(order).toEqual([
      'speechStarted',
      'speechStopped',
      'transcript:user',
      'responseCreated:resp_echo_1',
      'audioDone:resp_echo_1',
      'transcript:assistant',
      'responseDone:resp_echo_1:completed',
    ]);
    expect(rec.transcripts.map((t) => [t.role, t.itemId, t.text, t.final])).toEqual([
      ['user', 'item_echo_1', '[caller audio 1.1 s]', true],
      ['assistant', 'item_echo_2', '[echo 1.1 s]', true],
    ]);
  });

  it.each<[AiAudioFormat, AiAudioFormat]>([
    ['pcm', 'pcmu'],
    ['pcma', 'pcm'],
  ])('converts %s input to %s output, keeping length (±1 chunk) and pitch', async (inputFormat, outputFormat) => {
    const { s, rec } = await startedSession({ inputFormat, outputFormat });
    appendChunked(s, utterance(inputFormat), inputFormat);
    await settle(doneWith(s, 'completed'));
    const out = decodeAiAudio(audioOf(rec, 'resp_echo_1'), outputFormat);
    const rate = rateOf(outputFormat);
    const ms = (out.length * 1000) / rate;
    expect(Math.abs(ms - 1080)).toBeLessThanOrEqual(20);
    // The burst sits 40 ms in; measure its middle, away from the padding and filter edges.
    const start = Math.round(0.2 * rate);
    const len = Math.round(0.6 * rate);
    expect(goertzel(out, start, len, 440, rate)).toBeGreaterThan(0.25);
    expect(goertzel(out, start, len, 1000, rate)).toBeLessThan(0.01);
  });

  it('ignores line noise below the threshold and still cuts the utterance at the burst', async () => {
    const { s, rec } = await startedSession({ inputFormat: 'pcm', outputFormat: 'pcm' });
    appendChunked(s, utterance('pcm', (ms, rate) => noise(ms, rate, -60)), 'pcm');
    await settle(doneWith(s, 'completed'));
    expect(rec.speechStarted.map((e) => e.audioStartMs)).toEqual([260]);
    expect(audioOf(rec, 'resp_echo_1').length).toBe(1080 * 48);
  });

  it('does not start an utterance on a click shorter than minSpeechMs', async () => {
    const { s, rec } = await startedSession({ inputFormat: 'pcm', outputFormat: 'pcm' }, { vad: { minSpeechMs: 100 } });
    appendChunked(s, wire(concat(silence(100, 24000), sine(1000, 60, 24000, 0.8), silence(900, 24000)), 'pcm'), 'pcm');
    await jest.runAllTimersAsync();
    expect(rec.speechStarted).toEqual([]);
    expect(rec.created).toEqual([]);
    expect(s.stats.utterances).toBe(0);
  });

  it('cuts a long utterance at maxUtteranceMs and ignores the rest until the caller pauses', async () => {
    const { s, rec } = await startedSession({ inputFormat: 'pcm', outputFormat: 'pcm' }, { speedup: Infinity, vad: { maxUtteranceMs: 1000 } });
    const rate = 24000;
    appendChunked(s, wire(concat(silence(200, rate), sine(440, 1500, rate, 0.3), silence(700, rate), sine(440, 300, rate, 0.3), silence(700, rate)), 'pcm'), 'pcm');
    await settle(doneWith(s, 'completed'));
    await settle(doneWith(s, 'completed'));
    expect(rec.speechStarted.map((e) => e.audioStartMs)).toEqual([160, 2360]);
    expect(rec.speechStopped.map((e) => e.audioEndMs)).toEqual([1160, 2740]);
    expect(audioOf(rec, 'resp_echo_1').length).toBe(1000 * 48);
    expect(s.stats).toMatchObject({ utterances: 2, utterancesCapped: 1 });
    // 540 ms of tone beyond the cap, then the 600 ms of silence that re-arms detection.
    expect(s.stats.ignoredInputMs).toBe(1140);
  });

  it('gives the same utterance whatever the chunking of the input', async () => {
    const a = await startedSession({ inputFormat: 'pcma', outputFormat: 'pcma' });
    const b = await startedSession({ inputFormat: 'pcma', outputFormat: 'pcma' });
    const input = utterance('pcma');
    appendChunked(a.s, input, 'pcma', 20);
    // 7.375 ms chunks never line up with the 10 ms analysis frames.
    for (let i = 0; i < input.length; i += 59) b.s.appendAudio(input.subarray(i, Math.min(input.length, i + 59)));
    await settle(Promise.all([doneWith(a.s, 'completed'), doneWith(b.s, 'completed')]));
    expect(audioOf(b.rec, 'resp_echo_1').equals(audioOf(a.rec, 'resp_echo_1'))).toBe(true);
    expect(b.rec.speechStopped).toEqual(a.rec.speechStopped);
  });

  it('leaves the turn to the call layer when turn detection does not create responses', async () => {
    const { s, rec } = await startedSession(
      { inputFormat: 'pcm', outputFormat: 'pcm' },
      {},
      { turnDetection: { type: 'server_vad', createResponse: false } },
    );
    appendChunked(s, utterance('pcm'), 'pcm');
    await settle(s.waitFor('speechStopped', 2000));
    await jest.runAllTimersAsync();
    expect(rec.created).toEqual([]);
    expect(rec.transcripts.map((t) => t.text)).toEqual(['[caller audio 1.1 s]']);
  });
});

describe('EchoSession barge-in', () => {
  it('cancels the echo being emitted when the caller speaks again (turn_detected), then echoes the new utterance', async () => {
    const { s, rec } = await startedSession({ inputFormat: 'pcm', outputFormat: 'pcm' }, { speedup: 2, leadMs: 100 });
    const rate = 24000;
    appendChunked(s, wire(concat(silence(100, rate), sine(440, 2000, rate, 0.3), silence(700, rate)), 'pcm'), 'pcm');
    await settle(s.waitFor('responseCreated', 2000));
    appendChunked(s, wire(concat(sine(600, 300, rate, 0.3), silence(700, rate)), 'pcm'), 'pcm');
    const cancelled = await settle(doneWith(s, 'cancelled'));
    expect(cancelled).toMatchObject({ responseId: 'resp_echo_1', status: 'cancelled', reason: 'turn_detected', requested: false });
    const second = await settle(doneWith(s, 'completed'));
    expect(second.responseId).toBe('resp_echo_2');

    const order = rec.order.filter((e) => !e.startsWith('audio:') && !e.startsWith('transcript'));
    expect(order).toEqual([
      'speechStarted',
      'speechStopped',
      'responseCreated:resp_echo_1',
      'speechStarted',
      'audioDone:resp_echo_1',
      'responseDone:resp_echo_1:cancelled',
      'speechStopped',
      'responseCreated:resp_echo_2',
      'audioDone:resp_echo_2',
      'responseDone:resp_echo_2:completed',
    ]);
    const firstMs = audioOf(rec, 'resp_echo_1').length / 48;
    expect(firstMs).toBeGreaterThan(0);
    expect(firstMs).toBeLessThan(2080);
    expect(rec.transcripts.find((t) => t.role === 'assistant')?.text).toMatch(/^\[echo \d+\.\d s of 2\.1 s, interrupted\]$/);
    expect(s.stats.bargeIns).toBe(1);
  });

  it('lets the echo finish when interruptResponse is off, and queues the new one behind it', async () => {
    const { s, rec } = await startedSession(
      { inputFormat: 'pcm', outputFormat: 'pcm' },
      { speedup: 2, leadMs: 100 },
      { turnDetection: { type: 'server_vad', interruptResponse: false } },
    );
    const rate = 24000;
    appendChunked(s, wire(concat(sine(440, 800, rate, 0.3), silence(700, rate)), 'pcm'), 'pcm');
    await settle(s.waitFor('responseCreated', 2000));
    appendChunked(s, wire(concat(sine(600, 300, rate, 0.3), silence(700, rate)), 'pcm'), 'pcm');
    await settle(doneWith(s, 'completed'));
    await settle(doneWith(s, 'completed'));
    expect(rec.done.map((d) => [d.responseId, d.status])).toEqual([
      ['resp_echo_1', 'completed'],
      ['resp_echo_2', 'completed'],
    ]);
    expect(s.stats.bargeIns).toBe(0);
  });

  it('stops emitting at once on cancelResponse() and reports client_cancelled', async () => {
    const { s, rec } = await startedSession({ inputFormat: 'pcm', outputFormat: 'pcm' }, { speedup: 1, leadMs: 100 });
    appendChunked(s, utterance('pcm'), 'pcm');
    await settle(s.waitFor('responseCreated', 2000));
    const before = rec.audio.length;
    s.cancelResponse();
    const outcome = await settle(doneWith(s, 'cancelled'));
    expect(outcome.reason).toBe('client_cancelled');
    await jest.runAllTimersAsync();
    expect(rec.audio.length).toBe(before);
  });
});

describe('EchoSession opening line', () => {
  it.each<AiAudioFormat>(['pcm', 'pcmu', 'pcma'])('createResponse() plays 600 Hz then 900 Hz beeps in %s and resolves completed', async (format) => {
    const { s, rec } = await startedSession({ inputFormat: format, outputFormat: format });
    const outcome = await settle(s.createResponse({ instructions: 'Greet the caller briefly.' }));
    expect(outcome).toMatchObject({ responseId: 'resp_echo_1', status: 'completed', requested: true });
    expect(rec.created).toEqual([{ responseId: 'resp_echo_1', requested: true }]);
    const rate = rateOf(format);
    const pcm = decodeAiAudio(audioOf(rec, 'resp_echo_1'), format);
    expect(pcm.length).toBe(Math.round(0.4 * rate));
    const at = (fromMs: number, ms: number, hz: number): number => goertzel(pcm, Math.round((fromMs * rate) / 1000), Math.round((ms * rate) / 1000), hz, rate);
    expect(at(10, 130, 600)).toBeGreaterThan(0.1);
    expect(at(10, 130, 900)).toBeLessThan(0.02);
    expect(at(260, 130, 900)).toBeGreaterThan(0.1);
    expect(at(260, 130, 600)).toBeLessThan(0.02);
    expect(at(160, 90, 600) + at(160, 90, 900)).toBeLessThan(0.01);
    expect(rec.transcripts.map((t) => [t.role, t.text])).toEqual([['assistant', '[echo test tones]']]);
    expect(s.stats.responsesRequested).toBe(1);
  });

  it('queues a request made before start() and plays it once ready', async () => {
    const s = new EchoBackend().createSession(BASE_SESSION, silentLogger());
    const p = s.createResponse();
    await jest.runAllTimersAsync();
    expect(s.state.name).toBe('idle');
    await s.start();
    await expect(settle(p)).resolves.toMatchObject({ status: 'completed' });
    s.close();
  });

  it('refuses requests beyond the queue cap as not_sent (queue_full)', async () => {
    const { s } = await startedSession({ inputFormat: 'pcm', outputFormat: 'pcm' }, {}, { responseQueueMax: 2 });
    const results = [s.createResponse(), s.createResponse(), s.createResponse()];
    await expect(settle(results[2])).resolves.toMatchObject({ status: 'not_sent', reason: 'queue_full' });
    expect(s.stats.responsesDropped).toBe(1);
    await expect(settle(Promise.all(results.slice(0, 2)))).resolves.toMatchObject([{ status: 'completed' }, { status: 'completed' }]);
  });
});

describe('EchoSession truncate, text and tools', () => {
  it('records truncate() and reports truncation beyond the delivered audio as a non-fatal error', async () => {
    const { s, rec } = await startedSession({ inputFormat: 'pcm', outputFormat: 'pcm' });
    await settle(s.createResponse());
    const itemId = rec.audio[0].itemId;
    s.truncate(itemId, 120.9);
    expect(s.stats).toMatchObject({ truncates: 1, truncateErrors: 0, lastTruncate: { itemId, audioEndMs: 120 } });
    s.truncate(itemId, 401);
    s.truncate('item_unknown', 10);
    await jest.advanceTimersToNextTimerAsync();
    expect(s.stats).toMatchObject({ truncates: 3, truncateErrors: 2 });
    expect(rec.errors.map((e) => e.code)).toEqual(['invalid_value', 'item_not_found']);
    expect(rec.errors[0].message).toBe('Audio content of 400ms is already shorter than 401ms');
    expect(s.state.name).toBe('ready');
  });

  it('sendUserText() emits a final user transcript; registerTool() accepts and never calls the handler', async () => {
    const { s, rec } = await startedSession({ inputFormat: 'pcm', outputFormat: 'pcm' });
    const handler = jest.fn(async () => ({ output: '{}' }));
    s.registerTool({ name: 'end_call', description: 'Hang up', parameters: { type: 'object' }, handler });
    expect(() => s.registerTool({ name: 'bad name', description: '', parameters: {}, handler })).toThrow(TypeError);
    s.sendUserText('DTMF: 1 2 3');
    s.sendSystemText('The caller pressed 1.');
    expect(rec.transcripts).toEqual([]);
    await jest.advanceTimersToNextTimerAsync();
    expect(rec.transcripts).toEqual([{ role: 'user', itemId: 'item_echo_1', text: 'DTMF: 1 2 3', final: true, atMs: expect.any(Number) }]);
    appendChunked(s, utterance('pcm'), 'pcm');
    await settle(doneWith(s, 'completed'));
    expect(s.toolNames).toEqual(['end_call']);
    expect(handler).not.toHaveBeenCalled();
    expect(s.stats.toolCalls).toBe(0);
  });
});

describe('EchoSession lifecycle', () => {
  it('start() makes the session ready at once and rejects a second start', async () => {
    const s = new EchoBackend().createSession(BASE_SESSION, silentLogger());
    const states: string[] = [];
    s.on('stateChange', (next) => states.push(next.name));
    await s.start();
    expect(states).toEqual(['starting', 'ready']);
    await expect(s.start()).rejects.toBeInstanceOf(InvalidStateError);
    s.close();
  });

  it('drops (and counts) audio appended before start() and beyond the pending cap', async () => {
    const s = new EchoBackend({ maxPendingInputMs: 100 }).createSession(BASE_SESSION, silentLogger());
    s.appendAudio(new Int16Array(480));
    expect(s.stats).toMatchObject({ droppedAudioChunks: 1, droppedAudioBytes: 960, appendedChunks: 0 });
    await s.start();
    for (let i = 0; i < 8; i++) s.appendAudio(new Int16Array(480));
    expect(s.stats).toMatchObject({ appendedChunks: 5, droppedAudioChunks: 4 });
    s.close();
  });

  it('close() is idempotent, fails the active response, resolves queued ones as not sent, and silences the session', async () => {
    const { s, rec } = await startedSession({ inputFormat: 'pcm', outputFormat: 'pcm' }, { speedup: 1, leadMs: 100 });
    const first = s.createResponse();
    const second = s.createResponse();
    await settle(s.waitFor('responseCreated', 2000));
    s.close();
    s.close();
    await expect(settle(first)).resolves.toMatchObject({ status: 'failed', reason: 'session_closed' });
    await expect(settle(second)).resolves.toMatchObject({ status: 'not_sent', reason: 'session_closed' });
    expect(rec.closes).toBe(1);
    expect(s.closed).toBe(true);
    expect(s.state).toEqual({ name: 'closed' });
    const audioEvents = rec.audio.length;
    s.appendAudio(utterance('pcm'));
    await expect(settle(s.createResponse())).resolves.toMatchObject({ status: 'not_sent' });
    expect(() => s.sendUserText('1')).toThrow(InvalidStateError);
    expect(() => s.registerTool({ name: 't', description: '', parameters: {}, handler: async () => ({ output: '' }) })).toThrow(InvalidStateError);
    await jest.runAllTimersAsync();
    expect(rec.audio.length).toBe(audioEvents);
    expect(rec.died).toBe(0);
  });

  it('close() from inside a listener stops the rest of the queued caller audio', async () => {
    const { s, rec } = await startedSession({ inputFormat: 'pcm', outputFormat: 'pcm' });
    s.once('speechStarted', () => s.close());
    appendChunked(s, utterance('pcm'), 'pcm');
    await jest.runAllTimersAsync();
    expect(rec.speechStarted).toHaveLength(1);
    expect(rec.speechStopped).toEqual([]);
    expect(rec.closes).toBe(1);
  });
});
