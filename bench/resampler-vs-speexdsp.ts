/**
 * Our streaming resampler against speexdsp's (qualities 3, 5 and 10) on the very same input files,
 * in the same run: ns per sample and quality (passband ripple, worst image/alias, group delay),
 * side by side with ratios against speexdsp quality 5. Ours runs twice: with the JavaScript
 * reference kernel and with the native kernel called through the addon exactly as the call path
 * calls it (one N-API call per 20 ms frame into a caller buffer), so N-API overhead is included.
 *
 * Run:   npx tsc -p tsconfig.json && node dist/bench/resampler-vs-speexdsp.js [--json] [--runs N]
 * While some other module does not type-check, compile just this file and what it imports:
 *        npx tsc --outDir dist --rootDir . --target ES2022 --module commonjs --esModuleInterop \
 *          --skipLibCheck --types node bench/resampler-vs-speexdsp.ts && node dist/bench/resampler-vs-speexdsp.js
 * Needs a C compiler and speexdsp (Debian: libspeexdsp-dev); bench/speexdsp/speex-resample.c is
 * compiled with `cc -O2 ... -lspeexdsp` into a temporary directory that is removed afterwards.
 *
 * Both sides take 20 ms frames, Int16 in and out, from one file written here. Ours runs in-process
 * into a caller-supplied buffer (as the bridge does); speexdsp's loop is timed inside the C program,
 * so neither side's figure includes file I/O, process start-up or filter construction. Repetitions
 * interleave ours and speexdsp so load from other processes hits both alike.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Resampler } from '../src/audio/Resampler';
import { nativeResamplerKernel } from '../src/native/binding';
import { db, fitSine, rms, speechLike } from '../test/helpers/signal';

const PTIME_MS = 20;
const SPEED_SECONDS = 60;
const DEFAULT_RUNS = 5;
const QUALITIES = [3, 5, 10] as const;
const PAIRS: readonly [number, number][] = [
  [8000, 24000],
  [24000, 8000],
  [16000, 24000],
  [24000, 16000],
];
/** Telephone passband per bridge rate; quality is measured up to here. */
const PASS_HZ: Record<number, number> = { 8000: 3400, 16000: 7000 };
/** Each analysis tone lasts this long; fits use 100-200 ms (sweep) and 100-300 ms (delay) of it. */
const SEGMENT_S = 0.3;
const TONE_AMP = 16000;
/** Low enough that one period (25 ms) exceeds every delay measured, so the phase does not wrap. */
const DELAY_TONE_HZ = 40;
/** RMS of Int16 rounding noise (1/sqrt(12) LSB): the quietest output level the measurement can tell apart. */
const FLOOR_RMS = 1 / Math.sqrt(12);
/** {@link FLOOR_RMS} relative to the full-scale tone, dB (about -91.9). */
const FLOOR_DB = 20 * Math.log10(FLOOR_RMS / (TONE_AMP / Math.SQRT2));
/** Our two kernels: the JavaScript reference and the addon's. */
const KERNELS = ['js', 'native'] as const;
type Kernel = (typeof KERNELS)[number];

/** One implementation on one rate pair: quality and speed figures. */
interface Row {
  pair: string;
  impl: string;
  /** Max minus min gain over the passband tone sweep, dB. */
  rippleDb: number;
  /** Gain at the passband edge, dB. */
  edgeGainDb: number;
  /** Worst residual (everything but the tone) on passband tones relative to the tone: images when upsampling. */
  worstToneSpurDb: number;
  /**
   * Worst output level for input tones that would alias into the passband, re the input tone (downsampling
   * only); floored at Int16 rounding noise ({@link FLOOR_DB}), since an all-zero output measures no deeper.
   */
  worstAliasDb: number | null;
  /** Worst of images (up) or aliases (down): the headline attenuation figure. */
  worstImageAliasDb: number;
  /** Input tone frequency that gave {@link worstImageAliasDb}, Hz. */
  worstImageAliasHz: number;
  /**
   * Worst single image or alias line re the input tone, dB: the output fitted at each frequency
   * where an image (k * from +- f) or an alias of an analysis tone lands. Rounding noise spreads
   * over every frequency, so one line sees the filter far below {@link worstImageAliasDb}'s floor.
   */
  worstLineDb: number;
  /** Input tone frequency that gave {@link worstLineDb}, Hz. */
  worstLineHz: number;
  /** Filter taps per output sample (multiply-adds): ours per polyphase branch, speexdsp's filter length. */
  tapsPerOutput: number;
  /** Group delay measured from the phase of a 40 Hz tone, ms. */
  delayMs: number;
  /** Delay the implementation reports about itself, ms. */
  reportedDelayMs: number;
  nsPerOutBest: number;
  nsPerOutMedian: number;
  nsPerInBest: number;
  nsPerInMedian: number;
}

/** What the analysis file holds, in order, each segment SEGMENT_S long. */
interface Plan {
  sweep: number[];
  alias: number[];
  delayTone: number;
}

function planFor(from: number, to: number): Plan {
  const pass = PASS_HZ[Math.min(from, to)];
  const sweep: number[] = [];
  for (let f = 50; f < pass; f += 100) sweep.push(f);
  sweep.push(pass);
  // Input content at f aliases to |f - k*to|; what lands in 0..pass comes from [to - pass, from/2).
  const alias: number[] = [];
  if (to < from) for (let f = to - pass; f < from / 2; f += 100) alias.push(f);
  return { sweep, alias, delayTone: DELAY_TONE_HZ };
}

function tone(freq: number, rate: number, n: number, amp = TONE_AMP): Int16Array {
  const out = new Int16Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.round(amp * Math.sin((2 * Math.PI * freq * i) / rate));
  return out;
}

/** Tones back to back; each starts at phase 0 at its own segment start. */
function analysisSignal(from: number, plan: Plan): Int16Array {
  const seg = Math.round(SEGMENT_S * from);
  const freqs = [...plan.sweep, ...plan.alias, plan.delayTone];
  const out = new Int16Array(seg * freqs.length);
  freqs.forEach((f, s) => out.set(tone(f, from, seg), s * seg));
  return out;
}

/** `f` folded into 0..rate/2, as a real signal sampled at `rate` shows it. */
function fold(f: number, rate: number): number {
  const m = ((f % rate) + rate) % rate;
  return m > rate / 2 ? rate - m : m;
}

/** Where the images of an input tone at `f` land in the output (excluding the tone itself, DC and Nyquist). */
function imageFreqs(f: number, from: number, to: number): number[] {
  const g = gcd(from, to);
  const up = to / g;
  const own = fold(f, to);
  const out = new Set<number>();
  for (let k = 1; k <= up; k++) {
    for (const x of [k * from - f, k * from + f]) {
      const y = fold(x, to);
      if (Math.abs(y - own) > 0.5 && y > 0.5 && y < to / 2 - 0.5) out.add(y);
    }
  }
  return [...out];
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

/** The same measurement for every implementation: `y` is the output for {@link analysisSignal}. */
function analyse(y: Int16Array, from: number, to: number, plan: Plan) {
  const seg = Math.round(SEGMENT_S * to);
  const need = seg * (plan.sweep.length + plan.alias.length + 1);
  if (y.length < need) throw new RangeError(`output shorter than the analysis signal [have:${y.length}, need:${need}]`);
  let s = 0;
  const segment = (): Int16Array => y.subarray(seg * s, seg * ++s);
  const gains: number[] = [];
  let worstToneSpurDb = -Infinity;
  let worstToneSpurHz = 0;
  let worstLineDb = -Infinity;
  let worstLineHz = 0;
  // Every analysis frequency is a multiple of 10 Hz and each fit spans 100 ms, so the fit at one
  // frequency does not see a tone at another.
  const line = (seg: Int16Array, f: number, at: number): void => {
    const level = db(fitSine(seg, to, at, to / 10, to / 10).amplitude / TONE_AMP);
    if (level > worstLineDb) [worstLineDb, worstLineHz] = [level, f];
  };
  for (const f of plan.sweep) {
    const seg = segment();
    const fit = fitSine(seg, to, f, to / 10, to / 10);
    gains.push(db(fit.amplitude / TONE_AMP));
    const spur = db(fit.residualRms / (fit.amplitude / Math.SQRT2));
    if (spur > worstToneSpurDb) [worstToneSpurDb, worstToneSpurHz] = [spur, f];
    for (const at of imageFreqs(f, from, to)) line(seg, f, at);
  }
  let worstAliasDb: number | null = null;
  let worstAliasHz = 0;
  for (const f of plan.alias) {
    const seg = segment();
    const level = db(Math.max(FLOOR_RMS, rms(seg, to / 10, to / 10)) / (TONE_AMP / Math.SQRT2));
    if (worstAliasDb === null || level > worstAliasDb) [worstAliasDb, worstAliasHz] = [level, f];
    const at = fold(f, to);
    if (at > 0.5 && at < to / 2 - 0.5) line(seg, f, at);
  }
  // Input is sin(wt); output is G sin(w(t - tau)), so the fitted phase is -w*tau (mod 2pi, tau < one period).
  const fit = fitSine(segment(), to, plan.delayTone, to / 10, to / 5);
  const lag = (((-fit.phase) % (2 * Math.PI)) + 2 * Math.PI) % (2 * Math.PI);
  return {
    rippleDb: Math.max(...gains) - Math.min(...gains),
    edgeGainDb: gains[gains.length - 1],
    worstToneSpurDb,
    worstAliasDb,
    worstImageAliasDb: worstAliasDb ?? worstToneSpurDb,
    worstImageAliasHz: worstAliasDb === null ? worstToneSpurHz : worstAliasHz,
    worstLineDb,
    worstLineHz,
    delayMs: (lag / (2 * Math.PI * plan.delayTone)) * 1000,
  };
}

/** Ours over `input` in 20 ms frames into a caller buffer; returns the output and the loop's ns. */
function runOurs(from: number, to: number, input: Int16Array, kernel: Kernel): { out: Int16Array; ns: number; delayMs: number; taps: number } {
  const frame = (from * PTIME_MS) / 1000;
  const r = Resampler.create(from, to, { kernel: kernel === 'native' ? nativeResamplerKernel : undefined });
  const scratch = new Int16Array(r.maxOutputLength(frame));
  const out = new Int16Array(Math.ceil((input.length * to) / from) + frame);
  let produced = 0;
  const t0 = process.hrtime.bigint();
  for (let pos = 0; pos + frame <= input.length; pos += frame) {
    const got = r.process(input.subarray(pos, pos + frame), scratch);
    out.set(got, produced);
    produced += got.length;
  }
  const ns = Number(process.hrtime.bigint() - t0);
  return { out: out.subarray(0, produced), ns, delayMs: r.delayMs, taps: r.design.tapsPerPhase };
}

interface SpeexRun {
  inSamples: number;
  outSamples: number;
  inputLatency: number;
  outputLatency: number;
  runsNs: number[];
}

function runSpeex(bin: string, quality: number, from: number, to: number, inFile: string, outFile: string, runs: number): SpeexRun {
  const stdout = execFileSync(bin, [String(quality), String(from), String(to), inFile, outFile, String(runs)], { encoding: 'utf8' });
  return JSON.parse(stdout) as SpeexRun;
}

function readRaw(file: string): Int16Array {
  const b = fs.readFileSync(file);
  return new Int16Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length));
}

function writeRaw(file: string, samples: Int16Array): void {
  fs.writeFileSync(file, Buffer.from(samples.buffer, samples.byteOffset, samples.byteLength));
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function buildSpeex(dir: string): string {
  const src = path.join(__dirname, '..', '..', 'bench', 'speexdsp', 'speex-resample.c');
  const fallback = path.join(process.cwd(), 'bench', 'speexdsp', 'speex-resample.c');
  const file = fs.existsSync(src) ? src : fallback;
  const bin = path.join(dir, 'speex-resample');
  execFileSync('cc', ['-O2', '-o', bin, file, '-lspeexdsp'], { stdio: ['ignore', 'ignore', 'inherit'] });
  return bin;
}

function benchPair(bin: string, dir: string, from: number, to: number, runs: number): Row[] {
  const tag = `${from}-${to}`;
  const plan = planFor(from, to);
  const analysisIn = path.join(dir, `analysis-${tag}.raw`);
  const speechIn = path.join(dir, `speech-${tag}.raw`);
  writeRaw(analysisIn, analysisSignal(from, plan));
  writeRaw(speechIn, speechLike(from, SPEED_SECONDS));
  // Both sides read the same bytes back from the files, so the inputs are identical by construction.
  const analysis = readRaw(analysisIn);
  const speech = readRaw(speechIn);

  const rows: Row[] = [];
  const ours = new Map(KERNELS.map((k) => {
    const r = runOurs(from, to, analysis, k);
    return [k, { quality: analyse(r.out, from, to, plan), delayMs: r.delayMs, taps: r.taps }] as const;
  }));
  const speexQuality = new Map<number, { q: ReturnType<typeof analyse>; reportedMs: number; taps: number }>();
  for (const q of QUALITIES) {
    const out = path.join(dir, `analysis-${tag}-q${q}.raw`);
    const run = runSpeex(bin, q, from, to, analysisIn, out, 1);
    speexQuality.set(q, { q: analyse(readRaw(out), from, to, plan), reportedMs: (run.outputLatency * 1000) / to,
      // speexdsp's latency is half its filter length, in input samples; each output sums the whole filter.
      taps: 2 * run.inputLatency,
    });
  }

  // Speed: one warm-up, then `runs` interleaved repetitions of our kernels and each speexdsp quality.
  for (const k of KERNELS) runOurs(from, to, speech, k);
  const oursNs = new Map<Kernel, number[]>(KERNELS.map((k) => [k, []]));
  const oursOut = new Map<Kernel, number>();
  const speexNs = new Map<number, number[]>(QUALITIES.map((q) => [q, []]));
  const speexOut = new Map<number, number>();
  const speechOut = path.join(dir, `speech-${tag}-out.raw`);
  for (let rep = 0; rep < runs; rep++) {
    for (const k of KERNELS) {
      const r = runOurs(from, to, speech, k);
      oursNs.get(k)!.push(r.ns);
      oursOut.set(k, r.out.length);
    }
    for (const q of QUALITIES) {
      const s = runSpeex(bin, q, from, to, speechIn, speechOut, 1);
      speexNs.get(q)!.push(s.runsNs[0]);
      speexOut.set(q, s.outSamples);
    }
  }
  const speed = (ns: number[], outSamples: number) => ({
    nsPerOutBest: Math.min(...ns) / outSamples,
    nsPerOutMedian: median(ns) / outSamples,
    nsPerInBest: Math.min(...ns) / speech.length,
    nsPerInMedian: median(ns) / speech.length,
  });
  const pair = `${from} -> ${to}`;
  for (const k of KERNELS) {
    const o = ours.get(k)!;
    rows.push({ pair, impl: oursName(k), ...o.quality, tapsPerOutput: o.taps, reportedDelayMs: o.delayMs, ...speed(oursNs.get(k)!, oursOut.get(k)!) });
  }
  for (const q of QUALITIES) {
    const { q: quality, reportedMs, taps } = speexQuality.get(q)!;
    rows.push({ pair, impl: `speexdsp q${q}`, ...quality, tapsPerOutput: taps, reportedDelayMs: reportedMs, ...speed(speexNs.get(q)!, speexOut.get(q)!) });
  }
  return rows;
}

function oursName(k: Kernel): string {
  return k === 'js' ? 'ours, JS kernel' : 'ours, native kernel';
}

/** Ours against speexdsp quality 5 on one pair: time and delay as ratios, attenuation and ripple as differences. */
interface Versus {
  pair: string;
  impl: string;
  timeRatioBest: number;
  timeRatioMedian: number;
  delayRatio: number;
  rippleDeltaDb: number;
  imageAliasDeltaDb: number;
  /** speexdsp's figure sat at the measurement floor, so the difference is a lower bound. */
  imageAliasAtFloor: boolean;
  /** Worst single image/alias line, ours minus speexdsp's. */
  lineDeltaDb: number;
}

function versus(rows: Row[]): Versus[] {
  const result: Versus[] = [];
  for (const [from, to] of PAIRS) {
    const pair = `${from} -> ${to}`;
    const q5 = rows.find((r) => r.pair === pair && r.impl === 'speexdsp q5')!;
    for (const k of KERNELS) {
      const ours = rows.find((r) => r.pair === pair && r.impl === oursName(k))!;
      result.push({
        pair,
        impl: ours.impl,
        timeRatioBest: ours.nsPerOutBest / q5.nsPerOutBest,
        timeRatioMedian: ours.nsPerOutMedian / q5.nsPerOutMedian,
        delayRatio: ours.delayMs / q5.delayMs,
        rippleDeltaDb: ours.rippleDb - q5.rippleDb,
        imageAliasDeltaDb: ours.worstImageAliasDb - q5.worstImageAliasDb,
        imageAliasAtFloor: q5.worstImageAliasDb <= FLOOR_DB + 1e-9,
        lineDeltaDb: ours.worstLineDb - q5.worstLineDb,
      });
    }
  }
  return result;
}

function table(header: string[], lines: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  const fmt = (cells: string[]): string => `| ${cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (i < 2 ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`;
  return [fmt(header), rule, ...lines.map(fmt)].join('\n');
}

function main(): void {
  const argv = process.argv.slice(2);
  const runsAt = argv.indexOf('--runs');
  const runs = runsAt >= 0 ? Number(argv[runsAt + 1]) : DEFAULT_RUNS;
  if (!Number.isInteger(runs) || runs < 1 || runs > 50) throw new RangeError(`--runs wants 1..50 [got:${argv[runsAt + 1]}]`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'resampler-vs-speexdsp-'));
  let rows: Row[] = [];
  try {
    const bin = buildSpeex(dir);
    for (const [from, to] of PAIRS) rows = rows.concat(benchPair(bin, dir, from, to, runs));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const vs = versus(rows);
  if (argv.includes('--json')) {
    const meta = { node: process.version, floorDb: FLOOR_DB, speedSeconds: SPEED_SECONDS, runs, ptimeMs: PTIME_MS, qualities: QUALITIES };
    process.stdout.write(`${JSON.stringify({ ...meta, rows, versusSpeexQ5: vs }, null, 2)}\n`);
    return;
  }
  const f = (x: number, d: number): string => x.toFixed(d);
  process.stdout.write(
    `Resampler vs speexdsp: same input files, ${PTIME_MS} ms frames; speed over ${SPEED_SECONDS} s of speech-like signal, ` +
      `${runs} interleaved runs (best / median); quality up to 3400 Hz (8 kHz) / 7000 Hz (16 kHz) (${process.version})\n\n`,
  );
  const atten = (x: number): string => (x <= FLOOR_DB + 1e-9 ? `<= ${f(FLOOR_DB, 1)}` : f(x, 1));
  // No image or alias line in any output sample at all (every alias tone came out as zeros).
  const lineDb = (x: number): string => (x === -Infinity ? 'silent' : f(x, 1));
  const lineDelta = (d: number): string => (Number.isFinite(d) ? f(d, 1) : 'both silent');
  const header = ['pair', 'implementation', 'taps/out', 'ripple dB', 'edge gain dB', 'worst image/alias dB', 'at Hz', 'tone spur dB', 'worst line dB', 'at Hz', 'delay ms', 'ns/out best', 'ns/out median', 'ns/in best'];
  process.stdout.write(
    `${table(
      header,
      rows.map((r) => [
        r.pair, r.impl, String(r.tapsPerOutput), f(r.rippleDb, 4), f(r.edgeGainDb, 4), atten(r.worstImageAliasDb),
        r.worstImageAliasDb <= FLOOR_DB + 1e-9 ? '-' : String(r.worstImageAliasHz), f(r.worstToneSpurDb, 1),
        lineDb(r.worstLineDb), r.worstLineDb === -Infinity ? '-' : String(r.worstLineHz), f(r.delayMs, 3), f(r.nsPerOutBest, 2), f(r.nsPerOutMedian, 2), f(r.nsPerInBest, 2),
      ]),
    )}\n\n`,
  );
  process.stdout.write('Ours against speexdsp quality 5 (time and delay: ours / speexdsp, below 1 is better; dB: ours - speexdsp, below 0 is better)\n\n');
  process.stdout.write(
    `${table(
      ['pair', 'implementation', 'time best', 'time median', 'delay', 'ripple Δ dB', 'image/alias Δ dB', 'line Δ dB'],
      vs.map((v) => [
        v.pair, v.impl, f(v.timeRatioBest, 2), f(v.timeRatioMedian, 2), f(v.delayRatio, 2), f(v.rippleDeltaDb, 4),
        v.imageAliasAtFloor ? `>= ${f(v.imageAliasDeltaDb, 1)}` : f(v.imageAliasDeltaDb, 1), lineDelta(v.lineDeltaDb),
      ]),
    )}\n`,
  );
}

main();
