import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createVad, type CallVad, type Vad, type VadLogger } from '../../../src/audio/vad';
import { SCORE_RING } from '../../../src/audio/vad/VadStream';
import { bursts, clicks, concat, knocks, mix, noise, pushFrames, record, samples, settled, utterance } from './signals';

const quiet: VadLogger = { warn: () => {} };

// Every VAD a test makes is closed after it, passed or failed: a worker left running keeps Jest up.
const made: Vad[] = [];
function open(options: Parameters<typeof createVad>[0]): Vad {
  const vad = createVad(options);
  made.push(vad);
  return vad;
}
afterEach(async () => {
  await Promise.all(made.splice(0).map((v) => v.close()));
});

/** The utterance between 1 s of line noise before and after, and where its speech is. */
function onLine(rate: number): { pcm: Int16Array; onset: number; end: number } {
  const u = utterance(rate);
  const lead = samples(1000, rate);
  const pcm = mix(concat(new Int16Array(lead), u, new Int16Array(lead)), noise(1000, rate, -50, 3));
  return { pcm, onset: lead, end: lead + u.length };
}

/** Loud sounds that are not speech, each after 1 s of line noise. */
function notSpeech(rate: number): Record<string, Int16Array> {
  const line = noise(1000, rate, -50, 3);
  return {
    'white noise': concat(line, noise(3000, rate, -20, 5)),
    clicks: mix(concat(line, clicks(3000, rate, 250)), line),
    knocks: mix(concat(line, knocks(3000, rate, 400)), line),
    'tone bursts': mix(concat(line, bursts(3000, rate)), line),
  };
}

/** A stand-in for onnxruntime-node whose runs fail or never finish after the first `good` ones. */
function fakeOrt(mode: 'throw' | 'hang', good: number): string {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'vad-ort-')), 'ort.js');
  fs.writeFileSync(
    file,
    `let runs = 0;
class Tensor { constructor(type, data, dims) { this.type = type; this.data = data; this.dims = dims; } }
exports.Tensor = Tensor;
exports.InferenceSession = { create: async () => ({
  inputNames: ['input', 'state', 'sr'], outputNames: ['output', 'stateN'],
  run: async (feeds) => {
    if (++runs > ${good}) { if (${JSON.stringify(mode)} === 'throw') throw new Error('fake run failure'); return new Promise(() => {}); }
    const b = feeds.state.dims[1];
    return { output: new Tensor('float32', new Float32Array(b).fill(0.9), [b, 1]), stateN: new Tensor('float32', new Float32Array(2 * b * 128), [2, b, 128]) };
  },
}) };
`,
  );
  return file;
}

describe('Silero v5 in the worker', () => {
  let vad: Vad;
  beforeAll(async () => {
    vad = createVad({ log: quiet });
    expect(await vad.ready).toBe('silero');
  });
  afterAll(() => vad.close());

  test.each([8000, 16000])('speech at %i Hz: one utterance, dated within a window of its onset and end', async (rate) => {
    const call = vad.forCall(rate);
    expect(call.backend).toBe('silero');
    const events = record(call);
    const { pcm, onset, end } = onLine(rate);
    await pushFrames(call, pcm, vad);
    const win = samples(32, rate);
    expect(events.map((e) => e.kind)).toEqual(['start', 'end']);
    // The first phoneme is a soft "h": the model is sure of it within two windows.
    expect(events[0].atSample).toBeGreaterThanOrEqual(onset - win);
    expect(events[0].atSample).toBeLessThanOrEqual(onset + 2 * win);
    expect(Math.abs(events[1].atSample - end)).toBeLessThanOrEqual(win);
    expect(call.stats.inferred).toBeGreaterThan(0);
    expect(call.stats.dropped).toBe(0);
    call.close();
  });

  test('a 24 kHz call is resampled to 16 kHz and dated in its own samples', async () => {
    const call = vad.forCall(24000);
    const events = record(call);
    const { pcm, onset, end } = onLine(24000);
    await pushFrames(call, pcm, vad);
    const win = samples(32, 24000);
    expect(events.map((e) => e.kind)).toEqual(['start', 'end']);
    expect(events[0].atSample).toBeGreaterThanOrEqual(onset - win);
    expect(events[0].atSample).toBeLessThanOrEqual(onset + 2 * win);
    expect(Math.abs(events[1].atSample - end)).toBeLessThanOrEqual(win);
    call.close();
  });

  test.each([8000, 16000])('loud sounds that are not speech start nothing at %i Hz, though the model scored them', async (rate) => {
    for (const [name, pcm] of Object.entries(notSpeech(rate))) {
      const call = vad.forCall(rate);
      const events = record(call);
      await pushFrames(call, pcm, vad);
      expect({ name, events }).toEqual({ name, events: [] });
      expect(call.stats.inferred).toBeGreaterThan(0);
      call.close();
    }
  });

  test('the same noise and tone bursts are speech to the energy fallback', async () => {
    const energy = open({ backend: 'energy' });
    const sounds = notSpeech(8000);
    for (const name of ['white noise', 'tone bursts']) {
      const call = energy.forCall(8000);
      const events = record(call);
      await pushFrames(call, sounds[name]);
      expect({ name, starts: events.filter((e) => e.kind === 'start').length > 0 }).toEqual({ name, starts: true });
    }
    await energy.close();
  });

  test('the energy gate keeps a silent line away from the model', async () => {
    const call = vad.forCall(8000);
    await pushFrames(call, concat(noise(1000, 8000, -50, 3), noise(9000, 8000, -50, 4)), vad);
    const s = call.stats;
    // Only while the floor learns the line (it starts at -45 dBFS) may windows reach the model.
    expect(s.gated).toBeGreaterThan(0.9 * s.windows);
    expect(s.inferred + s.gated).toBe(s.windows);
    call.close();
  });

  test('without the gate every window is scored', async () => {
    const ungated = open({ gate: false, log: quiet });
    await ungated.ready;
    const call = ungated.forCall(8000);
    await pushFrames(call, noise(2000, 8000, -50, 3), ungated);
    expect(call.stats).toMatchObject({ gated: 0, inferred: call.stats.windows });
    const total = ungated.stats;
    expect(total.batches).toBeGreaterThan(0);
    expect(total.batches).toBeLessThanOrEqual(total.inferred);
    expect(total.modelUs).toBeGreaterThan(0);
    await ungated.close();
  });
});

describe('bounded queues', () => {
  test('a flood from one call: never more than its cap queued, the rest dropped and counted', async () => {
    const vad = open({ gate: false, maxQueuedWindowsPerCall: 3, log: quiet });
    await vad.ready;
    const call = vad.forCall(8000);
    const pcm = noise(10_000, 8000, -30, 9);
    let most = 0;
    for (let at = 0; at < pcm.length; at += 160) {
      call.push(pcm.subarray(at, at + 160));
      most = Math.max(most, call.stats.queued);
    }
    expect(most).toBe(3);
    await settled(vad);
    const s = call.stats;
    expect(s.windows).toBe(Math.floor(pcm.length / 256));
    expect(s.dropped).toBeGreaterThan(0);
    expect(s.inferred + s.dropped).toBe(s.windows);
    expect(s.queued).toBe(0);
    await vad.close();
  });

  test('a flood from many calls: never more than the global cap queued; slots all come back', async () => {
    const vad = open({ gate: false, maxQueuedWindows: 16, log: quiet });
    await vad.ready;
    const calls: CallVad[] = [];
    for (let i = 0; i < 40; i++) calls.push(vad.forCall(i % 2 ? 16000 : 8000));
    let most = 0;
    for (let tick = 0; tick < 100; tick++) {
      for (const c of calls) c.push(noise(20, c.sampleRate, -30, tick + 1));
      most = Math.max(most, vad.stats.queued);
    }
    expect(most).toBe(16);
    // Calls closed with windows in flight: their answers are dropped, their slots freed.
    for (const c of calls.slice(0, 20)) c.close();
    await settled(vad);
    const s = vad.stats;
    expect(s.dropped).toBeGreaterThan(0);
    expect(s.queued).toBe(0);
    const call = vad.forCall(8000);
    for (let i = 0; i < 16; i++) call.push(noise(32, 8000, -30, i + 1));
    expect(call.stats.queued).toBe(4);
    await settled(vad);
    expect(call.stats.inferred).toBe(4);
    await vad.close();
  });

  test('a model that stops answering: windows are given up after the score ring, decisions go on', async () => {
    const vad = open({ gate: false, onnxRuntimePath: fakeOrt('hang', 2), log: quiet });
    await vad.ready;
    const call = vad.forCall(8000);
    const events = record(call);
    // Two windows the fake scores 0.9, then 5 s it never answers.
    await pushFrames(call, noise(80, 8000, -30, 5), vad);
    expect(call.stats.inferred).toBe(2);
    const pcm = noise(5000, 8000, -30, 6);
    await pushFrames(call, pcm);
    const s = call.stats;
    const windows = Math.floor((640 + pcm.length) / 256);
    expect(s.inferred).toBe(2);
    expect(s.queued).toBeLessThanOrEqual(4);
    // Decided windows trail the pushed ones by the score ring at most.
    expect(s.windows).toBeLessThanOrEqual(windows);
    expect(s.windows).toBeGreaterThan(windows - SCORE_RING);
    expect(s.dropped).toBe(s.windows - s.inferred);
    // Dropped windows repeat the last decision: the utterance the two scores began goes on.
    expect(events.map((e) => e.kind)).toEqual(['start']);
    await vad.close();
  });
});

describe('worker failure and shutdown', () => {
  test('a run that fails: one warning, windows in flight dropped, energy scoring from then on', async () => {
    const warnings: string[] = [];
    const vad = open({ gate: false, onnxRuntimePath: fakeOrt('throw', 3), log: { warn: (_o, m) => warnings.push(m) } });
    await vad.ready;
    const fallback = vad.waitFor('fallback');
    const call = vad.forCall(8000);
    const pcm = noise(3000, 8000, -30, 5);
    for (let at = 0; at < pcm.length; at += 160) {
      call.push(pcm.subarray(at, at + 160));
      await new Promise((r) => setImmediate(r));
      if (vad.backend === 'energy') break;
    }
    expect((await fallback)[0].message).toMatch(/fake run failure/);
    await pushFrames(call, pcm);
    const s = call.stats;
    expect(call.backend).toBe('energy');
    expect(s.queued).toBe(0);
    expect(s.energyScored).toBeGreaterThan(0);
    expect(s.inferred + s.dropped + s.energyScored).toBe(s.windows);
    expect(warnings).toHaveLength(1);
    await vad.close();
  });

  test('close() while the model loads or windows are in flight ends the worker: no handle left', async () => {
    const before = process.getActiveResourcesInfo().filter((r) => r === 'MessagePort').length;
    const loading = open({ log: quiet });
    expect(process.getActiveResourcesInfo().filter((r) => r === 'MessagePort').length).toBe(before + 1);
    await loading.close();
    expect(await loading.ready).toBe('energy');
    const busy = open({ gate: false, log: quiet });
    await busy.ready;
    const call = busy.forCall(16000);
    call.push(noise(200, 16000, -30, 1));
    expect(busy.stats.queued).toBeGreaterThan(0);
    const closed = busy.waitFor('close');
    await busy.close();
    await closed;
    expect(call.closed).toBe(true);
    expect(process.getActiveResourcesInfo().filter((r) => r === 'MessagePort').length).toBe(before);
  });
});
