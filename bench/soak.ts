/**
 * Soak: many short calls through the daemon (echo backend, records on), a few at a time, with
 * the process's RSS, open file descriptors and threads sampled throughout. A leak per call shows
 * as a slope: the report gives each at the start (after a warm-up), its peak, and the end (after
 * the last call, once the daemon is idle again).
 *
 * Each call: INVITE with a PCMU offer, 200, ACK, a short hold, BYE (the raw SIP client of the
 * tests; RTP is sent to the daemon but nothing listens for its greeting).
 *
 * Run:   npx tsc -p tsconfig.json && node dist/bench/soak.js [--calls 10000] [--concurrency 20] [--hold-ms 200]
 * `npm test` runs a shorter soak (test/e2e/daemon-soak.test.ts) through the same code.
 */
import { fdCount, rssMiB, threadCount } from './capacity/procstat';
import { RawSipClient } from '../test/helpers/rawsip';
import { prepareDaemon, startDaemon, type Daemon } from '../test/helpers/daemon';
import { delay, killAllProcesses } from '../test/helpers/proc';

/** One resource reading. */
export interface SoakSample {
  calls: number;
  rssMiB: number | null;
  /** JS heap in use (nodejs_heap_size_used_bytes), MiB. */
  heapMiB?: number | null;
  fds: number | null;
  threads: number | null;
}

/** start (after the warm-up), peak and end of one resource. */
export interface SoakSeries {
  start: number | null;
  peak: number | null;
  end: number | null;
}

export interface SoakResult {
  calls: number;
  completed: number;
  failed: number;
  /** Final statuses other than 200 (e.g. 486 when the daemon was still busy), by code. */
  statuses: Record<string, number>;
  elapsedS: number;
  callsPerSec: number;
  rssMiB: SoakSeries;
  /** JS heap in use at the start reading and the end. */
  heapMiB: { start: number | null; end: number | null };
  fds: SoakSeries;
  threads: SoakSeries;
  samples: SoakSample[];
}

export interface SoakOptions {
  calls: number;
  concurrency: number;
  holdMs: number;
  /** Calls before the start reading (default 5 % of calls, at least 20). */
  warmup?: number;
  /** Sample every this many calls (default calls / 50). */
  sampleEvery?: number;
}

function series(values: (number | null)[], start: number | null, end: number | null): SoakSeries {
  const v = values.filter((x): x is number => x !== null);
  return { start, peak: v.length ? Math.max(...v) : null, end };
}

async function heapMiB(d: Daemon): Promise<number | null> {
  const r = await d.http('GET', '/metrics').catch(() => undefined);
  const m = r ? /^nodejs_heap_size_used_bytes (\S+)$/m.exec(r.text) : null;
  return m ? Number(m[1]) / 1048576 : null;
}

function sample(pid: number, calls: number): SoakSample {
  return { calls, rssMiB: rssMiB(pid), fds: fdCount(pid), threads: threadCount(pid) };
}

/** Start a daemon for soaking (echo backend, limits raised, records without audio). */
export async function startSoakDaemon(concurrency: number, calls: number): Promise<Daemon> {
  const setup = await prepareDaemon('echo', {
    // Room for calls still ending in the daemon while the next ones start.
    calls: { maxConcurrent: Math.max(4, 2 * concurrency), maxDurationSec: 60 },
    media: { rtpPortRange: Math.max(20, 4 * concurrency + 8) },
    sip: { limits: { invitesPerSecond: 100000, inviteBurst: 100000, requestsPerSecond: 100000, requestBurst: 100000 } },
    records: { recordAudio: false },
  });
  // The harness kills a peer at the end of its lifetime: give the daemon room for every call.
  return startDaemon(setup, { name: 'soak', lifetimeMs: Math.max(120_000, calls * 60) });
}

/** Run the soak against a running daemon. */
export async function runSoak(d: Daemon, o: SoakOptions): Promise<SoakResult> {
  const pid = d.proc.pid;
  const warmup = o.warmup ?? Math.max(20, Math.floor(o.calls * 0.05));
  const every = o.sampleEvery ?? Math.max(1, Math.floor(o.calls / 50));
  const target = { host: '127.0.0.1', port: d.setup.ports.sip };
  const clients = await Promise.all(Array.from({ length: o.concurrency }, () => RawSipClient.open()));
  const samples: SoakSample[] = [];
  const statuses: Record<string, number> = {};
  let started = 0;
  let done = 0;
  let completed = 0;
  let startReading: SoakSample | undefined;
  let startHeap: number | null = null;
  const t0 = Date.now();
  const worker = async (c: RawSipClient): Promise<void> => {
    while (started < o.calls) {
      if (d.closed) throw new Error(`the daemon exited after ${done} calls: ${d.tail(30)}`);
      started++;
      try {
        const dlg = await c.invite({ target, timeoutMs: 15_000 });
        const st = dlg.final.status ?? 0;
        if (dlg.established) {
          await delay(o.holdMs);
          await dlg.bye(10_000);
          completed++;
        } else statuses[st] = (statuses[st] ?? 0) + 1;
        dlg.close();
      } catch (err) {
        statuses.error = (statuses.error ?? 0) + 1;
      }
      done++;
      if (done === warmup) {
        startReading = sample(pid, done);
        startHeap = await heapMiB(d);
      }
      if (done % every === 0) samples.push(sample(pid, done));
    }
  };
  try {
    await Promise.all(clients.map((c) => worker(c)));
  } finally {
    for (const c of clients) c.close();
  }
  const elapsedS = (Date.now() - t0) / 1000;
  // The end reading: after every call has ended in the daemon too.
  for (let i = 0; i < 100; i++) {
    const r = await d.http('GET', '/calls');
    if ((r.json as { active: unknown[] }).active.length === 0) break;
    await delay(100);
  }
  await delay(1000);
  const end = sample(pid, done);
  samples.push(end);
  const s0 = startReading ?? samples[0]!;
  return {
    calls: o.calls,
    completed,
    failed: o.calls - completed,
    statuses,
    elapsedS,
    callsPerSec: o.calls / elapsedS,
    rssMiB: series(samples.map((x) => x.rssMiB), s0.rssMiB, end.rssMiB),
    heapMiB: { start: startHeap, end: await heapMiB(d) },
    fds: series(samples.map((x) => x.fds), s0.fds, end.fds),
    threads: series(samples.map((x) => x.threads), s0.threads, end.threads),
    samples,
  };
}

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
}

async function main(): Promise<void> {
  const calls = arg('calls', 10_000);
  const concurrency = arg('concurrency', 20);
  const d = await startSoakDaemon(concurrency, calls);
  try {
    const r = await runSoak(d, { calls, concurrency, holdMs: arg('hold-ms', 200) });
    const { samples, ...rest } = r;
    process.stdout.write(`${JSON.stringify(rest, null, 2)}\n`);
    process.stdout.write(`samples (calls rss fds threads): ${samples.map((s) => `${s.calls}:${s.rssMiB?.toFixed(0)}/${s.fds}/${s.threads}`).join(' ')}\n`);
  } finally {
    await d.close();
    await killAllProcesses();
  }
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`soak: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  });
}
