/**
 * Flood benchmark: while the daemon carries a full load of admitted calls (the capacity load
 * generator: speech bursts, the fake Realtime server's replies), an INVITE flood at 10x its call
 * capacity per second arrives for 60 s, from two sources at once:
 *   - a stranger (127.0.0.2), never admitted: 403 up to its rate limit, then no answer;
 *   - the admitted source (127.0.0.1), over capacity: 486 Busy Here up to its rate limit, then
 *     503 with Retry-After.
 * Reported: what the flood got back (by status), the refusals /metrics counted by reason, the
 * admitted calls' audio during the flood (underruns, gaps inside replies, frames heard against the
 * clock), the daemon's CPU and RSS (baseline with the calls up, peak during the flood, and a
 * minute after it), record files written (only the admitted calls may have one), and the
 * event-loop delay over the flood.
 *
 * Run:   npx tsc -p tsconfig.json && node dist/bench/flood.js [--calls 10] [--flood-s 60] [--factor 10] [--after-s 60]
 */
import * as dgram from 'node:dgram';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { spawnManaged, killAllProcesses, type ManagedProcess } from '../test/helpers/proc';
import { freePort, freePortRange } from '../test/helpers/ports';
import { DIST, ROOT, agentYaml, startBenchDaemon, startBenchFake, httpGet, metric, peer, sleep, waitJson, windowQuantiles } from './capacity';
import { cpuPercent, cpuSample, rssMiB } from './capacity/procstat';

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
}

function refusedByReason(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^sip_ai_agent_refused_total\{reason="([a-z_]+)"\} (\S+)$/gm)) out[m[1]!] = Number(m[2]);
  return out;
}

/** A source of INVITEs at `rate` per second from `host`, counting the answers by status. */
class InviteFlood {
  readonly statuses: Record<string, number> = {};
  sent = 0;
  readonly #sock: dgram.Socket;
  readonly #host: string;
  #timer: NodeJS.Timeout | undefined;

  private constructor(sock: dgram.Socket, host: string) {
    this.#sock = sock;
    this.#host = host;
    sock.on('message', (b) => {
      const s = /^SIP\/2\.0 (\d{3})/.exec(b.subarray(0, 16).toString('latin1'))?.[1];
      // Count final answers once per INVITE (a 100 Trying is provisional).
      if (s && s !== '100') this.statuses[s] = (this.statuses[s] ?? 0) + 1;
    });
  }

  static async open(host: string): Promise<InviteFlood> {
    const sock = dgram.createSocket('udp4');
    await new Promise<void>((r) => sock.bind(0, host, () => r()));
    return new InviteFlood(sock, host);
  }

  start(port: number, rate: number): void {
    const local = this.#sock.address();
    const tickMs = 10;
    let owed = 0;
    this.#timer = setInterval(() => {
      owed += (rate * tickMs) / 1000;
      for (; owed >= 1; owed--) {
        const callId = `${randomBytes(8).toString('hex')}@${this.#host}`;
        const branch = `z9hG4bK${randomBytes(6).toString('hex')}`;
        const sdp = `v=0\r\no=f 1 1 IN IP4 ${this.#host}\r\ns=f\r\nc=IN IP4 ${this.#host}\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n`;
        const msg =
          `INVITE sip:agent@127.0.0.1:${port} SIP/2.0\r\nVia: SIP/2.0/UDP ${local.address}:${local.port};branch=${branch};rport\r\nMax-Forwards: 70\r\n` +
          `From: <sip:flood@${this.#host}>;tag=${randomBytes(4).toString('hex')}\r\nTo: <sip:agent@127.0.0.1>\r\nCall-ID: ${callId}\r\nCSeq: 1 INVITE\r\n` +
          `Contact: <sip:flood@${local.address}:${local.port}>\r\nContent-Type: application/sdp\r\nContent-Length: ${sdp.length}\r\n\r\n${sdp}`;
        this.#sock.send(msg, port, '127.0.0.1');
        this.sent++;
      }
    }, tickMs);
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
  }

  close(): void {
    this.stop();
    this.#sock.close();
  }
}

function countRecords(dir: string): number {
  if (!fs.existsSync(dir)) return 0;
  let n = 0;
  for (const day of fs.readdirSync(dir)) {
    const d = path.join(dir, day);
    if (fs.statSync(d).isDirectory()) n += fs.readdirSync(d).filter((f) => f.endsWith('.json')).length;
  }
  return n;
}

async function main(): Promise<void> {
  const calls = arg('calls', 10);
  const floodS = arg('flood-s', 60);
  const factor = arg('factor', 10);
  const afterS = arg('after-s', 60);
  const rate = calls * factor;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'flood-'));
  const procs: ManagedProcess[] = [];
  const lifetimeMs = (floodS + afterS + 180) * 1000;
  const stop = (): void => void killAllProcesses().finally(() => process.exit(130));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const strangers = await InviteFlood.open('127.0.0.2');
  const admitted = await InviteFlood.open('127.0.0.1');
  try {
    const { fake, aiUrl } = await startBenchFake(lifetimeMs);
    procs.push(fake);
    const sipPort = await freePort('udp');
    const adminPort = await freePort('tcp');
    const rtpRange = 2 * calls + 8;
    const rtpStart = await freePortRange(rtpRange);
    const cfg = path.join(tmp, 'agent.yaml');
    // The shipped rate limits (20 INVITEs/s, burst 40): the flood meets them as it would in the field.
    fs.writeFileSync(
      cfg,
      agentYaml({ sipPort, adminPort, rtpStart, rtpRange, aiUrl, format: 'pcmu', dir: tmp, appendMs: 20, maxConcurrent: calls, invitesPerSecond: 20 }).replace(
        /inviteBurst: \d+/,
        'inviteBurst: 40',
      ),
    );
    const { sut, admin } = await startBenchDaemon(cfg, adminPort, lifetimeMs);
    procs.push(sut);
    const rssIdle = rssMiB(sut.pid);
    const loadRtp = await freePortRange(2 * calls + 20);
    const loadgen = spawnManaged({
      name: 'loadgen',
      ...peer(process.execPath, [path.join(DIST, 'bench/capacity/loadgen.js'), '--target', `sip:agent@127.0.0.1:${sipPort}`, '--calls', String(calls), '--rtp-start', String(loadRtp), '--barge-every', '0']),
      cwd: ROOT,
      stdin: 'pipe',
      lifetimeMs,
    });
    procs.push(loadgen);
    const ready = await waitJson(loadgen, 'ready', 90000, 0);
    await sleep(5000);
    const rssBase = rssMiB(sut.pid);
    const recordsBefore = countRecords(path.join(tmp, 'records'));
    const m0 = (await httpGet(`${admin}/metrics`)).body;
    loadgen.write('mark\n');
    const marked = await waitJson(loadgen, 'marked', 10000, ready.seq);
    const c0 = cpuSample(sut.pid);
    strangers.start(sipPort, rate);
    admitted.start(sipPort, rate);
    let rssPeak = rssBase ?? 0;
    for (let end = Date.now() + floodS * 1000; Date.now() < end; ) {
      await sleep(1000);
      rssPeak = Math.max(rssPeak, rssMiB(sut.pid) ?? 0);
    }
    strangers.stop();
    admitted.stop();
    const c1 = cpuSample(sut.pid);
    const m1 = (await httpGet(`${admin}/metrics`)).body;
    loadgen.write('report\n');
    const rep = (await waitJson(loadgen, 'report', 10000, marked.seq)).obj;
    // A minute later: memory settles, the flood's traces are gone.
    for (let end = Date.now() + afterS * 1000; Date.now() < end; ) {
      await sleep(1000);
      rssPeak = Math.max(rssPeak, rssMiB(sut.pid) ?? 0);
    }
    const rssAfter = rssMiB(sut.pid);
    const m2 = (await httpGet(`${admin}/metrics`)).body;
    loadgen.write('hangup\n');
    await waitJson(loadgen, 'done', 30000, marked.seq).catch(() => undefined);
    await sleep(2000);
    const recordsAfter = countRecords(path.join(tmp, 'records'));
    const u0 = metric(m0, 'sip_ai_agent_audio_underruns_total') ?? 0;
    const u1 = metric(m1, 'sip_ai_agent_audio_underruns_total') ?? 0;
    const el = windowQuantiles(m0, m1, 'sip_ai_agent_event_loop_delay_seconds', 1000);
    const up = windowQuantiles(m0, m1, 'sip_ai_agent_audio_uplink_latency_seconds', 1000);
    const res = {
      calls,
      floodRatePerSource: rate,
      floodS,
      connected: ready.obj.connected,
      sent: { stranger: strangers.sent, admitted: admitted.sent },
      answers: { stranger: strangers.statuses, admitted: admitted.statuses },
      refused: refusedByReason(m2),
      underrunsDuringFlood: u1 - u0,
      loadgen: { callsUp: rep.callsUp, replies: rep.replies, gapEvents: rep.gapEvents, rxFrames: rep.rxFrames, rxFramesExpected: rep.rxFramesExpected, ownTxUnderruns: rep.ownTxUnderruns },
      cpuPctDuringFlood: cpuPercent(c0, c1),
      rssMiB: { idle: rssIdle, withCalls: rssBase, peak: rssPeak, minuteAfter: rssAfter, afterVsBaselinePct: rssBase && rssAfter ? ((rssAfter - rssBase) / rssBase) * 100 : null },
      records: { before: recordsBefore, after: recordsAfter, admittedCalls: calls },
      eventLoopDelayMs: el,
      uplinkLatencyMs: up,
      daemonAlive: !sut.closed,
    };
    process.stdout.write(`${JSON.stringify(res, null, 2)}\n`);
  } finally {
    strangers.close();
    admitted.close();
    await killAllProcesses();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`flood: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  });
}
