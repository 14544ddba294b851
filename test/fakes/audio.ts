/**
 * Small audio helpers private to the fake Realtime server: G.711 codecs, PCM16 <-> base64,
 * tone synthesis and a 24 kHz -> 8 kHz decimator. Kept separate from src/audio on purpose, so the
 * fake and the product cannot share a codec bug.
 */
import { AI_SAMPLE_RATE, G711_SAMPLE_RATE } from '../../src/audio/format';

/** Audio formats of the GA protocol (`audio.input.format.type` / `audio.output.format.type`). */
export type WireFormat = 'audio/pcm' | 'audio/pcmu' | 'audio/pcma';

/** Native sample rate of a wire format. */
export function wireSampleRate(format: WireFormat): number {
  return format === 'audio/pcm' ? AI_SAMPLE_RATE : G711_SAMPLE_RATE;
}

const ULAW_BIAS = 0x84;
const ULAW_CLIP = 32635;

/** G.711 µ-law encode of one 16-bit sample (ITU-T G.711, Sun reference algorithm). */
export function linearToUlaw(sample: number): number {
  let s = sample | 0;
  const sign = s < 0 ? 0x80 : 0;
  if (s < 0) s = -s;
  if (s > ULAW_CLIP) s = ULAW_CLIP;
  s += ULAW_BIAS;
  let exponent = 7;
  for (let mask = 0x4000; (s & mask) === 0 && exponent > 0; mask >>= 1) exponent--;
  const mantissa = (s >> (exponent + 3)) & 0x0f;
  return ~(sign | (exponent << 4) | mantissa) & 0xff;
}

/** G.711 µ-law decode of one byte to a 16-bit sample. */
export function ulawToLinear(byte: number): number {
  const u = ~byte & 0xff;
  const sign = u & 0x80;
  const exponent = (u >> 4) & 0x07;
  const mantissa = u & 0x0f;
  const magnitude = (((mantissa << 3) + ULAW_BIAS) << exponent) - ULAW_BIAS;
  return sign ? -magnitude : magnitude;
}

const ALAW_SEG_END = [0x1f, 0x3f, 0x7f, 0xff, 0x1ff, 0x3ff, 0x7ff, 0xfff];

/** G.711 A-law encode of one 16-bit sample (Sun reference algorithm, 13-bit magnitude). */
export function linearToAlaw(sample: number): number {
  let pcm = (sample | 0) >> 3;
  let mask: number;
  if (pcm >= 0) {
    mask = 0xd5;
  } else {
    mask = 0x55;
    pcm = -pcm - 1;
  }
  let seg = 0;
  while (seg < 8 && pcm > ALAW_SEG_END[seg]!) seg++;
  if (seg >= 8) return 0x7f ^ mask;
  let aval = seg << 4;
  aval |= seg < 2 ? (pcm >> 1) & 0x0f : (pcm >> seg) & 0x0f;
  return aval ^ mask;
}

/** G.711 A-law decode of one byte to a 16-bit sample. */
export function alawToLinear(byte: number): number {
  const a = byte ^ 0x55;
  let t = (a & 0x0f) << 4;
  const seg = (a & 0x70) >> 4;
  if (seg === 0) t += 8;
  else if (seg === 1) t += 0x108;
  else t = (t + 0x108) << (seg - 1);
  return a & 0x80 ? t : -t;
}

/** Decode a base64 payload in `format` to PCM at the format's native rate. */
export function decodeWire(base64: string, format: WireFormat): Int16Array {
  const bytes = Buffer.from(base64, 'base64');
  if (format === 'audio/pcm') {
    const n = bytes.length >> 1;
    const out = new Int16Array(n);
    for (let i = 0; i < n; i++) out[i] = bytes.readInt16LE(i * 2);
    return out;
  }
  const decode = format === 'audio/pcmu' ? ulawToLinear : alawToLinear;
  const out = new Int16Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) out[i] = decode(bytes[i]!);
  return out;
}

/** Encode PCM already at the format's native rate to a base64 payload. */
export function encodeWire(samples: Int16Array, format: WireFormat): string {
  if (format === 'audio/pcm') {
    const buf = Buffer.alloc(samples.length * 2);
    for (let i = 0; i < samples.length; i++) buf.writeInt16LE(samples[i]!, i * 2);
    return buf.toString('base64');
  }
  const encode = format === 'audio/pcmu' ? linearToUlaw : linearToAlaw;
  const buf = Buffer.alloc(samples.length);
  for (let i = 0; i < samples.length; i++) buf[i] = encode(samples[i]!);
  return buf.toString('base64');
}

/** Bytes one sample takes on the wire. */
export function wireBytesPerSample(format: WireFormat): number {
  return format === 'audio/pcm' ? 2 : 1;
}

/** A synthetic tone: frequency in Hz (0 = silence), duration, peak amplitude as a fraction of full scale. */
export interface ToneSpec {
  toneHz: number;
  ms: number;
  /** Peak amplitude 0..1; default 0.3 (about -13.5 dBFS RMS). */
  amplitude?: number;
}

/** Synthesize a tone at `sampleRate` (default 24 kHz) with 5 ms raised-cosine edges to avoid clicks. */
export function synthTone(spec: ToneSpec, sampleRate: number = AI_SAMPLE_RATE): Int16Array {
  const n = Math.max(0, Math.round((spec.ms * sampleRate) / 1000));
  const out = new Int16Array(n);
  if (spec.toneHz <= 0) return out;
  const peak = Math.max(0, Math.min(1, spec.amplitude ?? 0.3)) * 32767;
  const edge = Math.min(Math.floor(n / 2), Math.round(0.005 * sampleRate));
  const w = (2 * Math.PI * spec.toneHz) / sampleRate;
  for (let i = 0; i < n; i++) {
    let g = 1;
    if (i < edge) g = 0.5 - 0.5 * Math.cos((Math.PI * i) / edge);
    else if (i >= n - edge) g = 0.5 - 0.5 * Math.cos((Math.PI * (n - 1 - i)) / edge);
    out[i] = Math.round(peak * g * Math.sin(w * i));
  }
  return out;
}

/** RMS level of `samples` in dBFS (-Infinity for digital silence). */
export function rmsDbfs(samples: Int16Array, start = 0, end = samples.length): number {
  if (end <= start) return -Infinity;
  let acc = 0;
  for (let i = start; i < end; i++) {
    const v = samples[i]! / 32768;
    acc += v * v;
  }
  return 10 * Math.log10(acc / (end - start));
}

/** Concatenate PCM chunks. */
export function concatPcm(chunks: readonly Int16Array[]): Int16Array {
  let total = 0;
  for (const c of chunks) total += c.length;
  const out = new Int16Array(total);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}

const DECIM_TAPS = buildLowpass(31, 3400 / AI_SAMPLE_RATE);

function buildLowpass(taps: number, cutoff: number): Float64Array {
  const h = new Float64Array(taps);
  const mid = (taps - 1) / 2;
  let sum = 0;
  for (let i = 0; i < taps; i++) {
    const x = i - mid;
    const sinc = x === 0 ? 2 * cutoff : Math.sin(2 * Math.PI * cutoff * x) / (Math.PI * x);
    const hamming = 0.54 - 0.46 * Math.cos((2 * Math.PI * i) / (taps - 1));
    h[i] = sinc * hamming;
    sum += h[i]!;
  }
  for (let i = 0; i < taps; i++) h[i]! /= sum;
  return h;
}

/**
 * Streaming 24 kHz -> 8 kHz decimator (31-tap windowed-sinc low-pass, keep every third sample).
 * One instance per output item so chunk boundaries leave no seams.
 */
export class Decimator24to8 {
  private readonly history = new Float64Array(DECIM_TAPS.length);
  private pos = 0;

  /** Feed 24 kHz samples, get the 8 kHz samples they complete. */
  process(input: Int16Array): Int16Array {
    const taps = DECIM_TAPS.length;
    const out: number[] = [];
    for (let i = 0; i < input.length; i++) {
      this.history.copyWithin(0, 1);
      this.history[taps - 1] = input[i]!;
      if (this.pos % 3 === 0) {
        let acc = 0;
        for (let k = 0; k < taps; k++) acc += this.history[k]! * DECIM_TAPS[taps - 1 - k]!;
        out.push(Math.max(-32768, Math.min(32767, Math.round(acc))));
      }
      this.pos++;
    }
    return Int16Array.from(out);
  }
}
