/**
 * Capacity benchmark: N concurrent calls against the real daemon (fake Realtime backend as its own
 * process) and against the bare pjsua app (the floor), all on 127.0.0.1. For each N it measures
 * over a steady window: CPU % and RSS of the process under test (all threads), the same for the
 * load generator and the fake, the daemon's event-loop delay (prom-client's monitorEventLoopDelay
 * gauges on /metrics; the histogram resets on each scrape, so a scrape at the window start and one
 * at its end give the window's percentiles), underruns/overflows from /metrics after the calls
 * end, and the load generator's view (gaps inside replies, frames received against the clock).
 *
 * Added latency (figure 1: uplink and downlink) and barge-in cut-off (figure 2) come from the
 * daemon's own cumulative histograms on /metrics (clock-thread tick times stamped natively, JS
 * times on the same monotonic clock), differenced between the window's start and end; so does the
 * event-loop delay (`sip_ai_agent_event_loop_delay_seconds`, a 10 ms timer's lateness, never reset).
 *
 * Run:   npx tsc -p tsconfig.json && node dist/bench/capacity.js [--n 10,50,100,200]
 *          [--configs pjsua,pcm,pcmu,live] [--steady-s 20] [--json] [--nice-peers] [--barge-every 3]
 *          [--append-ms 20]   (the daemon's ai.appendMs: caller audio per append)
 *          [--live-prebuffer-ms 200]   (the daemon's ai.live.prebufferMs; unset: its default)
 *          [--fake-burst 4]   (the fake's reply pacing as a multiple of real time; `inf` sends each
 *                              reply at once, so an underrun can only be the daemon's doing)
 *          [--daemon-node-args "--cpu-prof --cpu-prof-dir=/tmp/prof"] [--daemon-log /tmp/daemon.log]
 * Every child runs in its own process group with a hard lifetime and is killed on exit.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as http from 'node:http';
import { spawnManaged, killAllProcesses, type ManagedProcess } from '../test/helpers/proc';
import { findPjsuaBinary } from '../test/helpers/pjsua';
import { freePort, freePortRange, isPortFree } from '../test/helpers/ports';
import { quantileOf } from '../src/util/Histogram';
import { cpuPercent, cpuSample, machineSample, rssMiB, threadCount, threadCpu, threadCpuPercent, type CpuSample } from './capacity/procstat';

export const ROOT = path.resolve(__dirname, '..', '..');
export const DIST = path.resolve(__dirname, '..');
export const API_KEY = 'sk-bench';
// dist/bench/ is not where the test helpers look for the pjsua app.
process.env.PJSUA_BIN ??= (() => {
  const bin = path.join(ROOT, 'third_party/.build/pjproject/pjsip-apps/bin');
  const hit = fs.existsSync(bin) ? fs.readdirSync(bin).filter((n) => n.startsWith('pjsua-')).sort()[0] : undefined;
  return hit ? path.join(bin, hit) : undefined;
})();

/** Which target a run measures. */
/** `live` is the GPT-Live backend (`ai.provider: openai-live`, PCM) against the fake GPT-Live server. */
export type Target = 'pcm' | 'pcmu' | 'pjsua' | 'live';

/** Percentiles of one histogram over the window (ms, or frames for the stale count). */
export interface WindowQuantiles {
  n: number;
  p50: number | null;
  p99: number | null;
  /** Upper bound of the highest non-empty bucket (the exact maximum is not in a histogram). */
  maxBound: number | null;
}

/** Figures of one run (one target, one N). */
export interface RunResult {
  target: Target;
  calls: number;
  connected: number;
  failed: number;
  setupMs: number;
  windowS: number;
  cpuPct: number | null;
  cpuPctPerCall: number | null;
  rssIdleMiB: number | null;
  rssMiB: number | null;
  rssPerCallMiB: number | null;
  threads: number | null;
  /** CPU % of the process under test by thread name (main = the JS thread), busiest first. */
  threadCpuPct: [string, number][];
  loadgenCpuPct: number | null;
  fakeCpuPct: number | null;
  machineBusyPct: number | null;
  /** Machine busy minus the three processes of the run: other people's work on the shared cores. */
  otherCpuPct: number | null;
  eventLoopP50Ms: number | null;
  eventLoopP99Ms: number | null;
  eventLoopMaxMs: number | null;
  underruns: number | null;
  overflows: number | null;
  /** Underruns inside the measured window (the counter is live on /metrics). */
  windowUnderruns: number | null;
  /** Window figures from the daemon's histograms: added latency each way, barge-in cut-off, event-loop delay. */
  uplink: WindowQuantiles | null;
  downlink: WindowQuantiles | null;
  bargeInCutoff: WindowQuantiles | null;
  bargeInStaleFrames: WindowQuantiles | null;
  eventLoop: WindowQuantiles | null;
  report: Record<string, unknown> | null;
  notes: string[];
}

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : dflt;
}

/** Extra node flags for the daemon, e.g. `--daemon-node-args "--cpu-prof --cpu-prof-dir=/tmp/prof"`. */
function daemonNodeArgs(): string[] {
  const v = arg('--daemon-node-args', '');
  return v ? v.split(/\s+/).filter(Boolean) : [];
}

/**
 * `--daemon-addon PATH`: the daemon loads this build of the addon instead of build/Release (e.g. a
 * variant built with --CDSIPAI_RAW_PCM_PORT=ON); the load generator keeps the default one.
 */
function daemonEnv(): NodeJS.ProcessEnv | undefined {
  const addon = arg('--daemon-addon', '');
  return addon ? { SIP_AI_AGENT_ADDON: path.resolve(addon) } : undefined;
}

/** With `--nice-peers`, the fake and the load generator run at nice 19, so they yield the cores to the process under test. */
export function peer(command: string, args: string[]): { command: string; args: string[] } {
  return process.argv.includes('--nice-peers') ? { command: 'nice', args: ['-n', '19', command, ...args] } : { command, args };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export function httpGet(url: string, timeoutMs = 3000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        if (body.length < 4_000_000) body += c;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET timed out [url:${url}]`)));
    req.on('error', reject);
  });
}

/** First sample of a metric (any labels), or null. */
export function metric(text: string, name: string): number | null {
  const re = new RegExp(`^${name}(?:\\{[^}]*\\})?\\s+(\\S+)`, 'm');
  const m = re.exec(text);
  return m ? Number(m[1]) : null;
}

/** Sum of every sample of a metric (all label sets). */
export function metricSum(text: string, name: string): number {
  const re = new RegExp(`^${name}(?:\\{[^}]*\\})?\\s+(\\S+)`, 'gm');
  let sum = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) sum += Number(m[1]);
  return sum;
}

/** A Prometheus histogram's buckets as (bound, cumulative count) plus its total count, or null. */
export function histogram(text: string, name: string): { bounds: number[]; cum: number[]; count: number } | null {
  const re = new RegExp(`^${name}_bucket\\{le="([^"]+)"\\}\\s+(\\S+)`, 'gm');
  const bounds: number[] = [];
  const cum: number[] = [];
  for (let m = re.exec(text); m; m = re.exec(text)) {
    if (m[1] === '+Inf') continue;
    bounds.push(Number(m[1]));
    cum.push(Number(m[2]));
  }
  const count = metric(text, `${name}_count`);
  return bounds.length && count !== null ? { bounds, cum, count } : null;
}

/** Quantiles of what a histogram gained between two scrapes, in the histogram's unit times `scale`. */
export function windowQuantiles(before: string, after: string, name: string, scale: number): WindowQuantiles | null {
  const a = histogram(before, name);
  const b = histogram(after, name);
  if (!a || !b || a.bounds.length !== b.bounds.length) return null;
  const counts: number[] = [];
  for (let i = 0; i < b.bounds.length; i++) counts.push(b.cum[i] - a.cum[i] - (i > 0 ? b.cum[i - 1] - a.cum[i - 1] : 0));
  counts.push(b.count - a.count - (b.cum[b.cum.length - 1] - a.cum[a.cum.length - 1]));
  const n = b.count - a.count;
  const bounds = b.bounds.map((x) => x * scale);
  let top = -1;
  for (let i = 0; i < counts.length; i++) if (counts[i] > 0) top = i;
  const maxBound = top < 0 ? null : top < bounds.length ? bounds[top] : Number.POSITIVE_INFINITY;
  const q = (p: number): number | null => (n > 0 ? quantileOf(bounds, counts, p, maxBound ?? Number.NaN) : null);
  return { n, p50: q(0.5), p99: q(0.99), maxBound };
}

/** A JSON-line reader over a managed child's stdout. */
export async function waitJson(proc: ManagedProcess, ev: string, timeoutMs: number, fromSeq: number): Promise<{ obj: Record<string, unknown>; seq: number }> {
  const { line } = await proc.waitForLog(new RegExp(`^\\{"ev":"${ev}"`), timeoutMs, fromSeq);
  return { obj: JSON.parse(line.text) as Record<string, unknown>, seq: line.seq + 1 };
}

function writeWav(file: string, rate: number, seconds: number): void {
  const n = rate * seconds;
  const buf = Buffer.alloc(44 + n * 2);
  buf.write('RIFF', 0);
  buf.writeUInt32LE(36 + n * 2, 4);
  buf.write('WAVEfmt ', 8);
  buf.writeUInt32LE(16, 16);
  buf.writeUInt16LE(1, 20);
  buf.writeUInt16LE(1, 22);
  buf.writeUInt32LE(rate, 24);
  buf.writeUInt32LE(rate * 2, 28);
  buf.writeUInt16LE(2, 32);
  buf.writeUInt16LE(16, 34);
  buf.write('data', 36);
  buf.writeUInt32LE(n * 2, 40);
  for (let i = 0; i < n; i++) {
    const inTone = i % (4 * rate) < rate;
    buf.writeInt16LE(inTone ? Math.round(Math.sin((2 * Math.PI * 1000 * i) / rate) * 0.3 * 32767) : 0, 44 + i * 2);
  }
  fs.writeFileSync(file, buf);
}

/** Start the fake Realtime server for a bench run (a 1 kHz reply of 1.5 s, paced 4x); resolves with its ws:// URL. */
export async function startBenchFake(lifetimeMs: number): Promise<{ fake: ManagedProcess; aiUrl: string }> {
  const fake = spawnManaged({
    name: 'fake-realtime',
    ...peer(process.execPath, [path.join(DIST, 'test/fakes/fake-realtime-cli.js'), '--port', '0', '--key', API_KEY, '--burst', '4', '--tone-hz', '1000', '--reply-ms', '1500']),
    cwd: ROOT,
    lifetimeMs,
  });
  const { match } = await fake.waitForLog(/^listening (\S+)/, 15000);
  return { fake, aiUrl: match[1]!.replace(/^http/, 'ws') };
}

/** Start the daemon on `cfg` and wait until `/healthz` answers 200 (20 s at most). */
export async function startBenchDaemon(cfg: string, adminPort: number, lifetimeMs: number, name = 'sip-ai-agent'): Promise<{ sut: ManagedProcess; admin: string }> {
  const sut = spawnManaged({ name, command: process.execPath, args: [path.join(ROOT, 'bin/sip-ai-agent.js'), '--config', cfg], cwd: ROOT, lifetimeMs });
  const admin = `http://127.0.0.1:${adminPort}`;
  for (let t = Date.now(); ; await sleep(200)) {
    if (sut.closed) throw new Error(`${name} exited: ${sut.tail()}`);
    if ((await httpGet(`${admin}/healthz`, 1000).catch(() => null))?.status === 200) return { sut, admin };
    if (Date.now() - t > 20_000) throw new Error(`${name} not healthy after 20 s`);
  }
}

/** The daemon's config for a bench run (echoing the fake's replies to the load generator's calls). */
export function agentYaml(o: {
  sipPort: number;
  adminPort: number;
  rtpStart: number;
  rtpRange: number;
  aiUrl: string;
  format: 'pcm' | 'pcmu';
  /** openai (default): the Realtime backend; openai-live: the GPT-Live backend at aiUrl. */
  provider?: 'openai' | 'openai-live';
  dir: string;
  appendMs: number;
  maxConcurrent?: number;
  invitesPerSecond?: number;
  /** ai.live.prebufferMs (openai-live only; unset: the default). */
  livePrebufferMs?: number;
  /** media.jitterBuffer settings, ms (unset: the defaults). */
  jitterBuffer?: { initMs?: number; minPrefetchMs?: number; maxPrefetchMs?: number };
}): string {
  const jb = Object.entries(o.jitterBuffer ?? {}).filter(([, v]) => v !== undefined);
  return [
    'sip:',
    '  transports:',
    `    udp: { enabled: true, bindAddress: 127.0.0.1, port: ${o.sipPort} }`,
    '    tcp: { enabled: false }',
    // One load generator places every call from one address.
    `  limits: { invitesPerSecond: ${o.invitesPerSecond ?? 1000}, inviteBurst: ${o.invitesPerSecond ?? 1000} }`,
    'accounts:',
    '  - uri: sip:agent@127.0.0.1',
    'media:',
    '  clockRate: 8000',
    '  codecs: [PCMU, PCMA]',
    `  rtpPortStart: ${o.rtpStart}`,
    `  rtpPortRange: ${o.rtpRange}`,
    ...(jb.length ? [`  jitterBuffer: { ${jb.map(([k, v]) => `${k}: ${v}`).join(', ')} }`] : []),
    'ai:',
    ...(o.provider === 'openai-live'
      ? ['  provider: openai-live', `  apiKey: ${API_KEY}`, `  appendMs: ${o.appendMs}`, `  live: { url: "${o.aiUrl}"${o.livePrebufferMs !== undefined ? `, prebufferMs: ${o.livePrebufferMs}` : ''} }`]
      : ['  provider: openai', `  url: ${o.aiUrl}`, `  apiKey: ${API_KEY}`, `  audioFormat: ${o.format}`, `  appendMs: ${o.appendMs}`, '  turnDetection: { type: server_vad }']),
    'calls:',
    '  allow: [127.0.0.1]',
    `  maxConcurrent: ${o.maxConcurrent ?? 256}`,
    '  maxDurationSec: 600',
    '  drainTimeoutSec: 0',
    'records:',
    `  dir: ${o.dir}/records`,
    '  recordAudio: false',
    'admin:',
    '  listen: 127.0.0.1',
    `  port: ${o.adminPort}`,
    'logging:',
    '  level: warn',
    '  pjsipLevel: 1',
    '  pretty: false',
    '',
  ].join('\n');
}

/** One run: start the target (and the fake), load it with N calls, measure, tear everything down. */
async function run(target: Target, calls: number, steadyS: number, tmp: string): Promise<RunResult> {
  const notes: string[] = [];
  const res: RunResult = {
    target, calls, connected: 0, failed: 0, setupMs: 0, windowS: 0, cpuPct: null, cpuPctPerCall: null,
    rssIdleMiB: null, rssMiB: null, rssPerCallMiB: null, threads: null, threadCpuPct: [], loadgenCpuPct: null, fakeCpuPct: null,
    machineBusyPct: null, otherCpuPct: null, eventLoopP50Ms: null, eventLoopP99Ms: null, eventLoopMaxMs: null, underruns: null,
    overflows: null, windowUnderruns: null, uplink: null, downlink: null, bargeInCutoff: null, bargeInStaleFrames: null, eventLoop: null, report: null, notes,
  };
  const lifetimeMs = (steadyS + 150) * 1000;
  const procs: ManagedProcess[] = [];
  let fake: ManagedProcess | undefined;
  let sut: ManagedProcess;
  let adminUrl: string | undefined;
  let targetUri: string;
  try {
    const sipPort = await freePort('udp');
    // The daemon checks that its RTP range fits calls.maxConcurrent (256, 2 ports a call).
    const rtpRange = target === 'pjsua' ? 2 * calls + 2 : 2 * 256 + 8;
    const rtpStart = await freePortRange(rtpRange);
    if (target === 'pjsua') {
      const wav = path.join(tmp, 'floor.wav');
      if (!fs.existsSync(wav)) writeWav(wav, 8000, 8);
      sut = spawnManaged({
        name: 'pjsua-floor',
        command: findPjsuaBinary(),
        args: [
          '--null-audio', '--no-vad', '--no-color', '--log-level=1', '--app-log-level=1', '--no-tcp',
          `--local-port=${sipPort}`, '--ip-addr=127.0.0.1', '--bound-addr=127.0.0.1', `--rtp-port=${rtpStart}`,
          `--max-calls=${calls}`, '--clock-rate=8000', '--snd-auto-close=-1', '--dis-codec=*', '--add-codec=PCMU', '--add-codec=PCMA',
          '--auto-answer=200', `--play-file=${wav}`, '--auto-loop',
        ],
        stdin: 'pipe',
        lifetimeMs,
      });
      procs.push(sut);
      targetUri = `sip:floor@127.0.0.1:${sipPort}`;
      const t = Date.now();
      // pjsua logs little at level 1: it is up once its SIP port is taken.
      while (Date.now() - t < 15000) {
        if (sut.closed) throw new Error(`pjsua exited [tail:${sut.tail()}]`);
        if (!(await isPortFree(sipPort, 'udp'))) break;
        await sleep(200);
      }
      await sleep(500);
    } else {
      const cli = target === 'live' ? 'test/fakes/fake-live-cli.js' : 'test/fakes/fake-realtime-cli.js';
      fake = spawnManaged({
        name: target === 'live' ? 'fake-live' : 'fake-realtime',
        ...peer(process.execPath, [path.join(DIST, cli), '--port', '0', '--key', API_KEY, '--burst', arg('--fake-burst', '4'), '--tone-hz', '1000', '--reply-ms', '1500']),
        cwd: ROOT,
        lifetimeMs,
      });
      procs.push(fake);
      const { match } = await fake.waitForLog(/^listening (\S+)/, 15000);
      const aiUrl = match[1].replace(/^http/, 'ws');
      const adminPort = await freePort('tcp');
      const cfgFile = path.join(tmp, `agent-${target}-${calls}.yaml`);
      fs.writeFileSync(cfgFile, agentYaml({
        sipPort, adminPort, rtpStart, rtpRange, aiUrl, dir: tmp, appendMs: Number(arg('--append-ms', '20')),
        ...(target === 'live' ? { format: 'pcm', provider: 'openai-live' } : { format: target }),
        ...(arg('--live-prebuffer-ms', '') !== '' ? { livePrebufferMs: Number(arg('--live-prebuffer-ms', '')) } : {}),
      }));
      sut = spawnManaged({
        name: 'sip-ai-agent',
        command: process.execPath,
        args: [...daemonNodeArgs(), path.join(ROOT, 'bin/sip-ai-agent.js'), '--config', cfgFile],
        cwd: ROOT,
        env: daemonEnv(),
        lifetimeMs,
        // Room for a clean exit on SIGTERM (drainTimeoutSec is 0), so a CPU profile gets written.
        killGraceMs: 8000,
      });
      procs.push(sut);
      adminUrl = `http://127.0.0.1:${adminPort}`;
      targetUri = `sip:agent@127.0.0.1:${sipPort}`;
      const t = Date.now();
      for (;;) {
        if (sut.closed) throw new Error(`daemon exited [tail:${sut.tail()}]`);
        const r = await httpGet(`${adminUrl}/healthz`, 1000).catch(() => null);
        if (r && r.status === 200) break;
        if (Date.now() - t > 20000) throw new Error(`daemon not healthy after 20 s [status:${r?.status ?? 'none'}]`);
        await sleep(250);
      }
    }
    res.rssIdleMiB = rssMiB(sut.pid);

    const loadRtp = await freePortRange(2 * calls + 20);
    const loadgen = spawnManaged({
      name: 'loadgen',
      ...peer(process.execPath, [
        path.join(DIST, 'bench/capacity/loadgen.js'), '--target', targetUri, '--calls', String(calls), '--rtp-start', String(loadRtp),
        '--barge-every', arg('--barge-every', '3'), '--spacing-ms', arg('--spacing-ms', '25'),
      ]),
      cwd: ROOT,
      stdin: 'pipe',
      lifetimeMs,
    });
    procs.push(loadgen);
    const ready = await waitJson(loadgen, 'ready', 90000, 0);
    res.connected = Number(ready.obj.connected);
    res.failed = Number(ready.obj.failed);
    res.setupMs = Number(ready.obj.setupMs);
    const fails = ready.obj.failures as string[];
    if (fails.length) notes.push(`setup failures: ${fails.join('; ')}`);
    // Let every call's first turn (opening reply, first burst) settle before measuring.
    await sleep(5000);

    const metrics0 = adminUrl ? (await httpGet(`${adminUrl}/metrics`).catch(() => null))?.body ?? null : null;
    loadgen.write('mark\n');
    const marked = await waitJson(loadgen, 'marked', 10000, ready.seq);
    const s0: (CpuSample | null)[] = [cpuSample(sut.pid), cpuSample(loadgen.pid), fake ? cpuSample(fake.pid) : null];
    const m0 = machineSample();
    const t0 = threadCpu(sut.pid);
    let rssSum = 0;
    let rssN = 0;
    const endAt = Date.now() + steadyS * 1000;
    while (Date.now() < endAt) {
      await sleep(1000);
      const r = rssMiB(sut.pid);
      if (r !== null) {
        rssSum += r;
        rssN++;
      }
    }
    const s1 = [cpuSample(sut.pid), cpuSample(loadgen.pid), fake ? cpuSample(fake.pid) : null];
    const m1 = machineSample();
    const t1 = threadCpu(sut.pid);
    res.windowS = s0[0] && s1[0] ? s1[0].atSec - s0[0].atSec : steadyS;
    res.cpuPct = cpuPercent(s0[0], s1[0]);
    res.loadgenCpuPct = cpuPercent(s0[1], s1[1]);
    res.fakeCpuPct = cpuPercent(s0[2], s1[2]);
    res.machineBusyPct = ((m1.busy - m0.busy) / Math.max(1, m1.total - m0.total)) * 100 * os.cpus().length;
    res.otherCpuPct = res.machineBusyPct - (res.cpuPct ?? 0) - (res.loadgenCpuPct ?? 0) - (res.fakeCpuPct ?? 0);
    res.rssMiB = rssN ? rssSum / rssN : null;
    res.threads = threadCount(sut.pid);
    res.threadCpuPct = threadCpuPercent(t0, t1, res.windowS).slice(0, 6).map(([n, v]) => [n, Math.round(v * 10) / 10]);
    if (adminUrl) {
      const m = await httpGet(`${adminUrl}/metrics`).catch(() => null);
      if (m) {
        const ms = (v: number | null): number | null => (v === null ? null : v * 1000);
        res.eventLoopP50Ms = ms(metric(m.body, 'nodejs_eventloop_lag_p50_seconds'));
        res.eventLoopP99Ms = ms(metric(m.body, 'nodejs_eventloop_lag_p99_seconds'));
        res.eventLoopMaxMs = ms(metric(m.body, 'nodejs_eventloop_lag_max_seconds'));
        if (metrics0) {
          const u0 = metric(metrics0, 'sip_ai_agent_audio_underruns_total');
          const u1 = metric(m.body, 'sip_ai_agent_audio_underruns_total');
          res.windowUnderruns = u0 !== null && u1 !== null ? u1 - u0 : null;
          const w = (name: string, scale = 1000): WindowQuantiles | null => windowQuantiles(metrics0, m.body, `sip_ai_agent_${name}`, scale);
          res.uplink = w('audio_uplink_latency_seconds');
          res.downlink = w('audio_downlink_latency_seconds');
          res.bargeInCutoff = w('barge_in_cutoff_seconds');
          res.bargeInStaleFrames = w('barge_in_stale_frames', 1);
          res.eventLoop = w('event_loop_delay_seconds');
        }
      }
    }
    loadgen.write('report\n');
    const rep = await waitJson(loadgen, 'report', 10000, marked.seq);
    res.report = rep.obj;
    loadgen.write('hangup\n');
    await waitJson(loadgen, 'done', 30000, rep.seq).catch(() => notes.push('load generator did not report done'));
    if (adminUrl) {
      // Underruns and overflows reach /metrics when each call ends.
      await sleep(2000);
      const m = await httpGet(`${adminUrl}/metrics`).catch(() => null);
      if (m) {
        res.underruns = metric(m.body, 'sip_ai_agent_audio_underruns_total');
        res.overflows = metric(m.body, 'sip_ai_agent_audio_overflows_total');
        const ended = metricSum(m.body, 'sip_ai_agent_calls_total');
        if (ended < res.connected) notes.push(`only ${ended} of ${res.connected} calls ended in /metrics`);
        const errs = metricSum(m.body, 'sip_ai_agent_ai_errors_total');
        if (errs > 0) notes.push(`ai errors: ${errs}`);
      }
      const logFile = arg('--daemon-log', '');
      if (logFile) fs.writeFileSync(`${logFile}.${target}-${calls}`, sut.logText());
      const warnLines = sut.grep(/"level":(40|50|60)/);
      if (warnLines.length) notes.push(`daemon warn+ lines: ${warnLines.length}; first: ${warnLines[0].text.slice(0, 300)}`);
    }
    if (res.cpuPct !== null) res.cpuPctPerCall = res.cpuPct / Math.max(1, res.connected);
    if (res.rssMiB !== null && res.rssIdleMiB !== null) res.rssPerCallMiB = (res.rssMiB - res.rssIdleMiB) / Math.max(1, res.connected);
  } catch (err) {
    notes.push(`run failed: ${err instanceof Error ? err.message.slice(0, 500) : String(err)}`);
  } finally {
    for (const p of procs.reverse()) await p.kill();
  }
  return res;
}

/** prom-client's event-loop gauges are monitorEventLoopDelay intervals, which include its 10 ms resolution. */
const EL_RESOLUTION_MS = 10;

function el(v: number | null): number | null {
  return v === null ? null : Math.max(0, v - EL_RESOLUTION_MS);
}

function f(v: number | null | undefined, digits = 1): string {
  return v === null || v === undefined || Number.isNaN(v) ? '-' : v.toFixed(digits);
}

/** Markdown tables of the results. */
export function table(results: RunResult[]): string {
  const lines: string[] = [];
  lines.push('| target | N | connected | CPU % | CPU %/call | RSS MiB (idle) | RSS growth MiB/call | loadgen CPU % | fake CPU % | others CPU % | machine busy % (of 200) | EL delay p50/p99/max ms | underruns | overflows | rx frames / expected | replies | gap frames (calls) | cut-off replies joined (frames) | loadgen rx drops | reply latency p50/p95 ms |');
  lines.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---|---:|---|---|---:|---|');
  for (const r of results) {
    const rep = r.report ?? {};
    const n = (k: string): number | null => (typeof rep[k] === 'number' ? (rep[k] as number) : null);
    lines.push(
      `| ${r.target} | ${r.calls} | ${r.connected} | ${f(r.cpuPct)} | ${f(r.cpuPctPerCall, 2)} | ${f(r.rssMiB)} (${f(r.rssIdleMiB)}) | ${f(r.rssPerCallMiB, 2)} | ${f(r.loadgenCpuPct)} | ${f(r.fakeCpuPct)} | ${f(r.otherCpuPct)} | ${f(r.machineBusyPct)} | ${f(el(r.eventLoopP50Ms))}/${f(el(r.eventLoopP99Ms))}/${f(el(r.eventLoopMaxMs))} | ${f(r.underruns, 0)} | ${f(r.overflows, 0)} | ${f(n('rxFrames'), 0)} / ${f(n('rxFramesExpected'), 0)} | ${f(n('replies'), 0)} | ${f(n('gapFrames'), 0)} (${f(n('callsWithGaps'), 0)}) | ${f(n('cutJoins'), 0)} (${f(n('cutJoinFrames'), 0)}) | ${f(n('ownRxDroppedSamples'), 0)} | ${f(n('replyLatencyP50Ms'), 0)}/${f(n('replyLatencyP95Ms'), 0)} |`,
    );
  }
  return lines.join('\n');
}

/** Figures 1, 2 and 6: added latency each way, barge-in cut-off, event-loop delay (daemon runs only). */
export function latencyTable(results: RunResult[]): string {
  const q = (w: WindowQuantiles | null, digits = 1): string =>
    w && w.n > 0 ? `${f(w.p50, digits)} / ${f(w.p99, digits)} / ${w.maxBound === Number.POSITIVE_INFINITY ? 'over' : f(w.maxBound, digits)} (${w.n})` : '-';
  const lines = [
    '| target | N | underruns in window | uplink ms p50 / p99 / max<= (frames) | downlink ms p50 / p99 / max<= (arrivals) | barge-in cut-off ms p50 / p99 / max<= (barge-ins) | stale frames p50 / p99 / max<= | event-loop delay ms p50 / p99 / max<= (samples) | barges said |',
    '|---|---:|---:|---|---|---|---|---|---:|',
  ];
  for (const r of results) {
    if (r.target === 'pjsua') continue;
    const barges = typeof r.report?.barges === 'number' ? String(r.report.barges) : '-';
    lines.push(`| ${r.target} | ${r.calls} | ${f(r.windowUnderruns, 0)} | ${q(r.uplink)} | ${q(r.downlink)} | ${q(r.bargeInCutoff)} | ${q(r.bargeInStaleFrames, 2)} | ${q(r.eventLoop)} | ${barges} |`);
  }
  return lines.join('\n');
}

/** Ours / pjsua CPU per call at each N. */
export function ratios(results: RunResult[]): string {
  const lines = ['| N | pcm / pjsua CPU per call | pcmu / pjsua CPU per call | pcm / pjsua RSS | pcmu / pjsua RSS |', '|---:|---:|---:|---:|---:|'];
  const ns = [...new Set(results.map((r) => r.calls))];
  for (const n of ns) {
    const get = (t: Target): RunResult | undefined => results.find((r) => r.calls === n && r.target === t);
    const floor = get('pjsua');
    const ratio = (t: Target, k: 'cpuPctPerCall' | 'rssMiB'): string => {
      const a = get(t)?.[k];
      const b = floor?.[k];
      return a != null && b != null && b > 0 ? `${(a / b).toFixed(2)}x` : '-';
    };
    lines.push(`| ${n} | ${ratio('pcm', 'cpuPctPerCall')} | ${ratio('pcmu', 'cpuPctPerCall')} | ${ratio('pcm', 'rssMiB')} | ${ratio('pcmu', 'rssMiB')} |`);
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  const ns = arg('--n', '10,50,100,200').split(',').map(Number);
  const targets = arg('--configs', 'pjsua,pcm,pcmu').split(',') as Target[];
  const steadyS = Number(arg('--steady-s', '20'));
  const json = process.argv.includes('--json');
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'capacity-'));
  const results: RunResult[] = [];
  const stop = (): void => {
    void killAllProcesses().finally(() => process.exit(130));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    for (const n of ns) {
      for (const t of targets) {
        const r = await run(t, n, steadyS, tmp);
        results.push(r);
        process.stdout.write(`${JSON.stringify(r)}\n`);
        await sleep(1000);
      }
    }
  } finally {
    await killAllProcesses();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  if (!json) process.stdout.write(`\n${table(results)}\n\n${ratios(results)}\n\n${latencyTable(results)}\n`);
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`capacity: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  });
}
