/**
 * A short soak in every test run (the long one is `node dist/bench/soak.js`, see BENCHMARKS.md):
 * 600 short calls through the daemon, 10 at a time. Every call must complete, and what a call
 * holds must be given back: open file descriptors and threads end where they started (RSS is
 * reported, not judged here: allocators keep what they freed).
 */
import { useHarnessCleanup } from '../helpers/proc';
import { assertBuilt, listRecords } from '../helpers/daemon';
import { runSoak, startSoakDaemon } from '../../bench/soak';

jest.setTimeout(240_000);
useHarnessCleanup();

beforeAll(() => assertBuilt());

test('600 short calls: all complete and recorded; open file descriptors and threads are back where they started', async () => {
  const d = await startSoakDaemon(10, 600);
  try {
    const r = await runSoak(d, { calls: 600, concurrency: 10, holdMs: 100, warmup: 50 });
    expect(r.statuses).toEqual({});
    expect(r.completed).toBe(600);
    // At the start reading 10 calls were up (their sockets open); at the end none is.
    expect(r.fds.end).not.toBeNull();
    expect(r.fds.end!).toBeLessThanOrEqual(r.fds.start!);
    expect(r.threads.end).toBe(r.threads.start);
    expect(r.threads.peak).toBe(r.threads.start);
    expect(listRecords(d.setup.recordsDir).filter((x) => x.record.status === 'completed')).toHaveLength(600);
    // For the log of the run.
    process.stdout.write(`soak: ${r.callsPerSec.toFixed(1)} calls/s; RSS ${r.rssMiB.start?.toFixed(0)} -> peak ${r.rssMiB.peak?.toFixed(0)} -> ${r.rssMiB.end?.toFixed(0)} MiB; fds ${r.fds.start} -> ${r.fds.end}; threads ${r.threads.start}\n`);
  } finally {
    await d.close();
  }
});
