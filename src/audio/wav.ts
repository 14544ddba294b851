/**
 * WAV file I/O. loadWavFile() reads a prompt (e.g. the greeting) once at startup and converts it to
 * mono Int16 at the bridge rate, so nothing is converted per call. Any problem is a ConfigError
 * naming the config key, the file and the reason.
 */
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { WaveFile } from 'wavefile';
import { ConfigError } from '../util/errors';
import { aLawToLinear, muLawToLinear } from './g711';
import { Resampler } from './Resampler';

/** Lowest source sample rate accepted by {@link loadWavFile}, Hz. */
export const WAV_MIN_SAMPLE_RATE = 8000;
/** Highest source sample rate accepted by {@link loadWavFile}, Hz. */
export const WAV_MAX_SAMPLE_RATE = 48000;
/** Default cap on the file size read by {@link loadWavFile}. */
export const WAV_DEFAULT_MAX_BYTES = 64 * 1024 * 1024;
/** Default cap on the duration accepted by {@link loadWavFile}, ms (10 minutes). */
export const WAV_DEFAULT_MAX_DURATION_MS = 10 * 60 * 1000;

/** Sample encodings {@link loadWavFile} understands. */
export type WavEncoding = 'pcm' | 'float' | 'mulaw' | 'alaw';

/** Options for {@link loadWavFile}. */
export interface LoadWavOptions {
  /** Config key the path came from, prefixed to error messages (e.g. `greeting.file`). */
  configPath?: string;
  /** Refuse larger files (default {@link WAV_DEFAULT_MAX_BYTES}). */
  maxBytes?: number;
  /** Refuse longer audio (default {@link WAV_DEFAULT_MAX_DURATION_MS}). */
  maxDurationMs?: number;
}

/** What the file held before conversion. */
export interface WavSource {
  /** Path as given. */
  path: string;
  /** Sample encoding. */
  encoding: WavEncoding;
  /** Bits per sample in the file. */
  bitsPerSample: number;
  /** Channels in the file (downmixed to mono on load). */
  channels: number;
  /** Sample rate of the file, Hz. */
  sampleRate: number;
  /** Duration of the file, ms. */
  durationMs: number;
}

/** A loaded prompt: mono Int16 at the requested rate. */
export interface LoadedWav {
  /** Mono samples at `sampleRate`. */
  pcm: Int16Array;
  /** The requested target rate, Hz. */
  sampleRate: number;
  /** Duration of `pcm`, ms. */
  durationMs: number;
  /** What the file held. */
  source: WavSource;
}

/** WAVE_FORMAT_* codes (RFC 2361). */
const FORMAT_PCM = 1;
const FORMAT_FLOAT = 3;
const FORMAT_ALAW = 6;
const FORMAT_MULAW = 7;
const FORMAT_EXTENSIBLE = 0xfffe;

interface FmtChunk {
  audioFormat: number;
  numChannels: number;
  sampleRate: number;
  bitsPerSample: number;
  blockAlign: number;
  subformat?: number[];
}

/**
 * Read a WAV file and convert it once to mono Int16 at `targetRate`: 8–48 kHz; mono or stereo
 * (averaged); 8/16/24/32-bit PCM, 32/64-bit float, µ-law or A-law; other rates resampled with the
 * offline (alias-free, 80 dB) filter, delay-compensated so the audio starts at sample 0.
 * @throws ConfigError naming `configPath`, the file and the reason, for anything unreadable or unsupported.
 * @throws RangeError for a non-integer or non-positive `targetRate` (a programming error).
 */
export function loadWavFile(path: string, targetRate: number, options: LoadWavOptions = {}): LoadedWav {
  if (!Number.isInteger(targetRate) || targetRate <= 0) throw new RangeError(`invalid targetRate [targetRate:${targetRate}]`);
  const fail = (reason: string, cause?: unknown): ConfigError =>
    new ConfigError([{ path: options.configPath ?? '', message: `${path}: ${reason}` }], { cause });
  const maxBytes = options.maxBytes ?? WAV_DEFAULT_MAX_BYTES;
  const maxDurationMs = options.maxDurationMs ?? WAV_DEFAULT_MAX_DURATION_MS;

  let bytes: Buffer;
  try {
    const st = statSync(path);
    if (!st.isFile()) throw fail('not a regular file');
    if (st.size > maxBytes) throw fail(`file too large (${st.size} bytes, limit ${maxBytes})`);
    bytes = readFileSync(path);
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw fail(`cannot read file (${(err as NodeJS.ErrnoException).code ?? String(err)})`, err);
  }
  const magic = bytes.subarray(0, 4).toString('latin1');
  if (bytes.length < 12 || !['RIFF', 'RIFX', 'RF64'].includes(magic)) throw fail('not a WAV file (no RIFF header)');
  if (bytes.subarray(8, 12).toString('latin1') !== 'WAVE') throw fail('not a WAV file (RIFF type is not WAVE)');

  let wav: WaveFile;
  try {
    wav = new WaveFile(bytes);
  } catch (err) {
    throw fail(`unreadable WAV (${err instanceof Error ? err.message : String(err)})`, err);
  }
  const fmt = wav.fmt as FmtChunk;
  const format = fmt.audioFormat === FORMAT_EXTENSIBLE && fmt.subformat?.length ? fmt.subformat[0] & 0xffff : fmt.audioFormat;
  const bits = fmt.bitsPerSample;
  const channels = fmt.numChannels;
  const rate = fmt.sampleRate;
  const encoding = encodingOf(format, bits);
  if (!encoding) throw fail(`unsupported WAV encoding (format 0x${format.toString(16).padStart(4, '0')}, ${bits} bits); use PCM, float, µ-law or A-law`);
  if (channels !== 1 && channels !== 2) throw fail(`unsupported channel count ${channels} (mono or stereo)`);
  if (!Number.isInteger(rate) || rate < WAV_MIN_SAMPLE_RATE || rate > WAV_MAX_SAMPLE_RATE) {
    throw fail(`unsupported sample rate ${rate} Hz (${WAV_MIN_SAMPLE_RATE}-${WAV_MAX_SAMPLE_RATE} Hz)`);
  }
  const data = (wav.data as { samples?: Uint8Array }).samples ?? new Uint8Array(0);
  const frameBytes = (bits / 8) * channels;
  const frames = Math.floor(data.length / frameBytes);
  if (frames === 0) throw fail('no audio samples');
  const sourceMs = (frames * 1000) / rate;
  if (sourceMs > maxDurationMs) throw fail(`too long (${Math.round(sourceMs)} ms, limit ${maxDurationMs} ms)`);

  const mono = decodeMono(data, frames, channels, encoding, bits, wav.container === 'RIFX');
  let pcm: Int16Array;
  if (rate === targetRate) {
    pcm = mono;
  } else {
    let r: Resampler;
    try {
      r = Resampler.create(rate, targetRate, { design: 'offline' });
    } catch (err) {
      throw fail(`cannot resample ${rate} Hz to ${targetRate} Hz (resave it at a common rate)`, err);
    }
    pcm = resampleWhole(r, mono);
  }
  return {
    pcm,
    sampleRate: targetRate,
    durationMs: (pcm.length * 1000) / targetRate,
    source: { path, encoding, bitsPerSample: bits, channels, sampleRate: rate, durationMs: sourceMs },
  };
}

/**
 * Write 16-bit PCM as a WAV file (interleaved when `channels` is 2), synchronously.
 * @throws RangeError on a bad channel count, rate, or a sample count that is not a whole number of frames.
 */
export function writeWavFile(path: string, pcm: Int16Array, sampleRate: number, channels = 1): void {
  if (channels !== 1 && channels !== 2) throw new RangeError(`invalid channel count [channels:${channels}]`);
  if (!Number.isInteger(sampleRate) || sampleRate <= 0) throw new RangeError(`invalid sampleRate [sampleRate:${sampleRate}]`);
  if (pcm.length % channels !== 0) throw new RangeError(`sample count is not a whole number of frames [samples:${pcm.length}, channels:${channels}]`);
  const wav = new WaveFile();
  wav.fromScratch(channels, sampleRate, '16', pcm);
  writeFileSync(path, wav.toBuffer());
}

function encodingOf(format: number, bits: number): WavEncoding | undefined {
  if (format === FORMAT_PCM && (bits === 8 || bits === 16 || bits === 24 || bits === 32)) return 'pcm';
  if (format === FORMAT_FLOAT && (bits === 32 || bits === 64)) return 'float';
  if (format === FORMAT_MULAW && bits === 8) return 'mulaw';
  if (format === FORMAT_ALAW && bits === 8) return 'alaw';
  return undefined;
}

/** Decode raw sample bytes to mono Int16 (channels averaged), scaling every encoding to 16-bit full scale. */
function decodeMono(
  data: Uint8Array,
  frames: number,
  channels: number,
  encoding: WavEncoding,
  bits: number,
  bigEndian: boolean,
): Int16Array {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const le = !bigEndian;
  const bytes = bits / 8;
  const read = (offset: number): number => {
    switch (encoding) {
      case 'mulaw':
        return muLawToLinear(data[offset]);
      case 'alaw':
        return aLawToLinear(data[offset]);
      case 'float':
        return (bits === 32 ? view.getFloat32(offset, le) : view.getFloat64(offset, le)) * 32768;
      case 'pcm':
        if (bits === 8) return (data[offset] - 128) * 256;
        if (bits === 16) return view.getInt16(offset, le);
        if (bits === 24) {
          const b0 = data[offset + (le ? 0 : 2)];
          const b1 = data[offset + 1];
          const b2 = data[offset + (le ? 2 : 0)];
          return (((b2 << 24) | (b1 << 16) | (b0 << 8)) >> 8) / 256;
        }
        return view.getInt32(offset, le) / 65536;
    }
  };
  const out = new Int16Array(frames);
  for (let f = 0; f < frames; f++) {
    const base = f * bytes * channels;
    let v = read(base);
    if (channels === 2) v = (v + read(base + bytes)) / 2;
    v = Math.round(v);
    out[f] = v > 32767 ? 32767 : v < -32768 ? -32768 : v;
  }
  return out;
}

/** Resample a whole signal, dropping the filter's lead-in so output sample 0 lines up with input sample 0. */
function resampleWhole(r: Resampler, input: Int16Array): Int16Array {
  const body = r.process(input);
  const tail = r.flush();
  const all = new Int16Array(body.length + tail.length);
  all.set(body);
  all.set(tail, body.length);
  const skip = Math.round(r.delaySamples);
  const length = Math.ceil((input.length * r.toRate) / r.fromRate);
  return all.slice(skip, Math.min(all.length, skip + length));
}
