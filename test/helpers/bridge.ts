/**
 * Helpers for the voice-bridge end-to-end tests: the real addon's UserAgent, the fake Realtime
 * server behind the real OpenAiBackend, a CallManager wired to both, and a pjsua caller that plays
 * a tone script and records what it hears.
 */
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { OpenAiBackend } from '../../src/ai/AiBackend';
import { CallManager } from '../../src/calls/CallManager';
import type { CallManagerOptions } from '../../src/calls/options';
import type { CallSession } from '../../src/calls/CallSession';
import type { CallSummary, Prompt } from '../../src/calls/types';
import { silentLogger, type Logger } from '../../src/logging/logger';
import type { UserAgent } from '../../src/sip/UserAgent';
import { FakeRealtimeServer } from '../fakes/FakeRealtimeServer';
import { agentUri, startAgent } from './agent';
import { findToneSpans, readWav, type ToneSpan } from './audio-analysis';
import { makeSequence, sequenceMs, tmpDir, type Segment } from './fixtures';
import { startPjsuaCaller, type Pjsua } from './pjsua';
import { sine } from './tone';

/** The bridge rate every e2e call runs at. */
export const RATE = 8000;
/** The fake's API key. */
export const API_KEY = 'sk-test-voice-bridge';

/** Everything one e2e test file shares. */
export interface BridgeRig {
  ua: UserAgent;
  fake: FakeRealtimeServer;
  dir: string;
  log: Logger;
  /** The OpenAI backend pointed at the fake (optionally with another key). */
  backend(apiKey?: string): OpenAiBackend;
  close(): Promise<void>;
}

/** Start the user agent (8 kHz bridge, PCMU) with a default account, and the fake Realtime server. */
export async function startBridgeRig(): Promise<BridgeRig> {
  const dir = await tmpDir('voice-bridge-');
  const fake = new FakeRealtimeServer({ apiKey: API_KEY });
  await fake.listen();
  const ua = await startAgent({ media: { clockRate: RATE, codecs: ['PCMU'] } });
  await ua.addAccount({ uri: 'sip:agent@127.0.0.1', isDefault: true });
  const log = silentLogger();
  return {
    ua,
    fake,
    dir,
    log,
    backend: (apiKey = API_KEY) =>
      new OpenAiBackend({ url: `${fake.baseUrl}/v1/realtime`, model: 'gpt-realtime', apiKey, connectTimeoutMs: 3000, pingIntervalMs: 0 }),
    async close() {
      await ua.close();
      await fake.close();
    },
  };
}

/** A tone prompt at the bridge rate. */
export function tonePrompt(freq: number, ms: number, amplitude = 0.4): Prompt {
  return { pcm: sine(freq, ms, RATE, amplitude), sampleRate: RATE };
}

/** Call options for the tests: quick VAD turns, no transcription, end_call on. */
export function bridgeOptions(over: Partial<CallManagerOptions> = {}): CallManagerOptions {
  return {
    ai: {
      audioFormat: 'pcm',
      voice: 'marin',
      model: 'gpt-realtime',
      turnDetection: { type: 'server_vad', silenceDurationMs: 300, prefixPaddingMs: 100 },
      noiseReduction: 'near_field',
      transcription: null,
    },
    instructions: 'You answer the phone for {{var.company}}. The caller is {{caller}}.',
    variables: { company: 'Acme' },
    ...over,
  };
}

/** A CallManager on the rig's agent; collects summaries. */
export function managerFor(rig: BridgeRig, options: CallManagerOptions, apiKey?: string): { manager: CallManager; ended: Promise<CallSummary>; started: Promise<CallSession> } {
  const manager = new CallManager({ agent: rig.ua, backend: rig.backend(apiKey), options, logger: rig.log });
  const ended = new Promise<CallSummary>((resolve) => manager.once('callEnded', resolve));
  const started = new Promise<CallSession>((resolve) =>
    manager.once('callStarted', (info) => {
      const s = manager.get(info.callId);
      if (s) resolve(s);
    }),
  );
  return { manager, ended, started };
}

/** A pjsua caller playing `segments` (8 kHz) and recording what it hears. */
export async function callAgent(rig: BridgeRig, name: string, segments: Segment[], durationSec: number): Promise<{ caller: Pjsua; rec: string; playMs: number }> {
  const play = path.join(rig.dir, `${name}-play.wav`);
  const rec = path.join(rig.dir, `${name}-rec.wav`);
  await makeSequence(play, segments, { sampleRate: RATE });
  const caller = await startPjsuaCaller({
    name: `caller-${name}`,
    target: agentUri(rig.ua),
    playFile: play,
    recordFile: rec,
    durationSec,
    clockRate: RATE,
    codecs: ['PCMU'],
    lifetimeMs: (durationSec + 15) * 1000,
  });
  return { caller, rec, playMs: sequenceMs(segments) };
}

/** Spans of `freq` in a recording, on 10 ms frames (finer edges than the default 20 ms). */
export function spansIn(rec: string, freq: number, opts: { minLevel?: number } = {}): ToneSpan[] {
  const wav = readWav(rec);
  return findToneSpans(wav.pcm, wav.sampleRate, freq, { frameMs: 10, maxGapMs: 30, minDurationMs: 50, minLevel: opts.minLevel ?? 0.02 });
}

/** Spans of `freq` in PCM. */
export function spansInPcm(pcm: Int16Array, sampleRate: number, freq: number): ToneSpan[] {
  return findToneSpans(pcm, sampleRate, freq, { frameMs: 10, maxGapMs: 30, minDurationMs: 50, minLevel: 0.02 });
}

/** Milliseconds since an arbitrary origin (monotonic). */
export function now(): number {
  return performance.now();
}

/** Write a measured figure where the test run shows it (figures, never pass/fail thresholds on speed). */
export function reportFigure(name: string, value: number | string, unit = ''): void {
  process.stderr.write(`[voice-bridge] ${name}: ${typeof value === 'number' ? value.toFixed(1) : value}${unit ? ` ${unit}` : ''}\n`);
}

/** Frequencies of a {@link stepTone}: far enough apart to tell apart on 10 ms frames. */
export const STEP_FREQS = [600, 1000, 1400, 1800, 2200] as const;

/**
 * A "positional" reply: 24 kHz PCM made of `segmentMs` tone segments cycling through
 * {@link STEP_FREQS}, so a recording tells how far into the reply the caller got, even when the
 * receiving jitter buffer time-compresses what it plays (PJSIP's progressive discard does ~4%).
 */
export function stepTone(totalMs: number, segmentMs = 200, amplitude = 0.3): Int16Array {
  const rate = 24000;
  const seg = Math.round((rate * segmentMs) / 1000);
  const n = Math.round((rate * totalMs) / 1000);
  const out = new Int16Array(n);
  for (let i = 0; i < n; i++) {
    const f = STEP_FREQS[Math.floor(i / seg) % STEP_FREQS.length];
    out[i] = Math.round(Math.sin((2 * Math.PI * f * i) / rate) * amplitude * 32767);
  }
  return out;
}

/**
 * How far into a {@link stepTone} reply the caller got, from the recording: whole segments heard
 * before the last one, plus the heard length of the last one. Also returns the plain heard
 * duration (first segment start to last segment end) for comparison.
 */
export function stepPosition(rec: string, segmentMs = 200, fromMs = 0): { positionMs: number; heardMs: number; segments: number } {
  const wav = readWav(rec);
  const spans = STEP_FREQS.flatMap((f) =>
    findToneSpans(wav.pcm, wav.sampleRate, f, { frameMs: 10, maxGapMs: 30, minDurationMs: 20, minLevel: 0.02 }).map((s) => ({ f, ...s })),
  )
    .filter((s) => s.startMs >= fromMs)
    .sort((a, b) => a.startMs - b.startMs);
  // Keep the first run of segments that follow the cycle (the reply), ignoring anything after a break in it.
  const run: typeof spans = [];
  for (const s of spans) {
    const prev = run[run.length - 1];
    if (prev) {
      const expected = STEP_FREQS[(STEP_FREQS.indexOf(prev.f as (typeof STEP_FREQS)[number]) + 1) % STEP_FREQS.length];
      if (s.f !== expected || s.startMs - prev.endMs > 60) break;
    } else if (s.f !== STEP_FREQS[0]) {
      continue;
    }
    run.push(s);
  }
  if (run.length === 0) return { positionMs: 0, heardMs: 0, segments: 0 };
  const last = run[run.length - 1];
  // A segment is heard as its length less a frame of boundary smear on each side.
  const lastMs = Math.min(segmentMs, last.endMs - last.startMs + (run.length > 1 ? 10 : 0));
  return { positionMs: (run.length - 1) * segmentMs + lastMs, heardMs: last.endMs - run[0].startMs, segments: run.length };
}
