import { AudioBridge, type BargeInReport } from '../../../src/calls/AudioBridge';
import { silentLogger } from '../../../src/logging/logger';
import { decodeMuLaw } from '../../../src/audio/g711';
import type { CallRecorderSink } from '../../../src/calls/types';
import { FakeAiSession, FakeCall, tone } from './fakes';

const log = silentLogger();
const FRAME_8K = 160;

function setup(opts: { format?: 'pcm' | 'pcmu' | 'pcma'; sampleRate?: number; greetingInterruptible?: boolean; recorder?: CallRecorderSink; preReadyMs?: number; prebufferMs?: number } = {}) {
  const format = opts.format ?? 'pcm';
  const call = new FakeCall({ sampleRate: opts.sampleRate ?? 8000 });
  const session = new FakeAiSession({
    instructions: 'x',
    voice: 'marin',
    inputFormat: format,
    outputFormat: format,
    turnDetection: { type: 'server_vad' },
    noiseReduction: null,
    transcription: null,
  });
  const bridge = new AudioBridge({
    call,
    session,
    aiFormat: format,
    logger: log,
    recorder: opts.recorder,
    options: { batchMs: 40, greetingInterruptible: opts.greetingInterruptible, preReadyMs: opts.preReadyMs, prebufferMs: opts.prebufferMs },
  });
  const bargeIns: BargeInReport[] = [];
  bridge.on('bargeIn', (r) => bargeIns.push(r));
  return { call, session, bridge, bargeIns };
}

/** Play `ms` of the ring (20 ms ticks) and pump the bridge after each. */
function playMs(call: FakeCall, bridge: AudioBridge, ms: number): void {
  for (let t = 0; t < ms; t += 20) {
    call.play(call.sampleRate / 50);
    bridge.tick();
  }
}

/** `frames` ticks of the clock: the ring plays a frame, the bridge pumps, the caller sends a frame (silence). */
function converse(call: FakeCall, bridge: AudioBridge, frames: number): void {
  for (let i = 0; i < frames; i++) {
    call.play(FRAME_8K);
    bridge.tick();
    call.speak(new Int16Array(FRAME_8K));
  }
}

describe('AudioBridge: barge-in accounting', () => {
  test('flushes the ring at once and truncates at the played ms when less was played than received', () => {
    const { call, session, bridge, bargeIns } = setup();
    session.ready();
    session.audio('item_a', tone(1000, 1000, 24000));
    expect(call.txIndex()[1]).toBeGreaterThan(7900);
    playMs(call, bridge, 300);
    session.speechStarted();
    const [read, write] = call.txIndex();
    expect(read).toBe(write);
    expect(session.truncates).toEqual([{ itemId: 'item_a', audioEndMs: 300 }]);
    expect(bargeIns).toHaveLength(1);
    expect(bargeIns[0]).toMatchObject({ ignored: false, itemId: 'item_a', prompt: false, playedMs: 300 });
    expect(bridge.stats.bargeIns).toBe(1);
    expect(bridge.stats.truncates).toBe(1);
  });

  test('truncates at the received ms when everything received had played (item still streaming)', () => {
    const { call, session, bridge } = setup();
    session.ready();
    session.audio('item_a', tone(1000, 200, 24000));
    playMs(call, bridge, 400);
    session.speechStarted();
    expect(session.truncates).toHaveLength(1);
    const t = session.truncates[0];
    expect(t.itemId).toBe('item_a');
    // Received is ~200 ms less the resampler's filter delay still held back (< 2 ms).
    expect(t.audioEndMs).toBeLessThanOrEqual(200);
    expect(t.audioEndMs).toBeGreaterThanOrEqual(196);
    // It ran dry, but nothing more of it was heard after the silence: no gap inside the reply.
    expect(bridge.stats.underruns).toBe(0);
  });

  test('skips the truncate when the item had already finished playing', () => {
    const { call, session, bridge, bargeIns } = setup();
    session.ready();
    session.audio('item_a', tone(1000, 200, 24000));
    session.audioDone('item_a');
    playMs(call, bridge, 400);
    session.speechStarted();
    expect(session.truncates).toEqual([]);
    expect(bargeIns).toEqual([]);
    expect(bridge.stats.bargeIns).toBe(0);
  });

  test('never truncates below 0: an item interrupted before any of it played gets 0', () => {
    const { session } = setup();
    session.ready();
    session.audio('item_a', tone(1000, 500, 24000));
    session.speechStarted();
    expect(session.truncates).toEqual([{ itemId: 'item_a', audioEndMs: 0 }]);
  });

  test('truncates every interrupted assistant item, the queued one at 0 ms', () => {
    const { call, session, bridge } = setup();
    session.ready();
    session.audio('item_a', tone(1000, 300, 24000));
    session.audioDone('item_a');
    session.audio('item_b', tone(800, 300, 24000));
    playMs(call, bridge, 100);
    session.speechStarted();
    expect(session.truncates).toEqual([
      { itemId: 'item_a', audioEndMs: 100 },
      { itemId: 'item_b', audioEndMs: 0 },
    ]);
  });

  test('audio arriving for a flushed item is discarded and counted', () => {
    const { call, session, bridge } = setup();
    session.ready();
    session.audio('item_a', tone(1000, 300, 24000));
    playMs(call, bridge, 100);
    session.speechStarted();
    const written = call.txIndex()[1];
    session.audio('item_a', tone(1000, 300, 24000));
    expect(call.txIndex()[1]).toBe(written);
    expect(bridge.stats.playoutDiscardedSamples).toBeGreaterThan(2000);
  });

  test('a non-interruptible greeting keeps playing when the caller speaks', () => {
    const { call, session, bridge, bargeIns } = setup({ greetingInterruptible: false });
    session.ready();
    void bridge.playGreeting(tone(500, 1000, 8000));
    playMs(call, bridge, 200);
    session.speechStarted();
    const [read, write] = call.txIndex();
    expect(write - read).toBe(8000 - 1600);
    expect(bargeIns).toEqual([expect.objectContaining({ ignored: true })]);
    expect(bridge.stats.bargeInsIgnored).toBe(1);
    expect(session.truncates).toEqual([]);
  });

  test('an interruptible greeting is flushed without a truncate', async () => {
    const { call, session, bridge, bargeIns } = setup({ greetingInterruptible: true });
    session.ready();
    const done = bridge.playGreeting(tone(500, 1000, 8000));
    playMs(call, bridge, 200);
    session.speechStarted();
    const [read, write] = call.txIndex();
    expect(read).toBe(write);
    expect(bargeIns).toEqual([expect.objectContaining({ ignored: false, prompt: true, playedMs: 200 })]);
    expect(session.truncates).toEqual([]);
    await expect(done).resolves.toBeUndefined();
  });

  test('the greeting promise resolves once it has played out', async () => {
    const { call, bridge } = setup();
    let played = false;
    void bridge.playGreeting(tone(500, 100, 8000)).then(() => (played = true));
    playMs(call, bridge, 80);
    await Promise.resolve();
    expect(played).toBe(false);
    playMs(call, bridge, 40);
    await Promise.resolve();
    expect(played).toBe(true);
  });
});

describe('AudioBridge: caller audio to the AI', () => {
  test('batches 20 ms frames into one 40 ms append of 24 kHz PCM', () => {
    const { call, session } = setup();
    session.ready();
    for (let i = 0; i < 10; i++) call.speak(tone(700, 20, 8000).subarray(0, FRAME_8K));
    expect(session.appended).toHaveLength(5);
    const total = session.appended.reduce((s, b) => s + b.length, 0) / 2;
    // 200 ms at 24 kHz, less the resampler's startup delay.
    expect(total).toBeGreaterThan(4700);
    expect(total).toBeLessThanOrEqual(4800);
    for (const b of session.appended.slice(1)) expect(b.length / 2).toBe(960);
  });

  test('a wake carrying several frames is still cut into batches', () => {
    const { call, session, bridge } = setup();
    session.ready();
    call.speak(new Int16Array(FRAME_8K * 7));
    expect(session.appended).toHaveLength(3);
    expect(session.appended[2].length / 2).toBe(960);
    expect(bridge.stats.inputSamples).toBe(3 * 320);
  });

  test('G.711 µ-law passthrough: no resampling, one byte per sample', () => {
    const { call, session } = setup({ format: 'pcmu' });
    session.ready();
    const pcm = tone(700, 40, 8000);
    call.speak(pcm);
    expect(session.appended).toHaveLength(1);
    expect(session.appended[0].length).toBe(320);
    const back = decodeMuLaw(new Uint8Array(session.appended[0]));
    expect(Math.abs(back[100] - pcm[100])).toBeLessThan(400);
  });

  test('G.711 model audio is decoded straight into the ring', () => {
    const { call, session } = setup({ format: 'pcma' });
    session.ready();
    session.audio('item_a', new Uint8Array(800).fill(0xd5));
    expect(call.txIndex()[1]).toBe(800);
  });

  test('G.711 needs an 8 kHz bridge', () => {
    expect(() => setup({ format: 'pcmu', sampleRate: 16000 })).toThrow(RangeError);
  });

  test('holds caller audio until the session is ready, then sends it in one append', () => {
    const { call, session, bridge } = setup();
    for (let i = 0; i < 25; i++) call.speak(new Int16Array(FRAME_8K).fill(1000));
    expect(session.appended).toHaveLength(0);
    expect(bridge.stats.pendingInputSamples).toBe(25 * FRAME_8K - (25 % 2) * FRAME_8K);
    session.ready();
    expect(session.appended).toHaveLength(1);
    expect(session.appended[0].length / 2).toBeGreaterThan(24 * 480 - 100);
    expect(bridge.stats.inputDroppedSamples).toBe(0);
  });

  test('the pre-ready queue is bounded: the oldest audio is dropped and counted', () => {
    const { call, session, bridge } = setup({ preReadyMs: 200 });
    for (let i = 0; i < 50; i++) call.speak(new Int16Array(FRAME_8K));
    expect(bridge.stats.pendingInputSamples).toBeLessThanOrEqual(1600);
    expect(bridge.stats.inputDroppedSamples).toBe(50 * FRAME_8K - bridge.stats.pendingInputSamples);
    session.ready();
    expect(session.appended).toHaveLength(1);
  });

  test('after detachAi() caller audio is not sent (counted apart from drops) and model audio is ignored', () => {
    const { call, session, bridge } = setup();
    session.ready();
    bridge.detachAi();
    call.speak(new Int16Array(FRAME_8K * 4));
    session.audio('item_a', tone(1000, 100, 24000));
    session.speechStarted();
    expect(session.appended).toHaveLength(0);
    expect(bridge.stats.inputDetachedSamples).toBe(FRAME_8K * 4);
    expect(bridge.stats.inputDroppedSamples).toBe(0);
    expect(call.txIndex()[1]).toBe(0);
  });
});

describe('AudioBridge: recorder and timing', () => {
  test('the recorder gets caller and heard agent audio in equal-length pairs', () => {
    const caller: number[] = [];
    const agent: Int16Array[] = [];
    const recorder: CallRecorderSink = {
      audio: (c, a) => {
        caller.push(c.length);
        agent.push(a.slice());
      },
    };
    const { call, session, bridge } = setup({ recorder });
    session.ready();
    session.audio('item_a', tone(937, 200, 24000));
    converse(call, bridge, 20);
    expect(caller.length).toBe(10);
    expect(agent.map((a) => a.length)).toEqual(caller);
    const heard = agent.reduce((s, a) => s + a.reduce((x, v) => x + (v !== 0 ? 1 : 0), 0), 0);
    // ~200 ms of tone at 8 kHz, a few zero crossings aside.
    expect(heard).toBeGreaterThan(1500);
    expect(heard).toBeLessThanOrEqual(1600);
  });

  test('the recording keeps what the caller heard before a barge-in and none of what it cleared', () => {
    let heard = 0;
    const recorder: CallRecorderSink = {
      audio: (_c, a) => {
        heard += a.reduce((x, v) => x + (v !== 0 ? 1 : 0), 0);
      },
    };
    const { call, session, bridge } = setup({ recorder });
    session.ready();
    session.audio('item_a', tone(937, 1000, 24000));
    converse(call, bridge, 15);
    session.speechStarted();
    converse(call, bridge, 15);
    // 300 ms played (2400 samples) before the flush, a few zero crossings aside; nothing after.
    expect(heard).toBeGreaterThan(2300);
    expect(heard).toBeLessThanOrEqual(2400);
    expect(bridge.stats.recorderDroppedSamples).toBe(0);
  });

  test('pendingPlayoutMs is the agent audio queued and not yet played', () => {
    const { call, session, bridge } = setup();
    session.ready();
    session.audio('item_a', tone(1000, 500, 24000));
    const [, write] = call.txIndex();
    expect(bridge.pendingPlayoutMs).toBeCloseTo((write * 1000) / 8000, 0);
    playMs(call, bridge, 200);
    expect(bridge.pendingPlayoutMs).toBeCloseTo(((write - 1600) * 1000) / 8000, 0);
  });

  test('reports the turn latency once per turn, from speechStopped to the first model audio', () => {
    const { session, bridge } = setup();
    session.ready();
    const got: number[] = [];
    bridge.on('turnLatency', (t) => got.push(t.latencyMs));
    session.audio('item_0', tone(1000, 40, 24000));
    expect(got).toEqual([]);
    session.speechStopped();
    session.audio('item_a', tone(1000, 40, 24000));
    session.audio('item_a', tone(1000, 40, 24000));
    expect(got).toHaveLength(1);
    expect(got[0]).toBeGreaterThanOrEqual(0);
  });
});

describe('AudioBridge: paced model audio', () => {
  test('with prebufferMs a reply starts once that much of it is queued', () => {
    const { call, session, bridge } = setup({ prebufferMs: 200 });
    session.ready();
    session.audio('item_a', tone(1000, 100, 24000));
    playMs(call, bridge, 60);
    expect(call.txIndex()[1]).toBe(0);
    session.audio('item_a', tone(1000, 100, 24000));
    expect(call.txIndex()[1]).toBeGreaterThan(1500);
    expect(bridge.stats).toMatchObject({ prebuffers: 1, prebufferTimeouts: 0, underruns: 0 });
  });

  test('with prebufferMs a reply that comes in a burst plays at once', () => {
    const { call, session, bridge } = setup({ prebufferMs: 200 });
    session.ready();
    session.audio('item_a', tone(1000, 1000, 24000));
    expect(call.txIndex()[1]).toBeGreaterThan(7900);
    expect(bridge.stats.prebuffers).toBe(0);
  });

  test('without prebufferMs paced audio goes straight to the ring', () => {
    const { call, session } = setup();
    session.ready();
    session.audio('item_a', tone(1000, 100, 24000));
    expect(call.txIndex()[1]).toBeGreaterThan(700);
  });
});
