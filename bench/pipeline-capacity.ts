/**
 * Pipeline capacity: N concurrent calls through `ai.provider: pipeline` (energy turn-taking, or
 * the Silero VAD with --vad silero), the fake speech-to-text, chat and speech services in their own
 * process, and the capacity load generator (each call speaks a 1 s burst every 4 s and listens).
 * Reported over a steady window: the daemon's CPU (% of one core, and per call), RSS, threads,
 * event-loop delay, underruns, the replies the callers heard and the gaps inside them; the
 * fake's and the load generator's CPU beside it.
 *
 * Run:   npx tsc -p tsconfig.json && node dist/bench/pipeline-capacity.js [--calls 100] [--steady-s 20] [--vad energy|silero]
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePort, freePortRange } from '../test/helpers/ports';
import { killAllProcesses, spawnManaged } from '../test/helpers/proc';
import { DIST, ROOT, httpGet, metric, peer, sleep, startBenchDaemon, waitJson, windowQuantiles } from './capacity';
import { cpuPercent, cpuSample, rssMiB, threadCount } from './capacity/procstat';

const KEY = 'sk-bench-pipeline-capacity-0123456789';

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : dflt;
}

async function main(): Promise<void> {
  const calls = Number(arg('calls', '100'));
  const steadyS = Number(arg('steady-s', '20'));
  const vad = arg('vad', 'energy');
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pipeline-capacity-'));
  const lifetimeMs = (steadyS + 180) * 1000;
  try {
    const fake = spawnManaged({
      name: 'fake-openai-http',
      ...peer(process.execPath, [path.join(DIST, 'test/fakes/fake-openai-http-cli.js'), '--port', '0', '--key', KEY]),
      cwd: ROOT,
      lifetimeMs,
    });
    const { match } = await fake.waitForLog(/^listening (\S+)/, 15_000);
    const base = `${match[1]}/v1`;
    const sipPort = await freePort('udp');
    const adminPort = await freePort('tcp');
    const rtpStart = await freePortRange(2 * calls + 20);
    const cfg = path.join(tmp, 'agent.yaml');
    fs.writeFileSync(
      cfg,
      [
        'sip:',
        `  transports: { udp: { enabled: true, bindAddress: 127.0.0.1, port: ${sipPort} }, tcp: { enabled: false } }`,
        '  limits: { invitesPerSecond: 1000, inviteBurst: 1000 }',
        'accounts: [ { uri: "sip:agent@127.0.0.1" } ]',
        `media: { clockRate: 8000, codecs: [PCMU, PCMA], rtpPortStart: ${rtpStart}, rtpPortRange: ${2 * calls + 20} }`,
        'ai:',
        '  provider: pipeline',
        `  apiKey: ${KEY}`,
        '  pipeline:',
        `    vad: { engine: ${vad}, silenceMs: 500 }`,
        `    stt: { url: "${base}", model: whisper-1 }`,
        `    chat: { url: "${base}", model: gpt-4.1-mini }`,
        `    tts: { url: "${base}", model: gpt-4o-mini-tts, voice: marin }`,
        `calls: { allow: [127.0.0.1], maxConcurrent: ${Math.max(calls, 8)}, maxDurationSec: 600, drainTimeoutSec: 0 }`,
        `records: { dir: ${tmp}/records, recordAudio: false }`,
        `admin: { listen: 127.0.0.1, port: ${adminPort} }`,
        'logging: { level: warn, pjsipLevel: 1, pretty: false }',
        '',
      ].join('\n'),
    );
    const { sut, admin } = await startBenchDaemon(cfg, adminPort, lifetimeMs);
    const rtp = await freePortRange(2 * calls + 20);
    const gen = spawnManaged({
      name: 'loadgen',
      ...peer(process.execPath, [path.join(DIST, 'bench/capacity/loadgen.js'), '--target', `sip:agent@127.0.0.1:${sipPort}`, '--calls', String(calls), '--rtp-start', String(rtp), '--barge-every', '0']),
      cwd: ROOT,
      stdin: 'pipe',
      lifetimeMs,
    });
    const ready = await waitJson(gen, 'ready', 120_000, 0);
    await sleep(8000);
    const m0 = (await httpGet(`${admin}/metrics`)).body;
    gen.write('mark\n');
    const marked = await waitJson(gen, 'marked', 10_000, ready.seq);
    const pids = { daemon: sut.pid, fake: fake.pid, loadgen: gen.pid };
    const c0 = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, cpuSample(pid)]));
    await sleep(steadyS * 1000);
    const c1 = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, cpuSample(pid)]));
    const m1 = (await httpGet(`${admin}/metrics`)).body;
    gen.write('report\n');
    const rep = await waitJson(gen, 'report', 10_000, marked.seq);
    const cpu = Object.fromEntries(Object.keys(pids).map((k) => [k, cpuPercent(c0[k]!, c1[k]!)]));
    const under = (m: string): number => metric(m, 'sip_ai_agent_audio_underruns_total') ?? 0;
    const daemonCpu = cpu.daemon ?? null;
    process.stdout.write(
      `${JSON.stringify(
        {
          calls,
          vad,
          steadyS,
          cpuPct: cpu,
          daemonCpuPctPerCall: daemonCpu === null ? null : Math.round((daemonCpu / calls) * 1000) / 1000,
          daemonRssMiB: rssMiB(sut.pid),
          daemonThreads: threadCount(sut.pid),
          eventLoop: windowQuantiles(m0, m1, 'sip_ai_agent_event_loop_delay_seconds', 1000),
          underruns: under(m1) - under(m0),
          heard: rep.obj,
        },
        null,
        2,
      )}\n`,
    );
  } finally {
    await killAllProcesses();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`pipeline-capacity: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  });
}
