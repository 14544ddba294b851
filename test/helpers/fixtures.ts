/**
 * Audio fixtures generated at test time with sox (never committed): tones, silence, sequences of
 * both, G.711 (µ-law / A-law) WAVs and odd formats (stereo 44.1 kHz). Files go into tmp dirs that
 * are removed by the harness cleanup (see {@link useHarnessCleanup} in proc.ts).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { onCleanup, runCommand } from './proc';

/** Sample encodings a fixture can be written in. */
export type FixtureEncoding = 'pcm16' | 'ulaw' | 'alaw';

/** Format of a generated WAV. */
export interface FixtureFormat {
  /** Sample rate in Hz (default 8000). */
  sampleRate?: number;
  /** Channel count (default 1; every channel carries the same signal). */
  channels?: number;
  /** Sample encoding (default `pcm16`; `ulaw`/`alaw` write 8-bit G.711 WAVs). */
  encoding?: FixtureEncoding;
}

/** One segment of a generated sequence. */
export type Segment =
  | {
      /** Tone frequency in Hz. */
      toneHz: number;
      /** Duration in ms. */
      ms: number;
      /** Peak amplitude as a fraction of full scale (default 0.5, about -6 dBFS). */
      amplitude?: number;
    }
  | {
      /** Silence of this many ms. */
      silenceMs: number;
    };

/** sox binary (override with `$SOX_BIN`). */
const SOX = process.env.SOX_BIN ?? 'sox';
/** `-D`: no dither, so silence is exact zeros and tones carry no added noise. */
const SOX_GLOBAL = ['-D'];
const TMP_PREFIX = 'sip-ai-agent-test-';

/**
 * Create a fresh tmp dir (under the OS tmp dir) that the harness cleanup removes.
 * Set `KEEP_TEST_TMP=1` to keep it for post-mortems.
 */
export async function makeTmpDir(prefix = ''): Promise<string> {
  const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), TMP_PREFIX + prefix));
  onCleanup(async () => {
    if (process.env.KEEP_TEST_TMP === '1') return;
    await fs.promises.rm(dir, { recursive: true, force: true });
  });
  return dir;
}

/** Shorthand for {@link makeTmpDir} for fixture files. */
export function tmpDir(prefix = 'fixtures-'): Promise<string> {
  return makeTmpDir(prefix);
}

function formatArgs(fmt: FixtureFormat): string[] {
  const rate = fmt.sampleRate ?? 8000;
  const channels = fmt.channels ?? 1;
  const enc = fmt.encoding ?? 'pcm16';
  if (!Number.isInteger(rate) || rate < 1000 || rate > 192_000) {
    throw new TypeError(`fixture sample rate out of range [sampleRate:${rate}]`);
  }
  if (!Number.isInteger(channels) || channels < 1 || channels > 8) {
    throw new TypeError(`fixture channel count out of range [channels:${channels}]`);
  }
  const encArgs =
    enc === 'pcm16' ? ['-b', '16', '-e', 'signed-integer'] : ['-b', '8', '-e', enc === 'ulaw' ? 'u-law' : 'a-law'];
  return ['-r', String(rate), '-c', String(channels), ...encArgs];
}

function checkMs(ms: number, what: string): void {
  if (!(Number.isFinite(ms) && ms > 0 && ms <= 600_000)) throw new TypeError(`${what} out of range [ms:${ms}]`);
}

/** Write a sine tone WAV; resolves with its path. */
export async function makeTone(
  file: string,
  toneHz: number,
  ms: number,
  opts: FixtureFormat & { amplitude?: number } = {},
): Promise<string> {
  checkMs(ms, 'tone duration');
  const amplitude = opts.amplitude ?? 0.5;
  if (!(amplitude > 0 && amplitude <= 1)) throw new TypeError(`tone amplitude out of range [amplitude:${amplitude}]`);
  if (!(toneHz > 0)) throw new TypeError(`tone frequency out of range [toneHz:${toneHz}]`);
  await runCommand('sox', SOX, [...SOX_GLOBAL, 
    '-n',
    ...formatArgs(opts),
    file,
    'synth',
    (ms / 1000).toFixed(4),
    'sine',
    String(toneHz),
    'vol',
    amplitude.toFixed(4),
  ]);
  return file;
}

/** Write a silent WAV; resolves with its path. */
export async function makeSilence(file: string, ms: number, opts: FixtureFormat = {}): Promise<string> {
  checkMs(ms, 'silence duration');
  await runCommand('sox', SOX, [...SOX_GLOBAL, '-n', ...formatArgs(opts), file, 'trim', '0', (ms / 1000).toFixed(4)]);
  return file;
}

/**
 * Write a sequence of tones and silences (e.g. tone 500 ms, silence 300 ms, tone 500 ms) as one
 * WAV; segment boundaries land exactly where their durations say.
 */
export async function makeSequence(file: string, segments: readonly Segment[], opts: FixtureFormat = {}): Promise<string> {
  if (segments.length === 0) throw new TypeError('makeSequence needs at least one segment');
  const dir = await fs.promises.mkdtemp(path.join(path.dirname(file), '.seq-'));
  try {
    // Parts are rendered as PCM16 at the target rate and encoded once at the end, so G.711
    // output is not transcoded twice.
    const partFmt: FixtureFormat = { sampleRate: opts.sampleRate, channels: opts.channels, encoding: 'pcm16' };
    const parts: string[] = [];
    for (const [i, seg] of segments.entries()) {
      const part = path.join(dir, `part${i}.wav`);
      if ('toneHz' in seg) await makeTone(part, seg.toneHz, seg.ms, { ...partFmt, amplitude: seg.amplitude });
      else await makeSilence(part, seg.silenceMs, partFmt);
      parts.push(part);
    }
    await runCommand('sox', SOX, [...SOX_GLOBAL, ...parts, ...formatArgs(opts), file]);
  } finally {
    await fs.promises.rm(dir, { recursive: true, force: true });
  }
  return file;
}

/** Total duration in ms of a segment list. */
export function sequenceMs(segments: readonly Segment[]): number {
  return segments.reduce((sum, s) => sum + ('toneHz' in s ? s.ms : s.silenceMs), 0);
}

/** Convert any audio file sox reads into a WAV of the given format; resolves with the output path. */
export async function convertWav(input: string, output: string, opts: FixtureFormat = {}): Promise<string> {
  await runCommand('sox', SOX, [...SOX_GLOBAL, input, ...formatArgs(opts), output]);
  return output;
}

/** A standard set of fixtures for SIP tests, all in one tmp dir. */
export interface StandardFixtures {
  /** The directory holding them (removed by harness cleanup). */
  dir: string;
  /** 1 kHz, 3 s, 8 kHz mono PCM16. */
  tone1k8k: string;
  /** 1 kHz, 3 s, 16 kHz mono PCM16. */
  tone1k16k: string;
  /** 440 Hz, 3 s, 8 kHz mono PCM16. */
  tone440_8k: string;
  /** 1 kHz 500 ms, silence 500 ms, 1 kHz 500 ms; 8 kHz mono PCM16. */
  toneGapTone8k: string;
  /** 1 kHz, 1 s, 8 kHz µ-law. */
  tone1kUlaw: string;
  /** 1 kHz, 1 s, 8 kHz A-law. */
  tone1kAlaw: string;
  /** 1 kHz, 1 s, 44.1 kHz stereo PCM16. */
  tone1kStereo44k: string;
  /** 1 s of silence, 8 kHz mono PCM16. */
  silence8k: string;
}

/** Generate {@link StandardFixtures} into a fresh tmp dir. */
export async function makeStandardFixtures(): Promise<StandardFixtures> {
  const dir = await tmpDir();
  const f = (name: string): string => path.join(dir, name);
  return {
    dir,
    tone1k8k: await makeTone(f('tone1k-8k.wav'), 1000, 3000),
    tone1k16k: await makeTone(f('tone1k-16k.wav'), 1000, 3000, { sampleRate: 16000 }),
    tone440_8k: await makeTone(f('tone440-8k.wav'), 440, 3000),
    toneGapTone8k: await makeSequence(f('tone-gap-tone-8k.wav'), [
      { toneHz: 1000, ms: 500 },
      { silenceMs: 500 },
      { toneHz: 1000, ms: 500 },
    ]),
    tone1kUlaw: await makeTone(f('tone1k-ulaw.wav'), 1000, 1000, { encoding: 'ulaw' }),
    tone1kAlaw: await makeTone(f('tone1k-alaw.wav'), 1000, 1000, { encoding: 'alaw' }),
    tone1kStereo44k: await makeTone(f('tone1k-stereo-44k.wav'), 1000, 1000, { sampleRate: 44100, channels: 2 }),
    silence8k: await makeSilence(f('silence-8k.wav'), 1000),
  };
}
