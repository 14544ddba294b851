/**
 * Resampler speed: ns per sample for each bridge direction (and two offline pairs), 60 s of
 * signal fed in 20 ms frames as the call path does, best of several runs after a warm-up. Each
 * pair runs the JavaScript reference kernel (allocating and into a caller buffer) and the native
 * kernel through the addon exactly as the call path calls it (one N-API call per frame into a
 * caller buffer), so the N-API overhead is included. Needs the built addon for the native rows.
 *
 * Run:   npx tsc -p tsconfig.json && node dist/bench/resampler.js [--json]
 * While some other module does not type-check, compile just this file and what it imports:
 *        npx tsc --outDir dist --rootDir . --target ES2022 --module commonjs --esModuleInterop \
 *          --skipLibCheck --types node bench/resampler.ts && node dist/bench/resampler.js
 */
import { Resampler, ResamplerOptions } from '../src/audio/Resampler';
import { nativeResamplerKernel } from '../src/native/binding';
import { speechLike } from '../test/helpers/signal';

const SECONDS = 60;
const RUNS = 5;
const PTIME_MS = 20;

interface Row {
  pair: string;
  design: string;
  kernel: 'js' | 'native';
  tapsPerPhase: number;
  delayMs: number;
  nsPerInputSample: number;
  nsPerOutputSample: number;
  usPerFrame: number;
  /** CPU share of one core for one call: frame processing time / frame duration. */
  cpuPercentPerCall: number;
  realtimeFactor: number;
  outputBuffer: 'allocated' | 'caller';
}

function bench(from: number, to: number, callerBuffer: boolean, kernel: 'js' | 'native', design?: ResamplerOptions['design']): Row {
  const options: ResamplerOptions = { design, kernel: kernel === 'native' ? nativeResamplerKernel : undefined };
  const input = speechLike(from, SECONDS);
  const frame = (from * PTIME_MS) / 1000;
  const frames = input.length / frame;
  let best = Infinity;
  let outCount = 0;
  let r = Resampler.create(from, to, options);
  const out = new Int16Array(r.maxOutputLength(frame));
  for (let run = 0; run <= RUNS; run++) {
    r = Resampler.create(from, to, options);
    let produced = 0;
    const t0 = process.hrtime.bigint();
    for (let f = 0; f < frames; f++) {
      const chunk = input.subarray(f * frame, (f + 1) * frame);
      produced += (callerBuffer ? r.process(chunk, out) : r.process(chunk)).length;
    }
    const ns = Number(process.hrtime.bigint() - t0);
    if (run > 0) best = Math.min(best, ns); // run 0 warms up the JIT
    outCount = produced;
  }
  const usPerFrame = best / frames / 1000;
  return {
    pair: `${from} -> ${to}`,
    design: r.design.name,
    kernel,
    tapsPerPhase: r.design.tapsPerPhase,
    delayMs: r.delayMs,
    nsPerInputSample: best / input.length,
    nsPerOutputSample: best / outCount,
    usPerFrame,
    cpuPercentPerCall: (usPerFrame / (PTIME_MS * 1000)) * 100,
    realtimeFactor: (SECONDS * 1e9) / best,
    outputBuffer: callerBuffer ? 'caller' : 'allocated',
  };
}

function main(): void {
  const rows: Row[] = [];
  for (const [from, to] of [[8000, 24000], [24000, 8000], [16000, 24000], [24000, 16000]] as const) {
    rows.push(bench(from, to, false, 'js'));
    rows.push(bench(from, to, true, 'js'));
    rows.push(bench(from, to, true, 'native'));
  }
  for (const [from, to] of [[44100, 8000], [48000, 16000]] as const) {
    rows.push(bench(from, to, false, 'js'));
    rows.push(bench(from, to, true, 'native'));
  }
  if (process.argv.includes('--json')) {
    process.stdout.write(`${JSON.stringify({ node: process.version, seconds: SECONDS, runs: RUNS, rows }, null, 2)}\n`);
    return;
  }
  const header = ['pair', 'design', 'kernel', 'taps/phase', 'delay ms', 'out buffer', 'ns/in', 'ns/out', 'µs/20ms', 'CPU %/call', 'x realtime'];
  const lines = rows.map((r) => [
    r.pair, r.design, r.kernel, String(r.tapsPerPhase), r.delayMs.toFixed(3), r.outputBuffer,
    r.nsPerInputSample.toFixed(1), r.nsPerOutputSample.toFixed(1), r.usPerFrame.toFixed(1),
    r.cpuPercentPerCall.toFixed(3), r.realtimeFactor.toFixed(0),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  const fmt = (cells: string[]): string => cells.map((c, i) => c.padStart(widths[i])).join('  ');
  process.stdout.write(`Resampler, ${SECONDS} s of signal in ${PTIME_MS} ms frames, best of ${RUNS} (${process.version})\n`);
  process.stdout.write(`${fmt(header)}\n${fmt(widths.map((w) => '-'.repeat(w)))}\n`);
  for (const l of lines) process.stdout.write(`${fmt(l)}\n`);
}

main();
