import { RecorderTap } from '../../../src/calls/RecorderTap';
import { silentLogger } from '../../../src/logging/logger';
import type { CallRecorderSink } from '../../../src/calls/types';

const RATE = 8000;

/** Samples start, start+1, ... so a recording shows which ring positions it holds. */
function ramp(n: number, start: number): Int16Array {
  const a = new Int16Array(n);
  for (let i = 0; i < n; i++) a[i] = start + i;
  return a;
}

function make(queueMs = 2000) {
  const callerLens: number[] = [];
  const agent: number[] = [];
  const sink: CallRecorderSink = {
    audio: (c, a) => {
      callerLens.push(c.length);
      agent.push(...a);
    },
  };
  const tap = new RecorderTap(sink, { sampleRate: RATE, queueMs, logger: silentLogger() });
  return { tap, callerLens, agent };
}

describe('RecorderTap', () => {
  test('pairs each caller batch with heard agent audio, silence where nothing was heard', () => {
    const { tap, callerLens, agent } = make();
    tap.written(100, ramp(300, 1));
    tap.played(250);
    tap.caller(new Int16Array(100));
    tap.caller(new Int16Array(100));
    expect(callerLens).toEqual([100, 100]);
    expect(agent).toEqual([...ramp(100, 1), ...ramp(50, 101), ...new Array(50).fill(0)]);
    expect(tap.unplayedSamples).toBe(150);
  });

  test('records nothing written but not yet played', () => {
    const { tap, agent } = make();
    tap.written(0, ramp(160, 1));
    tap.caller(new Int16Array(160));
    expect(agent.every((v) => v === 0)).toBe(true);
    tap.played(160);
    tap.caller(new Int16Array(160));
    expect(agent.slice(160)).toEqual(Array.from(ramp(160, 1)));
  });

  test('a clear keeps what played before it and drops the rest; later writes follow on', () => {
    const { tap, agent } = make();
    tap.written(0, ramp(400, 1));
    tap.played(100);
    tap.cleared(150);
    expect(tap.unplayedSamples).toBe(0);
    expect(tap.heardSamples).toBe(150);
    tap.written(400, ramp(50, 1001));
    tap.played(450);
    tap.caller(new Int16Array(200));
    expect(agent).toEqual([...ramp(150, 1), ...ramp(50, 1001)]);
    expect(tap.droppedSamples).toBe(0);
  });

  test('bounds the heard queue: the oldest go first and are counted', () => {
    const { tap, agent } = make(100); // 800 samples
    tap.written(0, ramp(1000, 1));
    tap.played(1000);
    expect(tap.heardSamples).toBe(800);
    expect(tap.droppedSamples).toBe(200);
    tap.caller(new Int16Array(800));
    expect(agent).toEqual(Array.from(ramp(800, 201)));
  });

  test('keeps order across wrap-around and growth of its ring', () => {
    const { tap, agent } = make(50); // 400 heard at most; the ring starts with room for 1 s unplayed
    const at = (p: number): number => p % 20000;
    const expected: number[] = [];
    let written = 0;
    let played = 0;
    let seed = 7;
    for (let step = 0; step < 800; step++) {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      // Bursts faster than real time, up to 3 s ahead of playout: the ring must grow and wrap.
      if (written - played < 24000) {
        const n = seed % 900;
        const chunk = new Int16Array(n);
        for (let i = 0; i < n; i++) chunk[i] = at(written + i);
        tap.written(written, chunk);
        written += n;
      }
      const to = Math.min(written, played + 320);
      for (let p = played; p < to; p++) expected.push(at(p));
      for (let p = to - played; p < 320; p++) expected.push(0);
      played = to;
      tap.played(played);
      tap.caller(new Int16Array(320));
    }
    expect(played).toBeGreaterThan(200_000);
    expect(tap.droppedSamples).toBe(0);
    expect(agent.length).toBe(expected.length);
    expect(agent.findIndex((v, i) => v !== expected[i])).toBe(-1);
  });

  test('a write that does not follow the last one restarts there, dropping (and counting) the unplayed', () => {
    const { tap, agent } = make();
    tap.written(0, ramp(100, 1));
    tap.played(40);
    tap.written(500, ramp(100, 501));
    expect(tap.droppedSamples).toBe(60);
    tap.played(550);
    tap.caller(new Int16Array(90));
    expect(agent).toEqual([...ramp(40, 1), ...ramp(50, 501)]);
  });

  test('a throwing sink is logged and the tap goes on', () => {
    let calls = 0;
    const tap = new RecorderTap(
      {
        audio: () => {
          calls++;
          throw new Error('disk gone');
        },
      },
      { sampleRate: RATE, queueMs: 1000, logger: silentLogger() },
    );
    expect(() => tap.caller(new Int16Array(10))).not.toThrow();
    tap.caller(new Int16Array(10));
    expect(calls).toBe(2);
  });

  test('does nothing after close(), which is idempotent', () => {
    const { tap, callerLens } = make();
    tap.written(0, ramp(100, 1));
    tap.close();
    tap.close();
    tap.written(100, ramp(100, 1));
    tap.played(200);
    tap.caller(new Int16Array(10));
    expect(callerLens).toEqual([]);
    expect(tap.heardSamples + tap.unplayedSamples).toBe(0);
  });
});
