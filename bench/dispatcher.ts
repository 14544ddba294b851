/**
 * Dispatcher benchmark: two agent instances (echo backend) behind Kamailio's dispatcher with the
 * shipped configuration (examples/kamailio/dispatcher.cfg), callers over raw SIP on loopback.
 *  1. Set-up latency (INVITE out -> 200 OK in), sequential calls straight to one instance and
 *     through the dispatcher: the difference is what the dispatcher adds.
 *  2. Admission rate: bursts of calls at rising rates through the dispatcher (each call hung up a
 *     second after it is answered); per rate, how many got 200 and how fast they were answered.
 *  3. Failover: calls at a steady rate through the dispatcher while one instance is killed
 *     (SIGKILL): how long until the dispatcher takes it out (its probe), and what the calls placed
 *     meanwhile saw (failed calls, set-up latency).
 *
 * Run:   npx tsc -p tsconfig.json && node dist/bench/dispatcher.js [--calls 200] [--rates 20,50,100,200] [--probe-s 1]
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startDispatcher } from '../test/helpers/kamailio';
import { freePort, freePortRange } from '../test/helpers/ports';
import { killAllProcesses, type ManagedProcess } from '../test/helpers/proc';
import { RawSipClient, pcmuOffer, type UacDialog } from '../test/helpers/rawsip';
import { sleep, startBenchDaemon } from './capacity';

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : dflt;
}

interface Agent {
  proc: ManagedProcess;
  sipPort: number;
}

async function startAgent(tmp: string, id: string): Promise<Agent> {
  const sipPort = await freePort('udp');
  const adminPort = await freePort('tcp');
  const rtpStart = await freePortRange(2 * 256 + 8);
  const dir = path.join(tmp, id);
  fs.mkdirSync(dir, { recursive: true });
  const cfg = path.join(dir, 'agent.yaml');
  fs.writeFileSync(
    cfg,
    [
      `instance: { id: ${id} }`,
      'sip:',
      `  transports: { udp: { enabled: true, bindAddress: 127.0.0.1, port: ${sipPort} }, tcp: { enabled: false } }`,
      '  limits: { invitesPerSecond: 1000, inviteBurst: 1000 }',
      'accounts: [ { uri: "sip:agent@127.0.0.1" } ]',
      `media: { clockRate: 8000, codecs: [PCMU], rtpPortStart: ${rtpStart}, rtpPortRange: ${2 * 256 + 8} }`,
      'ai: { provider: echo, transcription: off }',
      'calls: { allow: [127.0.0.1], maxConcurrent: 256, drainTimeoutSec: 0 }',
      `records: { dir: ${dir}/records, recordAudio: false }`,
      `admin: { listen: 127.0.0.1, port: ${adminPort} }`,
      'logging: { level: warn, pjsipLevel: 1, pretty: false }',
      '',
    ].join('\n'),
  );
  const { sut: proc } = await startBenchDaemon(cfg, adminPort, 600_000, `agent-${id}`);
  return { proc, sipPort };
}

function q(sorted: number[], p: number): number | null {
  return sorted.length ? Math.round(sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]! * 10) / 10 : null;
}
function stats(ms: number[]): { n: number; p50: number | null; p99: number | null; max: number | null } {
  const s = [...ms].sort((a, b) => a - b);
  return { n: s.length, p50: q(s, 0.5), p99: q(s, 0.99), max: s.length ? Math.round(s[s.length - 1]! * 10) / 10 : null };
}

let rtp = 42_000;
/** One call: INVITE to `port` (Request-URI agent@), resolved with its set-up time or its failure. */
async function place(sip: RawSipClient, port: number, timeoutMs = 15_000): Promise<{ ms: number; status: number; dlg?: UacDialog }> {
  rtp = rtp >= 60_000 ? 42_000 : rtp + 2;
  const t0 = performance.now();
  try {
    const dlg = await sip.invite({ target: { host: '127.0.0.1', port }, uri: `sip:agent@127.0.0.1:${port}`, body: pcmuOffer(rtp), timeoutMs });
    return { ms: performance.now() - t0, status: dlg.final.status ?? 0, dlg };
  } catch {
    return { ms: performance.now() - t0, status: 0 };
  }
}

async function hangUp(c: { dlg?: UacDialog }): Promise<void> {
  if (!c.dlg) return;
  if (c.dlg.final.status === 200) await c.dlg.bye(5_000).catch(() => undefined);
  c.dlg.close();
}

async function main(): Promise<void> {
  const calls = Number(arg('calls', '200'));
  const rates = arg('rates', '20,50,100,200').split(',').map(Number);
  const probeS = Number(arg('probe-s', '1'));
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dispatcher-'));
  const sip = await RawSipClient.open();
  try {
    const a = await startAgent(tmp, 'agent-a');
    const b = await startAgent(tmp, 'agent-b');
    const ds = await startDispatcher({ agents: [`127.0.0.1:${a.sipPort}`, `127.0.0.1:${b.sipPort}`], probeIntervalSec: probeS, inviteTimeoutMs: 2000, lifetimeMs: 600_000 });

    // 1. Set-up latency, sequential.
    const setup = async (port: number): Promise<number[]> => {
      const out: number[] = [];
      for (let i = 0; i < calls; i++) {
        const c = await place(sip, port);
        if (c.status === 200) out.push(c.ms);
        await hangUp(c);
      }
      return out;
    };
    const direct = stats(await setup(a.sipPort));
    const viaDispatcher = stats(await setup(ds.port));

    // 2. Bursts at rising rates.
    const bursts: Record<string, unknown>[] = [];
    for (const rate of rates) {
      const n = Math.max(20, rate * 2);
      const pending: Promise<{ ms: number; status: number; dlg?: UacDialog }>[] = [];
      const t0 = performance.now();
      for (let i = 0; i < n; i++) {
        const due = t0 + (i * 1000) / rate;
        const wait = due - performance.now();
        if (wait > 0) await sleep(wait);
        pending.push(place(sip, ds.port));
      }
      const res = await Promise.all(pending);
      const ok = res.filter((r) => r.status === 200);
      const byStatus: Record<string, number> = {};
      for (const r of res) byStatus[String(r.status)] = (byStatus[String(r.status)] ?? 0) + 1;
      bursts.push({ rate, calls: n, answered: ok.length, byStatus, setupMs: stats(ok.map((r) => r.ms)) });
      await sleep(1000);
      await Promise.all(res.map(hangUp));
      await sleep(1000);
    }

    // 3. Failover: 10 calls a second for 10 s; agent-a is killed after 3 s.
    const mark = ds.proc.lines().length;
    const results: { at: number; ms: number; status: number }[] = [];
    const t0 = performance.now();
    let killedAt = 0;
    let downSeenMs: number | null = null;
    const downRe = new RegExp(`DISPATCH down sip:127\\.0\\.0\\.1:${a.sipPort}\\b`);
    const pending: Promise<void>[] = [];
    for (let i = 0; i < 100; i++) {
      const due = t0 + i * 100;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      // Seen within the 100 ms a call is placed in.
      if (killedAt && downSeenMs === null && ds.proc.grep(downRe, mark).length > 0) downSeenMs = Math.round(performance.now() - killedAt);
      if (!killedAt && performance.now() - t0 >= 3000) {
        a.proc.killNow();
        killedAt = performance.now();
      }
      const at = performance.now();
      pending.push(place(sip, ds.port).then(async (c) => {
        results.push({ at, ms: c.ms, status: c.status });
        await sleep(500);
        await hangUp(c);
      }));
    }
    await Promise.all(pending);
    // Placed at or after the kill; `at` becomes ms since the kill.
    const after = results.filter((r) => r.at >= killedAt).map((r) => ({ ...r, at: r.at - killedAt }));
    const failover = {
      probeIntervalS: probeS,
      takenOutAfterMs: downSeenMs,
      callsAfterKill: after.length,
      failed: after.filter((r) => r.status !== 200).length,
      setupMsAfterKill: stats(after.filter((r) => r.status === 200).map((r) => r.ms)),
      slowestCallAfterKillAt: after.length ? Math.round([...after].sort((x, y) => y.ms - x.ms)[0]!.at) : null,
    };
    process.stdout.write(`${JSON.stringify({ calls, setupMs: { direct, viaDispatcher, addedP50: viaDispatcher.p50 !== null && direct.p50 !== null ? Math.round((viaDispatcher.p50 - direct.p50) * 10) / 10 : null }, bursts, failover }, null, 2)}\n`);
    await ds.stop();
  } finally {
    sip.close();
    await killAllProcesses();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`dispatcher: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  });
}
