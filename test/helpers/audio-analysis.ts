/**
 * Audio assertions for recordings made by real peers: a small WAV reader (PCM16, µ-law, A-law, any
 * rate, any channel count, tolerant of headers left unfinished by a killed recorder), Goertzel
 * tone detection per 20 ms frame, tone spans ("1 kHz from ~X ms to ~Y ms"), RMS and a coarse
 * dominant-frequency scan.
 *
 * Levels are linear fractions of full scale (32768) unless named `*Dbfs`: `rms` of a full-scale
 * square wave is 1.0, a tone's `level` is its peak amplitude (a full-scale sine has level 1.0).
 */
import * as fs from 'node:fs';

/** A decoded WAV file. */
export interface WavAudio {
  /** Sample rate in Hz. */
  sampleRate: number;
  /** Channel count of the file. */
  channels: number;
  /** WAV format tag: 1 PCM, 6 A-law, 7 µ-law (after resolving WAVE_FORMAT_EXTENSIBLE). */
  formatTag: number;
  /** Mono PCM16 (channels averaged). */
  pcm: Int16Array;
  /** Per-channel PCM16 (one entry for mono files). */
  channelData: Int16Array[];
  /** Duration in ms. */
  durationMs: number;
  /** True when the header's data size did not match the file (recorder killed before closing it). */
  truncatedHeader: boolean;
}

/** One analysed frame. */
export interface ToneFrame {
  /** Frame start in ms. */
  startMs: number;
  /** Estimated peak amplitude of the tone (fraction of full scale). */
  level: number;
  /** Share of the frame's energy at the tone's frequency (0..1; ~1 for a pure tone). */
  purity: number;
  /** level >= minLevel and purity >= minPurity. */
  present: boolean;
}

/** A stretch of time in which a tone is present. */
export interface ToneSpan {
  /** Start in ms (frame-aligned). */
  startMs: number;
  /** End in ms (exclusive, frame-aligned). */
  endMs: number;
  /** Mean tone level over the span (fraction of full scale). */
  meanLevel: number;
}

/** Thresholds for tone detection. */
export interface ToneOptions {
  /** Analysis frame in ms (default 20, the bridge ptime). */
  frameMs?: number;
  /** Minimum tone amplitude (fraction of full scale) to count (default 0.01, about -40 dBFS). */
  minLevel?: number;
  /** Minimum share of frame energy at the frequency (default 0.5): rejects broadband noise and speech. */
  minPurity?: number;
}

/** Options for {@link findToneSpans}. */
export interface ToneSpanOptions extends ToneOptions {
  /** Gaps of absent frames up to this long are bridged (default 40 ms: jitter, a lost packet). */
  maxGapMs?: number;
  /** Spans shorter than this are dropped (default 60 ms). */
  minDurationMs?: number;
}

const WAVE_FORMAT_PCM = 1;
const WAVE_FORMAT_ALAW = 6;
const WAVE_FORMAT_MULAW = 7;
const WAVE_FORMAT_EXTENSIBLE = 0xfffe;

/** Read a WAV file (see {@link parseWav}). */
export function readWav(file: string): WavAudio {
  return parseWav(fs.readFileSync(file), file);
}

/**
 * Decode a WAV buffer: 16-bit PCM, 8-bit µ-law or A-law, any rate and channel count. A data chunk
 * whose declared size is 0 or runs past the end (a recorder that never finalised its header) is
 * read to the end of the buffer and flagged `truncatedHeader`.
 */
export function parseWav(buf: Buffer, name = '<buffer>'): WavAudio {
  if (buf.length < 12 || buf.toString('ascii', 0, 4) !== 'RIFF' || buf.toString('ascii', 8, 12) !== 'WAVE') {
    throw new TypeError(`not a RIFF/WAVE file [file:${name}, bytes:${buf.length}]`);
  }
  let off = 12;
  let fmt: { tag: number; channels: number; rate: number; bits: number; blockAlign: number } | undefined;
  while (off + 8 <= buf.length) {
    const id = buf.toString('ascii', off, off + 4);
    const size = buf.readUInt32LE(off + 4);
    const body = off + 8;
    if (id === 'fmt ') {
      let tag = buf.readUInt16LE(body);
      if (tag === WAVE_FORMAT_EXTENSIBLE && size >= 40) tag = buf.readUInt16LE(body + 24);
      fmt = {
        tag,
        channels: buf.readUInt16LE(body + 2),
        rate: buf.readUInt32LE(body + 4),
        blockAlign: buf.readUInt16LE(body + 12),
        bits: buf.readUInt16LE(body + 14),
      };
    } else if (id === 'data') {
      if (!fmt) throw new TypeError(`data chunk before fmt chunk [file:${name}]`);
      const avail = buf.length - body;
      const truncatedHeader = size === 0 || size > avail;
      const len = truncatedHeader ? avail : size;
      return decode(buf.subarray(body, body + len), fmt, name, truncatedHeader);
    }
    off = body + size + (size & 1);
  }
  throw new TypeError(`no data chunk [file:${name}]`);
}

function decode(
  data: Buffer,
  fmt: { tag: number; channels: number; rate: number; bits: number; blockAlign: number },
  name: string,
  truncatedHeader: boolean,
): WavAudio {
  const { tag, channels, rate, bits } = fmt;
  if (channels < 1 || rate < 1) throw new TypeError(`bad fmt chunk [file:${name}, channels:${channels}, rate:${rate}]`);
  let decodeSample: (i: number) => number;
  let bytesPerSample: number;
  if (tag === WAVE_FORMAT_PCM && bits === 16) {
    bytesPerSample = 2;
    decodeSample = (i) => data.readInt16LE(i * 2);
  } else if ((tag === WAVE_FORMAT_MULAW || tag === WAVE_FORMAT_ALAW) && bits === 8) {
    bytesPerSample = 1;
    const table = tag === WAVE_FORMAT_MULAW ? ULAW_TABLE : ALAW_TABLE;
    decodeSample = (i) => table[data[i]];
  } else {
    throw new TypeError(`unsupported WAV encoding [file:${name}, formatTag:${tag}, bits:${bits}]`);
  }
  const frames = Math.floor(data.length / (bytesPerSample * channels));
  const channelData = Array.from({ length: channels }, () => new Int16Array(frames));
  const pcm = new Int16Array(frames);
  for (let f = 0; f < frames; f++) {
    let sum = 0;
    for (let c = 0; c < channels; c++) {
      const s = decodeSample(f * channels + c);
      channelData[c][f] = s;
      sum += s;
    }
    pcm[f] = Math.round(sum / channels);
  }
  return { sampleRate: rate, channels, formatTag: tag, pcm, channelData, durationMs: (frames * 1000) / rate, truncatedHeader };
}

const ULAW_TABLE = buildTable((u) => {
  const x = ~u & 0xff;
  const t = (((x & 0x0f) << 3) + 0x84) << ((x & 0x70) >> 4);
  return x & 0x80 ? 0x84 - t : t - 0x84;
});

const ALAW_TABLE = buildTable((a) => {
  const x = a ^ 0x55;
  const seg = (x & 0x70) >> 4;
  let t = (x & 0x0f) << 4;
  t = seg === 0 ? t + 8 : seg === 1 ? t + 0x108 : (t + 0x108) << (seg - 1);
  return x & 0x80 ? t : -t;
});

function buildTable(f: (b: number) => number): Int16Array {
  const t = new Int16Array(256);
  for (let i = 0; i < 256; i++) t[i] = f(i);
  return t;
}

function clampRange(pcm: Int16Array, start: number, len: number): [number, number] {
  const s = Math.max(0, Math.min(pcm.length, Math.floor(start)));
  const e = Math.max(s, Math.min(pcm.length, Math.floor(start + len)));
  return [s, e];
}

/**
 * Goertzel estimate of the peak amplitude (fraction of full scale) of `freq` Hz in
 * `pcm[start, start+len)` at `sampleRate`, Hann-windowed so neighbouring tones leak less.
 * A full-scale sine at `freq` gives ~1.0.
 */
export function goertzel(pcm: Int16Array, start: number, len: number, freq: number, sampleRate: number): number {
  const [s, e] = clampRange(pcm, start, len);
  const n = e - s;
  if (n < 2) return 0;
  const { w, sum } = hann(n);
  const coeff = 2 * Math.cos((2 * Math.PI * freq) / sampleRate);
  let s1 = 0;
  let s2 = 0;
  for (let i = 0; i < n; i++) {
    const s0 = pcm[s + i] * w[i] + coeff * s1 - s2;
    s2 = s1;
    s1 = s0;
  }
  const power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
  return (2 * Math.sqrt(Math.max(0, power))) / sum / 32768;
}

/** Hann windows by length; a few lengths recur (frame sizes), so a small cache pays. */
const hannCache = new Map<number, { w: Float64Array; sum: number }>();
const HANN_CACHE_MAX = 32;

function hann(n: number): { w: Float64Array; sum: number } {
  let h = hannCache.get(n);
  if (!h) {
    const w = new Float64Array(n);
    let sum = 0;
    for (let i = 0; i < n; i++) {
      w[i] = 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / (n - 1));
      sum += w[i];
    }
    h = { w, sum };
    if (hannCache.size >= HANN_CACHE_MAX) hannCache.delete(hannCache.keys().next().value as number);
    hannCache.set(n, h);
  }
  return h;
}

/** RMS of `pcm[start, start+len)` (default: all) as a fraction of full scale. */
export function rms(pcm: Int16Array, start = 0, len = pcm.length): number {
  const [s, e] = clampRange(pcm, start, len);
  if (e === s) return 0;
  let sum = 0;
  for (let i = s; i < e; i++) sum += (pcm[i] / 32768) ** 2;
  return Math.sqrt(sum / (e - s));
}

/** Peak absolute sample of `pcm` as a fraction of full scale. */
export function peak(pcm: Int16Array): number {
  let p = 0;
  for (const v of pcm) p = Math.max(p, Math.abs(v));
  return p / 32768;
}

/** A linear level (fraction of full scale) in dBFS; -Infinity for 0. */
export function toDbfs(level: number): number {
  return 20 * Math.log10(level);
}

/** RMS level in dBFS (full-scale square = 0 dBFS, full-scale sine ≈ -3 dBFS). */
export function rmsDbfs(pcm: Int16Array, start = 0, len = pcm.length): number {
  return toDbfs(rms(pcm, start, len));
}

/** Per-frame presence of a `freq` Hz tone (default 20 ms frames; a trailing partial frame is ignored). */
export function toneFrames(pcm: Int16Array, sampleRate: number, freq: number, opts: ToneOptions = {}): ToneFrame[] {
  const frameMs = opts.frameMs ?? 20;
  const minLevel = opts.minLevel ?? 0.01;
  const minPurity = opts.minPurity ?? 0.5;
  const n = Math.round((sampleRate * frameMs) / 1000);
  if (n < 2) throw new TypeError(`analysis frame too short [frameMs:${frameMs}, sampleRate:${sampleRate}]`);
  const out: ToneFrame[] = [];
  for (let start = 0; start + n <= pcm.length; start += n) {
    const level = goertzel(pcm, start, n, freq, sampleRate);
    const r = rms(pcm, start, n);
    // A sine of peak A has mean power A²/2: the tone's share of the frame's power.
    const purity = r > 0 ? Math.min(1, (level * level) / 2 / (r * r)) : 0;
    out.push({ startMs: (start * 1000) / sampleRate, level, purity, present: level >= minLevel && purity >= minPurity });
  }
  return out;
}

/**
 * Stretches where a `freq` Hz tone is present: frames from {@link toneFrames}, gaps up to
 * `maxGapMs` bridged, spans shorter than `minDurationMs` dropped. Times are frame-aligned, so
 * assert with a slack of at least one frame plus the path's jitter.
 */
export function findToneSpans(pcm: Int16Array, sampleRate: number, freq: number, opts: ToneSpanOptions = {}): ToneSpan[] {
  const frameMs = opts.frameMs ?? 20;
  const maxGapMs = opts.maxGapMs ?? 40;
  const minDurationMs = opts.minDurationMs ?? 60;
  const frames = toneFrames(pcm, sampleRate, freq, opts);
  const spans: { start: number; end: number; levels: number[] }[] = [];
  let cur: { start: number; end: number; levels: number[] } | undefined;
  for (const f of frames) {
    if (!f.present) continue;
    if (cur && f.startMs - cur.end <= maxGapMs) {
      cur.end = f.startMs + frameMs;
      cur.levels.push(f.level);
    } else {
      cur = { start: f.startMs, end: f.startMs + frameMs, levels: [f.level] };
      spans.push(cur);
    }
  }
  return spans
    .filter((s) => s.end - s.start >= minDurationMs)
    .map((s) => ({ startMs: s.start, endMs: s.end, meanLevel: s.levels.reduce((a, b) => a + b, 0) / s.levels.length }));
}

/** Total ms in which the tone is present (sum of {@link findToneSpans}). */
export function toneDurationMs(pcm: Int16Array, sampleRate: number, freq: number, opts: ToneSpanOptions = {}): number {
  return findToneSpans(pcm, sampleRate, freq, opts).reduce((sum, s) => sum + s.endMs - s.startMs, 0);
}

/** Options for {@link dominantFrequency}. */
export interface DominantFrequencyOptions {
  /** First sample analysed (default 0). */
  start?: number;
  /** Samples analysed (default: up to 2 s from start; the refinement runs over all of them). */
  len?: number;
  /** Lowest frequency scanned in Hz (default 50). */
  minHz?: number;
  /** Highest frequency scanned in Hz (default 0.45 × sampleRate). */
  maxHz?: number;
  /** Coarse scan step in Hz (default 10); the best bin is then refined to 1 Hz. */
  stepHz?: number;
}

/**
 * The strongest frequency in a window (coarse Goertzel scan, refined to 1 Hz), with its level;
 * `{ freq: 0, level: 0 }` for silence.
 */
export function dominantFrequency(
  pcm: Int16Array,
  sampleRate: number,
  opts: DominantFrequencyOptions = {},
): { freq: number; level: number } {
  const start = opts.start ?? 0;
  const len = opts.len ?? Math.min(pcm.length - start, 2 * sampleRate);
  const minHz = opts.minHz ?? 50;
  const maxHz = opts.maxHz ?? 0.45 * sampleRate;
  const step = opts.stepHz ?? 10;
  // Coarse scan on a window whose Hann main lobe (±2 bins) spans more than the step, so no
  // tone falls between scanned frequencies; the refinement then uses the whole window.
  const coarseLen = Math.min(len, Math.ceil((2 * sampleRate) / step));
  // ...taken where the signal is loudest, so leading silence cannot hide the tone.
  let coarseStart = start;
  let loudest = -1;
  for (let s = start; s + coarseLen <= start + len; s += Math.max(1, coarseLen >> 1)) {
    const r = rms(pcm, s, coarseLen);
    if (r > loudest) {
      loudest = r;
      coarseStart = s;
    }
  }
  let coarse = { freq: 0, level: 0 };
  for (let f = minHz; f <= maxHz; f += step) {
    const level = goertzel(pcm, coarseStart, coarseLen, f, sampleRate);
    if (level > coarse.level) coarse = { freq: f, level };
  }
  if (coarse.level === 0) return coarse;
  let best = { freq: 0, level: 0 };
  for (let f = Math.max(minHz, coarse.freq - 2 * step); f <= Math.min(maxHz, coarse.freq + 2 * step); f += 1) {
    const level = goertzel(pcm, start, len, f, sampleRate);
    if (level > best.level) best = { freq: f, level };
  }
  return best;
}
