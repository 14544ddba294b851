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
import { agentUri, sine, startAgent } from './agent';
import { findToneSpans, readWav, type ToneSpan } from './audio-analysis';
import { makeSequence, sequenceMs, tmpDir, type Segment } from './fixtures';
import { startPjsuaCaller, type Pjsua } from './pjsua';

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
