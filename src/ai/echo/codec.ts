/**
 * Byte-level helpers of the echo backend for the AI audio formats (24 kHz PCM16 little-endian, or
 * 8 kHz G.711 µ-law / A-law codes): decode to linear PCM, encode from it, measure a frame's energy,
 * and convert a whole clip from one format to another (resampling when the rates differ).
 */
import { Resampler } from '../../audio/Resampler';
import { aLawToLinear, decodeALaw, decodeMuLaw, encodeALaw, encodeMuLaw, muLawToLinear } from '../../audio/g711';
import { bytesLEToInt16, int16ToBytesLE } from '../../audio/pcm';
import { aiAudioFormatInfo, type AiAudioFormat } from '../audioFormat';

/** Linear PCM of `bytes` in `format` (always a fresh array). */
export function decodeAiAudio(bytes: Uint8Array, format: AiAudioFormat): Int16Array {
  if (format === 'pcm') return bytesLEToInt16(bytes.length % 2 === 0 ? bytes : bytes.subarray(0, bytes.length - 1));
  return format === 'pcmu' ? decodeMuLaw(bytes) : decodeALaw(bytes);
}

/** Bytes of `pcm` in `format` (a fresh Buffer). */
export function encodeAiAudio(pcm: Int16Array, format: AiAudioFormat): Buffer {
  if (format === 'pcm') return Buffer.from(int16ToBytesLE(pcm));
  const codes = format === 'pcmu' ? encodeMuLaw(pcm) : encodeALaw(pcm);
  return Buffer.from(codes.buffer, codes.byteOffset, codes.byteLength);
}

/**
 * Mean square of the samples in `bytes` (format units: PCM16 little-endian or G.711 codes), in
 * squared sample units; 0 for an empty frame. Reads bytes directly, so alignment never matters.
 */
export function meanSquare(bytes: Uint8Array, format: AiAudioFormat): number {
  let acc = 0;
  let n = 0;
  if (format === 'pcm') {
    for (let i = 0; i + 1 < bytes.length; i += 2) {
      const v = ((bytes[i] | (bytes[i + 1] << 8)) << 16) >> 16;
      acc += v * v;
      n++;
    }
  } else {
    const expand = format === 'pcmu' ? muLawToLinear : aLawToLinear;
    for (let i = 0; i < bytes.length; i++) {
      const v = expand(bytes[i]);
      acc += v * v;
      n++;
    }
  }
  return n === 0 ? 0 : acc / n;
}

/** Mean square a frame must reach to be at least `dbfs` dB relative to full scale (32768). */
export function dbfsToMeanSquare(dbfs: number): number {
  const amplitude = 32768 * Math.pow(10, dbfs / 20);
  return amplitude * amplitude;
}

/**
 * A clip in format `from` re-expressed in format `to`. Same format: the bytes as they are (G.711
 * codes are not re-quantised). Otherwise decode, resample when the rates differ (the group delay is
 * removed so the clip keeps its timing and length), and encode.
 */
export function convertAiAudio(bytes: Buffer, from: AiAudioFormat, to: AiAudioFormat): Buffer {
  if (from === to) return bytes;
  let pcm = decodeAiAudio(bytes, from);
  const inRate = aiAudioFormatInfo(from).sampleRate;
  const outRate = aiAudioFormatInfo(to).sampleRate;
  if (inRate !== outRate) {
    const rs = Resampler.create(inRate, outRate);
    const head = rs.process(pcm);
    const tail = rs.flush();
    const all = new Int16Array(head.length + tail.length);
    all.set(head, 0);
    all.set(tail, head.length);
    const skip = Math.min(all.length, Math.round(rs.delaySamples));
    const want = Math.round((pcm.length * outRate) / inRate);
    pcm = all.subarray(skip, Math.min(all.length, skip + want));
  }
  return encodeAiAudio(pcm, to);
}
