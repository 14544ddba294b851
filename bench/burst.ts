/**
 * Burst benchmark: N calls are up and talking (capacity load generator A), then a second load
 * generator (B) places M more calls at a fixed rate. The window is the burst: from B's first
 * INVITE until all of B's calls are up. Reported for that window, from the daemon's own /metrics
 * histograms (differenced): the audio it adds each way (uplink: caller RTP packet in, the jitter
 * buffer's delay included -> its append written to the AI socket; the jitter buffer on its own;
 * downlink: model audio in -> first sample sent), the event-loop delay, and underruns; and A's
 * view (gaps inside replies). The same figures for a
 * quiet window of the same length before the burst are the baseline.
 *
 * With `--capture` the same windows are also measured outside the agent, from a packet capture of
 * the loopback interface (tcpdump, run as root): each caller RTP packet of the established calls
 * in -> the WebSocket append carrying its last sample out (bench/capture/uplink.ts).
 *
 * Run:   npx tsc -p tsconfig.json && node dist/bench/burst.js [--up 50] [--burst 150] [--rate 100] [--capture | --capture-file F.pcap]
 *          [--jb-init-ms N] [--jb-min-ms N] [--jb-max-ms N]   (media.jitterBuffer for the run)
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnManaged, killAllProcesses, type ManagedProcess } from '../test/helpers/proc';
import { readPcap } from './capture/pcap';
import { uplinkFromCapture, type UplinkCaptureReport } from './capture/uplink';
import { freePort, freePortRange } from '../test/helpers/ports';
import { DIST, ROOT, agentYaml, startBenchDaemon, startBenchFake, httpGet, metric, peer, sleep, waitJson, windowQuantiles, type WindowQuantiles } from './capacity';

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
}

interface Window {
  ms: number;
  uplink: WindowQuantiles | null;
  jitterBuffer: WindowQuantiles | null;
  downlink: WindowQuantiles | null;
  eventLoop: WindowQuantiles | null;
  underruns: number | null;
  gapEvents: unknown;
}

async function main(): Promise<void> {
  const up = arg('up', 50);
  const burst = arg('burst', 150);
  const rate = arg('rate', 100);
  const captureAt = process.argv.indexOf('--capture-file');
  const capture = process.argv.includes('--capture') || captureAt >= 0;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'burst-'));
  const procs: ManagedProcess[] = [];
  const lifetimeMs = 300_000;
  try {
    const { fake, aiUrl } = await startBenchFake(lifetimeMs);
    procs.push(fake);
    const sipPort = await freePort('udp');
    const adminPort = await freePort('tcp');
    const rtpRange = 2 * 256 + 8;
    const rtpStart = await freePortRange(rtpRange);
    const cfg = path.join(tmp, 'agent.yaml');
    const opt = (name: string): number | undefined => (process.argv.includes(`--${name}`) ? arg(name, NaN) : undefined);
    const jitterBuffer = { initMs: opt('jb-init-ms'), minPrefetchMs: opt('jb-min-ms'), maxPrefetchMs: opt('jb-max-ms') };
    fs.writeFileSync(cfg, agentYaml({ sipPort, adminPort, rtpStart, rtpRange, aiUrl, format: 'pcm', dir: tmp, appendMs: 20, jitterBuffer }));
    const { sut, admin } = await startBenchDaemon(cfg, adminPort, lifetimeMs);
    procs.push(sut);
    const target = `sip:agent@127.0.0.1:${sipPort}`;
    const gen = async (name: string, calls: number, spacingMs: number, toneStepHz = 0): Promise<ManagedProcess & { rtp: number }> => {
      const rtp = await freePortRange(2 * calls + 20);
      const p = spawnManaged({
        name,
        ...peer(process.execPath, [
          path.join(DIST, 'bench/capacity/loadgen.js'),
          ...['--target', target, '--calls', String(calls), '--rtp-start', String(rtp), '--barge-every', '0'],
          ...['--spacing-ms', String(spacingMs), '--tone-step-hz', String(toneStepHz)],
        ]),
        cwd: ROOT,
        stdin: 'pipe',
        lifetimeMs,
      });
      procs.push(p);
      return Object.assign(p, { rtp });
    };
    // Established calls each speak at their own frequency, so a capture can tell them apart.
    const a = await gen('loadgen-up', up, 25, capture ? Math.min(8, Math.floor(3000 / up)) : 0);
    const readyA = await waitJson(a, 'ready', 90000, 0);
    await sleep(5000);
    let seq = readyA.seq;
    const window = async (run: () => Promise<number>): Promise<Window> => {
      const m0 = (await httpGet(`${admin}/metrics`)).body;
      a.write('mark\n');
      const marked = await waitJson(a, 'marked', 10000, seq);
      const ms = await run();
      const m1 = (await httpGet(`${admin}/metrics`)).body;
      a.write('report\n');
      const rep = await waitJson(a, 'report', 10000, marked.seq);
      seq = rep.seq;
      const u = (m: string): number => metric(m, 'sip_ai_agent_audio_underruns_total') ?? 0;
      return {
        ms,
        uplink: windowQuantiles(m0, m1, 'sip_ai_agent_audio_uplink_latency_seconds', 1000),
        jitterBuffer: windowQuantiles(m0, m1, 'sip_ai_agent_audio_jitter_buffer_seconds', 1000),
        downlink: windowQuantiles(m0, m1, 'sip_ai_agent_audio_downlink_latency_seconds', 1000),
        eventLoop: windowQuantiles(m0, m1, 'sip_ai_agent_event_loop_delay_seconds', 1000),
        underruns: u(m1) - u(m0),
        gapEvents: rep.obj.gapEvents,
      };
    };
    const burstMs = Math.round((burst * 1000) / rate) + 1000;
    const pcap = captureAt >= 0 ? path.resolve(process.argv[captureAt + 1]!) : path.join(tmp, 'burst.pcap');
    const aiPort = Number(new URL(aiUrl).port);
    const dump = capture
      ? await startCapture(pcap, `(udp and dst portrange ${rtpStart}-${rtpStart + rtpRange} and src portrange ${a.rtp}-${a.rtp + 2 * up + 20}) or (tcp and dst port ${aiPort})`, lifetimeMs)
      : undefined;
    if (dump) {
      procs.push(dump);
      // Every established call speaks once every 4 s: capture a whole period before the windows,
      // so each stream can be paired with its connection.
      await sleep(5000);
    }
    const spans: Record<string, [number, number]> = {};
    const quiet = await window(async () => {
      const t0 = Date.now();
      await sleep(burstMs);
      spans.quiet = [t0, Date.now()];
      return burstMs;
    });
    const busy = await window(async () => {
      const t0 = Date.now();
      const b = await gen('loadgen-burst', burst, 1000 / rate);
      await waitJson(b, 'ready', 120000, 0);
      spans.busy = [t0, Date.now()];
      return Date.now() - t0;
    });
    let captured: (UplinkCaptureReport & { droppedByKernel: number | null }) | undefined;
    if (dump) {
      await sleep(1500);
      await dump.kill(10000); // tcpdump ends the file and prints its counts on SIGTERM
      const dropped = /(\d+) packets? dropped by kernel/.exec(dump.logText())?.[1];
      const { packets } = readPcap(fs.readFileSync(pcap));
      const report = uplinkFromCapture(packets, { rtpPorts: [rtpStart, rtpStart + rtpRange], callerPorts: [a.rtp, a.rtp + 2 * up + 20], aiPort, windows: spans });
      captured = { ...report, droppedByKernel: dropped === undefined ? null : Number(dropped) };
    }
    process.stdout.write(`${JSON.stringify({ up, burst, rate, quiet, busy, capture: captured }, null, 2)}\n`);
  } finally {
    await killAllProcesses();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`burst: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  });
}

/** tcpdump on the loopback interface into `file`, started once it says it is listening. */
async function startCapture(file: string, filter: string, lifetimeMs: number): Promise<ManagedProcess> {
  const p = spawnManaged({ name: 'tcpdump', command: 'tcpdump', args: ['-i', 'lo', '-n', '-s', '0', '-B', '65536', '-w', file, filter], lifetimeMs });
  await p.waitForLog(/listening on lo/, 10000);
  return p;
}
