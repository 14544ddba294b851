/**
 * A generated corpus for the VAD benchmarks, at 8 kHz (the default bridge rate): utterances spoken
 * by espeak-ng, alone and over pink noise at a few SNRs, and noise alone made by sox's `synth`
 * (bursts of white, pink and brown noise, clicks, knocks, door slams) or by espeak-ng voices mixed
 * into babble, at a few levels. Every file sits on a quiet line (white hiss at
 * {@link LINE_HISS_DBFS}), as a call does, and starts with a second or more of that line alone.
 *
 * Deterministic: espeak-ng is, and sox runs with `-R`, so every run feeds the same samples.
 * Needs `espeak-ng` and `sox` on the PATH ({@link MissingToolError} otherwise).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadWavFile, writeWavFile } from '../../src/audio/wav';

/** Rate of every clip, Hz. */
export const CORPUS_RATE = 8000;

/** Level of the line hiss under every clip, dBFS RMS. */
export const LINE_HISS_DBFS = -70;

/** Level every utterance is brought to, dBFS RMS over the utterance (first to last sample above {@link ONSET_THRESHOLD}). */
export const SPEECH_DBFS = -22;

/** The true onset: the first sample of espeak-ng's audio (at 8 kHz) at or above this magnitude (0.3 % of full scale). */
export const ONSET_THRESHOLD = 98;

/** Noise-only levels, dBFS: RMS over the active part (bursts, babble), or of the loudest 32 ms window of each event (clicks, knocks, slams). */
export const NOISE_LEVELS_DBFS = [-50, -40, -30, -20] as const;

/** Speech-to-noise ratios of the utterances over pink noise, dB (noise RMS = utterance RMS - SNR). */
export const SNRS_DB = [20, 10, 5] as const;

/** Kinds of noise-only clip. */
export const NOISE_TYPES = ['white', 'pink', 'brown', 'clicks', 'knocks', 'door', 'babble'] as const;
export type NoiseType = (typeof NOISE_TYPES)[number];

/** Length of every noise-only clip, s. */
export const NOISE_CLIP_S = 10;

/**
 * Line alone before an utterance, s: longer than the noise floor's 3 s memory, so the floor is the
 * line's (as for a caller who speaks after the greeting), not its initial guess. Each utterance
 * starts {@link SPEECH_LEAD_STEP} samples later than the one before, so that onsets fall at
 * different places in the detector's 32 ms windows.
 */
const SPEECH_LEAD_S = 3.5;
const SPEECH_LEAD_STEP = 32;
/** Line alone after an utterance, s. */
const SPEECH_TAIL_S = 1.0;

/** One utterance of the corpus: what espeak-ng says, in which voice, how fast. */
export interface UtteranceSpec {
  id: string;
  text: string;
  /** espeak-ng voice (language, `+variant`). */
  voice: string;
  /** Words per minute. */
  wpm: number;
}

/** Sentences a caller says, from one-word answers (near `minSpeechMs`) to long requests, in several voices and speeds. */
export const UTTERANCES: readonly UtteranceSpec[] = [
  { id: 'order', text: 'Hello, I would like to check the status of my order.', voice: 'en-us', wpm: 160 },
  { id: 'yes', text: 'Yes, that is right.', voice: 'en-gb+f3', wpm: 175 },
  { id: 'billing', text: 'Could you put me through to the billing department, please?', voice: 'en-us+m3', wpm: 140 },
  { id: 'account', text: 'My account number is four seven two, nine one eight.', voice: 'en-gb-scotland', wpm: 150 },
  { id: 'no', text: 'No.', voice: 'en-us+f2', wpm: 160 },
  { id: 'callback', text: 'I have been waiting for a callback since Tuesday afternoon.', voice: 'en-029', wpm: 190 },
  { id: 'thanks', text: 'Okay, thanks.', voice: 'en-us+f4', wpm: 200 },
  { id: 'sorry', text: 'Sorry, what was that?', voice: 'en-gb-x-rp', wpm: 165 },
];

/** The babble: these voices at once, each looping its sentence from its own offset. */
const BABBLE: readonly Omit<UtteranceSpec, 'id'>[] = [
  { text: 'We should meet again on Friday to go over the numbers for the second quarter.', voice: 'en-us', wpm: 170 },
  { text: 'The train was late again this morning, so I missed the first half of the meeting.', voice: 'en-gb+f2', wpm: 160 },
  { text: 'Did you see the game last night? They scored twice in the last five minutes.', voice: 'en-us+m4', wpm: 180 },
  { text: 'I will send you the address later, it is just around the corner from the station.', voice: 'en-gb-x-rp', wpm: 150 },
  { text: 'Can somebody please turn the music down a little, I can hardly hear myself think.', voice: 'en-us+f3', wpm: 175 },
  { text: 'The new printer on the third floor still does not work, nobody knows why.', voice: 'en-029', wpm: 165 },
];

/** Noise alone: a false trigger here is a speechStart. */
export interface NoiseClip {
  kind: 'noise';
  name: string;
  type: NoiseType;
  levelDbfs: number;
  pcm: Int16Array;
}

/** An utterance on the line, clean or over pink noise. */
export interface SpeechClip {
  kind: 'speech';
  name: string;
  utterance: UtteranceSpec;
  /** `clean`, or `snr<dB>`. */
  condition: string;
  snrDb: number | null;
  /** First sample of the speech (see {@link ONSET_THRESHOLD}). */
  onsetSample: number;
  /** One past its last sample above the threshold. */
  endSample: number;
  pcm: Int16Array;
}

export type Clip = NoiseClip | SpeechClip;

/** The corpus, loaded. */
export interface Corpus {
  /** Where the WAV files are. */
  dir: string;
  clips: Clip[];
  noiseSeconds: number;
  speechSeconds: number;
}

/** A program the corpus needs is not installed. */
export class MissingToolError extends Error {
  override readonly name = 'MissingToolError';
}

/** Throws {@link MissingToolError} unless `command` runs. */
function requireTool(command: string, debianPackage: string): void {
  const r = spawnSync(command, ['--version'], { stdio: 'ignore' });
  if (r.error) throw new MissingToolError(`${command} not found [package:${debianPackage}]: install it (apt-get install ${debianPackage}) to build the corpus`);
}

function run(command: string, args: string[]): void {
  const r = spawnSync(command, args, { encoding: 'utf8' });
  if (r.error || r.status !== 0) throw new Error(`${command} failed [status:${r.status}, args:${args.join(' ')}]: ${r.error?.message ?? r.stderr}`);
}

/** RMS of `x[from, to)`, linear (full scale 1). */
function rmsOf(x: Float64Array, from = 0, to = x.length): number {
  let s = 0;
  for (let i = from; i < to; i++) s += x[i] * x[i];
  return Math.sqrt(s / Math.max(1, to - from));
}

/** RMS of the loudest 32 ms window of `x` (hop 4 ms). */
function loudestWindowRms(x: Float64Array): number {
  const w = (CORPUS_RATE * 32) / 1000;
  let best = 0;
  for (let at = 0; at < Math.max(1, x.length - w + 1); at += w / 8) best = Math.max(best, rmsOf(x, at, Math.min(x.length, at + w)));
  return best;
}

const fromDb = (db: number): number => 10 ** (db / 20);

function toFloat(pcm: Int16Array): Float64Array {
  return Float64Array.from(pcm, (v) => v / 32768);
}

function toInt16(x: Float64Array): Int16Array {
  return Int16Array.from(x, (v) => Math.max(-32768, Math.min(32767, Math.round(v * 32768))));
}

/** `x` scaled so that `measure(x)` is `db` dBFS. */
function scaled(x: Float64Array, db: number, measure: (x: Float64Array) => number = rmsOf): Float64Array {
  const g = fromDb(db) / measure(x);
  return x.map((v) => v * g);
}

/** `what` added into `into` at sample `at` (clipped to `into`). */
function addAt(into: Float64Array, what: Float64Array, at: number): void {
  for (let i = 0; i < what.length && at + i < into.length; i++) if (at + i >= 0) into[at + i] += what[i];
}

/** Builds the files in `dir` and loads them. */
class Builder {
  readonly #dir: string;
  #n = 0;
  constructor(dir: string) {
    this.#dir = dir;
  }

  /** A new file name in the corpus folder (numbered in the order made). */
  file(stem: string): string {
    return path.join(this.#dir, `${String(this.#n++).padStart(3, '0')}-${stem}.wav`);
  }

  /** What espeak-ng says, at the corpus rate, with its leading and trailing silence. */
  speak(u: Omit<UtteranceSpec, 'id'>, stem: string): Float64Array {
    const raw = this.file(`${stem}-espeak`);
    const out = this.file(stem);
    run('espeak-ng', ['-v', u.voice, '-s', String(u.wpm), '-w', raw, u.text]);
    run('sox', [raw, '-r', String(CORPUS_RATE), '-b', '16', '-c', '1', out]);
    fs.rmSync(raw);
    return toFloat(loadWavFile(out, CORPUS_RATE).pcm);
  }

  /** `sox -n` with `effects` (a `synth` first), loaded. */
  synth(stem: string, effects: string[]): Float64Array {
    const out = this.file(stem);
    run('sox', ['-R', '-n', '-r', String(CORPUS_RATE), '-b', '16', '-c', '1', out, ...effects]);
    return toFloat(loadWavFile(out, CORPUS_RATE).pcm);
  }

  /** A clip as the detectors get it: written (for listening) and quantised to 16 bits. */
  keep(stem: string, x: Float64Array): Int16Array {
    const pcm = toInt16(x);
    writeWavFile(this.file(stem), pcm, CORPUS_RATE);
    return pcm;
  }
}

/** Bursts of the noise clips, [start s, length s]: a lone second of line, then bursts of 0.25 to 4 s (the last outlasts the noise floor's 3 s memory). */
const BURSTS: readonly [number, number][] = [
  [1, 0.25],
  [2.25, 0.6],
  [3.85, 1.5],
  [6, 4],
];

/** `src` gated to {@link BURSTS}, with 5 ms raised-cosine edges, scaled so the bursts' RMS is `db`. */
function bursts(src: Float64Array, db: number): Float64Array {
  const out = new Float64Array(CORPUS_RATE * NOISE_CLIP_S);
  const ramp = (CORPUS_RATE * 5) / 1000;
  let s = 0;
  let n = 0;
  for (const [at, len] of BURSTS) {
    const a = Math.round(at * CORPUS_RATE);
    const m = Math.round(len * CORPUS_RATE);
    for (let i = 0; i < m && a + i < out.length; i++) {
      const edge = Math.min(1, (i + 0.5) / ramp, (m - i - 0.5) / ramp);
      out[a + i] = src[(a + i) % src.length] * 0.5 * (1 - Math.cos(Math.PI * edge));
      s += out[a + i] * out[a + i];
      n++;
    }
  }
  const g = fromDb(db) / Math.sqrt(s / n);
  return out.map((v) => v * g);
}

/** `event` (scaled so its loudest 32 ms window is `db`) placed at each time of `at`, s. */
function events(event: Float64Array, db: number, at: number[]): Float64Array {
  const out = new Float64Array(CORPUS_RATE * NOISE_CLIP_S);
  const e = scaled(event, db, loudestWindowRms);
  for (const t of at) addAt(out, e, Math.round(t * CORPUS_RATE));
  return out;
}

/** Times from `from` to before `to`, `step` s apart. */
function every(from: number, to: number, step: number): number[] {
  const out: number[] = [];
  for (let t = from; t < to - 1e-9; t += step) out.push(+t.toFixed(4));
  return out;
}

/** Clicks: single ones every 0.5 s, and a second of crackle (a click every 40 ms) in between. */
const CLICK_TIMES = [...every(1, 5, 0.5), ...every(5.5, 6.5, 0.04), ...every(7, 10, 0.5)];
/** Knocks: three, 0.25 s apart, every 2 s. */
const KNOCK_TIMES = every(1, 10, 2).flatMap((t) => [t, t + 0.25, t + 0.5]);
/** Door slams (each about a second with its reverberation). */
const DOOR_TIMES = [1.5, 4.5, 7.5];

/** The espeak-ng utterance trimmed to its first and last sample at or above {@link ONSET_THRESHOLD}, at {@link SPEECH_DBFS}. */
function trimmed(x: Float64Array): Float64Array {
  const t = ONSET_THRESHOLD / 32768;
  let first = 0;
  while (first < x.length && Math.abs(x[first]) < t) first++;
  let last = x.length - 1;
  while (last > first && Math.abs(x[last]) < t) last--;
  return scaled(x.slice(first, last + 1), SPEECH_DBFS);
}

/**
 * Generate the corpus into a new temporary folder (the caller removes it) and load it.
 * @throws MissingToolError when espeak-ng or sox is not installed (no folder is left then, nor on any other error).
 */
export function buildCorpus(): Corpus {
  requireTool('espeak-ng', 'espeak-ng');
  requireTool('sox', 'sox');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vad-corpus-'));
  try {
    return generate(dir);
  } catch (err) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

function generate(dir: string): Corpus {
  const b = new Builder(dir);
  const clips: Clip[] = [];
  const sources = {
    white: b.synth('white', ['synth', '30', 'whitenoise', 'vol', '0.5']),
    pink: b.synth('pink', ['synth', '30', 'pinknoise', 'vol', '0.5']),
    brown: b.synth('brown', ['synth', '30', 'brownnoise', 'vol', '0.5']),
  };
  // The line: the last 10 s of the white source, never used for bursts (those start at 0).
  const hissSrc = sources.white.slice(sources.white.length - CORPUS_RATE * NOISE_CLIP_S);
  const line = (samples: number): Float64Array => {
    const h = scaled(hissSrc, LINE_HISS_DBFS);
    return Float64Array.from({ length: samples }, (_, i) => h[i % h.length]);
  };
  const click = b.synth('click', ['synth', '0.004', 'whitenoise', 'fade', 'q', '0.0005', '0.004', '0.0035']);
  const knock = b.synth('knock', ['synth', '0.15', 'brownnoise', 'lowpass', '1000', 'fade', 'l', '0.001', '0.15', '0.149']);
  const door = b.synth('door', ['synth', '0.6', 'brownnoise', 'lowpass', '400', 'fade', 'l', '0.003', '0.6', '0.59', 'pad', '0', '0.6', 'reverb', '50']);
  const babbleVoices = BABBLE.map((u, i) => b.speak(u, `babble-voice${i}`));
  const babbleSrc = new Float64Array(CORPUS_RATE * NOISE_CLIP_S);
  babbleVoices.forEach((v, k) => {
    const offset = Math.floor((k * v.length) / babbleVoices.length);
    for (let i = 0; i < babbleSrc.length; i++) babbleSrc[i] += v[(i + offset) % v.length];
  });
  const clipSamples = CORPUS_RATE * NOISE_CLIP_S;
  for (const type of NOISE_TYPES) {
    for (const db of NOISE_LEVELS_DBFS) {
      let x: Float64Array;
      if (type === 'white' || type === 'pink' || type === 'brown') x = bursts(sources[type], db);
      else if (type === 'clicks') x = events(click, db, CLICK_TIMES);
      else if (type === 'knocks') x = events(knock, db, KNOCK_TIMES);
      else if (type === 'door') x = events(door, db, DOOR_TIMES);
      else {
        // Babble after a second of line alone, then without pause.
        x = new Float64Array(clipSamples);
        addAt(x, scaled(babbleSrc.subarray(CORPUS_RATE), db), CORPUS_RATE);
      }
      const mixed = line(clipSamples).map((v, i) => v + x[i]);
      const name = `${type}${db}`;
      clips.push({ kind: 'noise', name, type, levelDbfs: db, pcm: b.keep(name, mixed) });
    }
  }
  const tail = Math.round(SPEECH_TAIL_S * CORPUS_RATE);
  for (const [k, u] of UTTERANCES.entries()) {
    const lead = Math.round(SPEECH_LEAD_S * CORPUS_RATE) + k * SPEECH_LEAD_STEP;
    const speech = trimmed(b.speak(u, u.id));
    for (const snrDb of [null, ...SNRS_DB]) {
      const x = line(lead + speech.length + tail);
      addAt(x, speech, lead);
      if (snrDb !== null) {
        // Pink noise from the first sample, so the line's floor is the noise when speech begins.
        const n = scaled(sources.pink.slice(0, x.length), SPEECH_DBFS - snrDb);
        for (let i = 0; i < x.length; i++) x[i] += n[i];
      }
      const condition = snrDb === null ? 'clean' : `snr${snrDb}`;
      const name = `${u.id}-${condition}`;
      clips.push({ kind: 'speech', name, utterance: u, condition, snrDb, onsetSample: lead, endSample: lead + speech.length, pcm: b.keep(name, x) });
    }
  }
  const seconds = (k: Clip['kind']): number => clips.filter((c) => c.kind === k).reduce((s, c) => s + c.pcm.length, 0) / CORPUS_RATE;
  return { dir, clips, noiseSeconds: seconds('noise'), speechSeconds: seconds('speech') };
}
