import { HealthHistory } from '../../../src/admin/HealthHistory';
import { Histogram } from '../../../src/util/Histogram';

describe('HealthHistory', () => {
  it('closes one sample per roll with what happened in that interval only', () => {
    let now = Date.parse('2026-12-05T10:00:00Z');
    const h = new HealthHistory({ intervalMs: 60_000, capacity: 10, now: () => now });
    const up = new Histogram([1, 2, 5, 10, 20, 50]);
    const down = new Histogram([1, 2, 5, 10, 20, 50]);
    up.observe(40); // before tracking: not counted
    h.trackAudio(() => up, () => down);
    h.activeCalls(2);
    h.activeCalls(1);
    h.callEnded('caller_hangup');
    h.callEnded('caller_hangup');
    h.callEnded('ai_failure');
    for (let i = 0; i < 100; i++) h.turnLatency(i < 90 ? 400 : 2000);
    for (let i = 0; i < 10; i++) up.observe(3);
    h.underruns(5);
    h.underruns(-3);
    h.aiError();
    now += 60_000;
    h.roll();
    const r = h.report();
    expect(r.intervalSec).toBe(60);
    expect(r.samples).toHaveLength(1);
    const s = r.samples[0];
    expect(s).toMatchObject({ t: '2026-12-05T10:00:00.000Z', activeCalls: 2, calls: { caller_hangup: 2, ai_failure: 1 }, underruns: 5, aiErrors: 1 });
    expect(s.turnLatencyMs.n).toBe(100);
    expect(s.turnLatencyMs.p50).toBeGreaterThan(300);
    expect(s.turnLatencyMs.p50).toBeLessThanOrEqual(400);
    expect(s.turnLatencyMs.p99).toBeGreaterThan(1500);
    expect(s.uplinkMs).toEqual({ n: 10, p50: expect.any(Number), p99: expect.any(Number) });
    expect(s.uplinkMs.p99).toBeLessThanOrEqual(5);
    expect(s.downlinkMs).toEqual({ n: 0, p50: null, p99: null });
    // The next interval starts empty, with the calls still up.
    expect(r.current).toMatchObject({ t: '2026-12-05T10:01:00.000Z', activeCalls: 1, calls: {}, underruns: 0, aiErrors: 0, turnLatencyMs: { n: 0 } });
  });

  it('keeps at most capacity samples, oldest dropped, and reports the last N', () => {
    let now = 0;
    const h = new HealthHistory({ intervalMs: 1000, capacity: 3, now: () => now });
    for (let i = 0; i < 5; i++) {
      h.callEnded(`r${i}`);
      now += 1000;
      h.roll();
    }
    expect(h.report().samples.map((s) => Object.keys(s.calls)[0])).toEqual(['r2', 'r3', 'r4']);
    expect(h.report(1).samples.map((s) => Object.keys(s.calls)[0])).toEqual(['r4']);
    expect(h.report(0).samples).toEqual([]);
    expect(h.report(1e9).samples).toHaveLength(3);
  });

  it('ignores values that are not measurements', () => {
    const h = new HealthHistory();
    h.activeCalls(Number.NaN);
    h.activeCalls(-1);
    h.turnLatency(Number.POSITIVE_INFINITY);
    h.underruns(Number.NaN);
    expect(h.report().current).toMatchObject({ activeCalls: 0, underruns: 0, turnLatencyMs: { n: 0, p50: null, p99: null } });
  });
});
