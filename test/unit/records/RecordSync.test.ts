/** RecordSync: dirty records written once a second, kept while the store fails, saved across runs. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { silentLogger } from '../../../src/logging/logger';
import { RecordSync } from '../../../src/records/RecordSync';
import type { CallRecord } from '../../../src/records/types';

const rec = (callId: string, v = 1): CallRecord => ({ callId, status: 'in_progress', updatedAt: new Date(v).toISOString() }) as unknown as CallRecord;

function setup(opts: { failing?: () => boolean; writtenSince?: string[] } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'recsync-'));
  const stateFile = path.join(dir, '.backlog.json');
  const store = new Map<string, number>([['a', 1], ['b', 1], ['c', 1]]);
  const written: string[] = [];
  const sinces: number[] = [];
  const make = () =>
    new RecordSync({
      write: async (r) => {
        if (opts.failing?.()) throw new Error('ECONNREFUSED');
        written.push(r.callId);
      },
      read: async (id) => (store.has(id) ? rec(id, store.get(id)) : undefined),
      writtenSince: async (ms) => {
        sinces.push(ms);
        return opts.writtenSince ?? [];
      },
      stateFile,
      logger: silentLogger(),
      intervalMs: 1000,
    });
  return { dir, stateFile, store, written, sinces, make };
}

beforeEach(() => jest.useFakeTimers({ doNotFake: ['setImmediate', 'nextTick'] }));
afterEach(() => jest.useRealTimers());

test('writes each dirty record once per flush, again when it changes, and skips records that are gone', async () => {
  const t = setup();
  const s = t.make();
  await s.start();
  s.notify('a');
  s.notify('a');
  s.notify('zzz'); // no such record
  await jest.advanceTimersByTimeAsync(1000);
  await s.flush();
  expect(t.written).toEqual(['a']);
  expect(s.stats).toMatchObject({ pending: 0, written: 1, down: false });
  s.notify('a');
  await s.flush();
  expect(t.written).toEqual(['a', 'a']);
  await s.close();
});

test('a store that fails keeps the records dirty (across a restart) until it answers', async () => {
  let down = true;
  const t = setup({ failing: () => down });
  const s = t.make();
  await s.start();
  s.notify('a');
  s.notify('b');
  await s.flush();
  expect(s.stats).toMatchObject({ pending: 2, written: 0, down: true, failedWrites: 1 });
  await s.close();
  // Next run: the saved backlog comes back.
  const s2 = t.make();
  await s2.start();
  expect(s2.stats.pending).toBe(2);
  expect(t.sinces[1]).toBeGreaterThan(0);
  down = false;
  await s2.flush();
  expect(t.written.sort()).toEqual(['a', 'b']);
  expect(s2.stats).toMatchObject({ pending: 0, down: false });
  await s2.close();
});

test('a restart also writes what was written since the last save; an unreadable backlog means the last day', async () => {
  const t = setup({ writtenSince: ['c'] });
  fs.writeFileSync(t.stateFile, 'not json');
  const s = t.make();
  const before = Date.now();
  await s.start();
  expect(t.sinces[0]).toBeLessThanOrEqual(before - 24 * 3600_000 + 1);
  await s.flush();
  expect(t.written).toEqual(['c']);
  await s.close();
});

test('the backlog is bounded: the oldest dirty ids go first, counted', async () => {
  const t = setup();
  const s = new RecordSync({ write: async () => undefined, read: async () => undefined, writtenSince: async () => [], stateFile: t.stateFile, logger: silentLogger(), maxPending: 2 });
  s.notify('1');
  s.notify('2');
  s.notify('3');
  expect(s.stats).toMatchObject({ pending: 2, dropped: 1 });
});
