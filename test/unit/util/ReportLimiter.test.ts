import { ReportLimiter } from '../../../src/util/ReportLimiter';

describe('ReportLimiter', () => {
  it('reports once per key per interval and says how many it held back', () => {
    let now = 0;
    const r = new ReportLimiter({ intervalMs: 1000, now: () => now });
    expect(r.check('a')).toEqual({ report: true, suppressed: 0 });
    expect(r.check('a').report).toBe(false);
    expect(r.check('a').report).toBe(false);
    expect(r.check('b').report).toBe(true);
    now = 1000;
    expect(r.check('a')).toEqual({ report: true, suppressed: 2 });
  });

  it('keeps at most maxKeys keys, forgetting the longest-quiet first', () => {
    let now = 0;
    const r = new ReportLimiter({ intervalMs: 1000, maxKeys: 2, now: () => now });
    r.check('a');
    now = 1;
    r.check('b');
    now = 2;
    r.check('c');
    expect(r.size).toBe(2);
    // 'a' was forgotten: it reports again at once; 'c' is still held back.
    expect(r.check('a').report).toBe(true);
    expect(r.check('c').report).toBe(false);
  });
});
