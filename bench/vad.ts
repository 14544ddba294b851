/**
 * VAD cost: N concurrent calls, each a conversation in which the caller speaks 40 % of the time
 * (the 3 s test utterance, then 4.5 s of line noise at -55 dBFS while the agent talks, calls out
 * of phase), fed in real time, 20 ms frames for every call per tick as the audio wake delivers
 * them, after a warm-up (30 s of one call as fast as the model answers, then `--warm` seconds in
 * real time, neither measured). Reports the VAD's own time (the JS thread's push(), timed around each
 * tick's pushes, plus the worker's time per model run, timed in the worker) as % of a core per call,
 * and the whole process's CPU above the same tick loop without VAD (noisier: it also holds message
 * passing, timers and GC); with the energy gate, without it, and the energy backend alone; and
 * calls whose caller never speaks, with and without the gate.
 *
 * Run:   npx tsc -p tsconfig.json && node dist/bench/vad.js [--seconds 10] [--warm 3] [--calls 1,20,100]
 * While some other module does not type-check, compile just this file and what it imports:
 *        npx tsc --outDir dist --rootDir . --target ES2022 --module commonjs --esModuleInterop \
 *          --skipLibCheck --types node bench/vad.ts && node dist/bench/vad.js
 */
import * as path from 'node:path';
import { loadWavFile } from '../src/audio/wav';
import { createVad, type CallVad, type VadOptions, type VadStats } from '../src/audio/vad';

const TICK_MS = 20;
/** The VAD tests' utterance (run from the repository's top folder). */
const UTTERANCE = path.resolve('test', 'unit', 'vad', 'fixtures', 'utterance-16k.wav');
/** What the product aims at: 0.05 % of a core per call over a conversation. */
const TARGET_PERCENT_PER_CALL = 0.05;

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : dflt;
}

/** One conversation cycle at `rate`: the utterance on line noise, then 4.5 s of line noise alone (`silent`: noise only). */
function conversation(rate: number, silent = false): Int16Array {
  const speech = loadWavFile(UTTERANCE, rate).pcm;
  const out = new Int16Array(speech.length + Math.round(rate * 4.5));
  if (!silent) out.set(speech);
  let s = 12345;
  const a = Math.sqrt(3) * 32768 * 10 ** (-55 / 20);
  for (let i = 0; i < out.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = Math.max(-32768, Math.min(32767, out[i] + Math.round(((s / 0x100000000) * 2 - 1) * a)));
  }
  return out;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Row {
  scenario: string;
  sampleRate: number;
  calls: number;
  seconds: number;
  /** JS thread push() + the worker's model work, % of one core per call: the VAD's own cost. */
  percentPerCall: number;
  /** The whole process's CPU above the same tick loop without VAD, % of one core per call (noisier). */
  processPercentPerCall: number;
  /** push() per 32 ms window on the JS thread, µs (window copy, energy, gate, slot copy, segmenter). */
  jsUsPerWindow: number;
  /** The worker's time per model run (input conversion, run, answer), µs. */
  usPerRun: number;
  /** The same per scored window (a run scores a window of every call that has one). */
  usPerInference: number;
  windows: number;
  inferredShare: number;
  gatedShare: number;
  dropped: number;
  meanBatch: number;
  utterances: number;
}

interface Measured {
  cpuUs: number;
  pushUs: number;
  starts: number;
  stats?: VadStats;
}

/** Run `calls` conversations in real time: `warmS` seconds unmeasured, then `seconds` measured. */
async function run(rate: number, calls: number, seconds: number, warmS: number, options: VadOptions | null, silent = false): Promise<Measured> {
  const cycle = conversation(rate, silent);
  const frame = (rate * TICK_MS) / 1000;
  const vad = options ? createVad(options) : undefined;
  if (vad) {
    await vad.ready;
    // A daemon that has been up a while has its JIT and the model warm: 30 s of one call, as fast as answered.
    const talk = conversation(rate);
    const warmCall = vad.forCall(rate);
    for (let i = 0; i + frame <= rate * 30; i += frame) {
      warmCall.push(talk.subarray(i % (talk.length - frame), (i % (talk.length - frame)) + frame));
      while (vad.stats.queued > 0) await sleep(0);
    }
    warmCall.close();
  }
  const lines: { call?: CallVad; offset: number }[] = [];
  let starts = 0;
  for (let i = 0; i < calls; i++) {
    const call = vad?.forCall(rate);
    call?.on('speechStart', () => starts++);
    // Calls spread over the cycle, so that some speak while others listen.
    lines.push({ call, offset: Math.floor(((i * 7919) % calls) * (cycle.length / calls / frame)) * frame });
  }
  const warm = (warmS * 1000) / TICK_MS;
  const ticks = warm + (seconds * 1000) / TICK_MS;
  let pushNs = 0n;
  let sink = 0;
  let c0 = process.cpuUsage();
  let before: VadStats | undefined;
  const t0 = performance.now();
  for (let k = 0; k < ticks; k++) {
    const wait = t0 + k * TICK_MS - performance.now();
    if (wait > 0) await sleep(wait);
    if (k === warm) {
      c0 = process.cpuUsage();
      pushNs = 0n;
      starts = 0;
      before = vad?.stats;
    }
    const p0 = process.hrtime.bigint();
    for (const l of lines) {
      const at = (l.offset + k * frame) % cycle.length;
      const pcm = cycle.subarray(at, at + frame);
      if (l.call) l.call.push(pcm);
      else sink += pcm[0];
    }
    pushNs += process.hrtime.bigint() - p0;
  }
  // The last windows' answers belong to this run.
  while (vad && vad.stats.queued > 0) await sleep(1);
  const c = process.cpuUsage(c0);
  if (sink === 0.5) process.stderr.write('\n');
  let stats: VadStats | undefined;
  if (vad) {
    const after = vad.stats;
    stats = { ...after };
    for (const k of Object.keys(after) as (keyof VadStats)[]) if (k !== 'calls' && k !== 'queued') stats[k] = after[k] - before![k];
    await vad.close();
  }
  return { cpuUs: c.user + c.system, pushUs: Number(pushNs) / 1000, starts, stats };
}

function row(name: string, rate: number, calls: number, seconds: number, m: Measured, idle: Measured): Row {
  const s = m.stats!;
  const core = seconds * 1e6;
  const own = m.pushUs + s.modelUs;
  return {
    scenario: name,
    sampleRate: rate,
    calls,
    seconds,
    percentPerCall: +((100 * own) / core / calls).toFixed(4),
    processPercentPerCall: +((100 * Math.max(0, m.cpuUs - idle.cpuUs)) / core / calls).toFixed(4),
    jsUsPerWindow: +(m.pushUs / s.windows).toFixed(2),
    usPerRun: s.batches > 0 ? +(s.modelUs / s.batches).toFixed(1) : 0,
    usPerInference: s.inferred > 0 ? +(s.modelUs / s.inferred).toFixed(1) : 0,
    windows: s.windows,
    inferredShare: +(s.inferred / s.windows).toFixed(3),
    gatedShare: +(s.gated / s.windows).toFixed(3),
    dropped: s.dropped,
    meanBatch: s.batches > 0 ? +(s.inferred / s.batches).toFixed(1) : 0,
    utterances: m.starts,
  };
}

async function main(): Promise<void> {
  const seconds = Number(arg('seconds', '10'));
  const warmS = Number(arg('warm', '3'));
  const counts = arg('calls', '1,20,100').split(',').map(Number);
  const rows: Row[] = [];
  const log = { warn: (_o: object, m: string) => process.stderr.write(`${m}\n`) };
  const scenarios: [string, VadOptions][] = [
    ['silero + gate', { log }],
    ['silero, no gate', { log, gate: false }],
    ['energy only', { backend: 'energy' }],
  ];
  for (const calls of counts) {
    const idle = await run(8000, calls, seconds, warmS, null);
    for (const [name, options] of scenarios) rows.push(row(name, 8000, calls, seconds, await run(8000, calls, seconds, warmS, options), idle));
  }
  const wide = counts[Math.min(1, counts.length - 1)];
  // Calls whose caller says nothing (line noise only): what the gate leaves of the model's cost.
  const idleSilent = await run(8000, wide, seconds, warmS, null, true);
  rows.push(row('silent calls, silero + gate', 8000, wide, seconds, await run(8000, wide, seconds, warmS, { log }, true), idleSilent));
  rows.push(row('silent calls, silero, no gate', 8000, wide, seconds, await run(8000, wide, seconds, warmS, { log, gate: false }, true), idleSilent));
  const idle16 = await run(16000, wide, seconds, warmS, null);
  rows.push(row('silero + gate', 16000, wide, seconds, await run(16000, wide, seconds, warmS, { log }), idle16));
  const find = (s: string, n: number): Row => rows.find((r) => r.scenario === s && r.calls === n && r.sampleRate === 8000)!;
  const ratios = counts.map((n) => ({
    calls: n,
    gateSaves: +(find('silero, no gate', n).percentPerCall / find('silero + gate', n).percentPerCall).toFixed(2),
    vsTarget: +(find('silero + gate', n).percentPerCall / TARGET_PERCENT_PER_CALL).toFixed(2),
    vsOneCall: +(find('silero + gate', n).percentPerCall / find('silero + gate', counts[0]).percentPerCall).toFixed(2),
    vsEnergyOnly: +(find('silero + gate', n).percentPerCall / find('energy only', n).percentPerCall).toFixed(2),
  }));
  const silentGated = rows.find((r) => r.scenario === 'silent calls, silero + gate')!;
  const silentUngated = rows.find((r) => r.scenario === 'silent calls, silero, no gate')!;
  const silent = { calls: wide, gateSaves: +(silentUngated.percentPerCall / silentGated.percentPerCall).toFixed(1) };
  console.log(JSON.stringify({ rows, ratios, silent, targetPercentPerCall: TARGET_PERCENT_PER_CALL }, null, 2));
}

void main();
