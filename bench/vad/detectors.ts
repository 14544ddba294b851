/**
 * The detectors the VAD corpus bench compares, each run over every clip as a call of its own and
 * fed 20 ms frames as the audio wake delivers them: the product's VAD (Silero with or without its
 * energy gate, or its energy fallback), and the echo backend's energy detector as the baseline.
 */
import { Resampler } from '../../src/audio/Resampler';
import { int16ToBytesLE } from '../../src/audio/pcm';
import { createVad, type VadBackendName, type VadOptions, type VadStats } from '../../src/audio/vad';
import { DEFAULT_UTTERANCE_DETECTOR_OPTIONS, UtteranceDetector } from '../../src/ai/echo/UtteranceDetector';
import { CORPUS_RATE, type Clip } from './corpus';

/** Samples per pushed frame (20 ms). */
const FRAME = (CORPUS_RATE * 20) / 1000;

/** A `speechStart`, in clip samples. */
export interface StartSeen {
  /** Where the detector says speech began (the uplink gate's pre-roll reaches back from here). */
  atSample: number;
  /** Samples pushed when it fired: the gate forwards audio from this moment on. */
  endSample: number;
}

/** What a detector reported over one clip. */
export interface ClipEvents {
  starts: StartSeen[];
  /** `speechEnd.atSample` of each ended utterance. */
  ends: number[];
}

/** One detector over the corpus. */
export interface DetectorRun {
  events: ClipEvents[];
  /** The VAD's counters over the run (absent for the baseline). */
  stats?: VadStats;
  wallMs: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Every clip through one {@link createVad} instance, all calls in step: each step pushes one frame
 * of every call, then waits until the model has answered, as it does well within a 20 ms tick in
 * real time, so `endSample` is where a live call would be when the event fires.
 * @throws Error when the VAD does not run on `expect` (the model could not be loaded).
 */
export async function runVad(options: VadOptions, expect: VadBackendName, clips: readonly Clip[]): Promise<DetectorRun> {
  const t0 = performance.now();
  let warning = '';
  const vad = createVad({ ...options, log: { warn: (_o, msg) => (warning = msg) } });
  const backend = await vad.ready;
  if (backend !== expect) {
    await vad.close();
    throw new Error(`the VAD runs on ${backend}, not ${expect}${warning ? `: ${warning}` : ''}`);
  }
  const events = clips.map((): ClipEvents => ({ starts: [], ends: [] }));
  const calls = clips.map((_, i) => {
    const call = vad.forCall(CORPUS_RATE);
    call.on('speechStart', (e) => events[i].starts.push({ atSample: e.atSample, endSample: e.endSample }));
    call.on('speechEnd', (e) => events[i].ends.push(e.atSample));
    return call;
  });
  const longest = Math.max(...clips.map((c) => c.pcm.length));
  for (let at = 0; at < longest; at += FRAME) {
    clips.forEach((c, i) => {
      if (at < c.pcm.length) calls[i].push(c.pcm.subarray(at, Math.min(c.pcm.length, at + FRAME)));
    });
    while (vad.stats.queued > 0) await sleep(1);
  }
  const stats = vad.stats;
  await vad.close();
  return { events, stats, wallMs: performance.now() - t0 };
}

/**
 * Every clip through the echo backend's detector at its defaults (-40 dBFS, 100 ms), on the audio
 * the echo backend receives with `ai.audioFormat: pcm`: the call's audio resampled to 24 kHz.
 * Its times are brought back to the clip's timeline (the resampler's delay taken off).
 */
export function runEchoDetector(clips: readonly Clip[]): DetectorRun {
  const t0 = performance.now();
  const o = DEFAULT_UTTERANCE_DETECTOR_OPTIONS;
  const events = clips.map((c): ClipEvents => {
    const resampler = Resampler.create(CORPUS_RATE, 24000);
    const detector = new UtteranceDetector('pcm', o);
    const toSample = (ms: number): number => Math.max(0, Math.round(((ms - resampler.delayMs) * CORPUS_RATE) / 1000));
    const seen: ClipEvents = { starts: [], ends: [] };
    for (let at = 0; at < c.pcm.length; at += FRAME) {
      const end = Math.min(c.pcm.length, at + FRAME);
      for (const e of detector.push(int16ToBytesLE(resampler.process(c.pcm.subarray(at, end))))) {
        // Both carry `paddingMs` of audio before the first voiced frame and after the last.
        if (e.type === 'start') seen.starts.push({ atSample: toSample(e.audioStartMs + o.paddingMs), endSample: end });
        else seen.ends.push(toSample(e.audioEndMs - o.paddingMs));
      }
    }
    return seen;
  });
  return { events, wallMs: performance.now() - t0 };
}
