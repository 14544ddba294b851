/**
 * Small PCM helpers: Int16 <-> little-endian bytes and base64 (the Realtime API's `audio/pcm`
 * wire form), concatenation and level measurement.
 */
import { endianness } from 'node:os';

const HOST_IS_LE = endianness() === 'LE';

/** Little-endian bytes of `pcm` (a copy on big-endian hosts, a zero-copy view on little-endian ones). */
export function int16ToBytesLE(pcm: Int16Array): Buffer {
  const view = Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength);
  if (HOST_IS_LE) return view;
  const copy = Buffer.from(view);
  copy.swap16();
  return copy;
}

/**
 * Samples of little-endian 16-bit PCM bytes (always a copy, so alignment of `bytes` never matters).
 * @throws TypeError when the byte count is odd.
 */
export function bytesLEToInt16(bytes: Uint8Array): Int16Array {
  if (bytes.length % 2 !== 0) throw new TypeError(`odd PCM16 byte count [bytes:${bytes.length}]`);
  const out = new Int16Array(bytes.length / 2);
  const raw = new Uint8Array(out.buffer);
  raw.set(bytes);
  if (!HOST_IS_LE) Buffer.from(out.buffer).swap16();
  return out;
}

/** Base64 of `pcm` as little-endian 16-bit samples. */
export function int16ToBase64(pcm: Int16Array): string {
  return int16ToBytesLE(pcm).toString('base64');
}

/**
 * Samples of base64-encoded little-endian 16-bit PCM.
 * @throws TypeError when the decoded byte count is odd.
 */
export function base64ToInt16(base64: string): Int16Array {
  return bytesLEToInt16(Buffer.from(base64, 'base64'));
}

/** One array holding `chunks` back to back. */
export function concatInt16(chunks: readonly Int16Array[]): Int16Array {
  let total = 0;
  for (const c of chunks) total += c.length;
  const out = new Int16Array(total);
  let offset = 0;
  for (const c of chunks) {
    out.set(c, offset);
    offset += c.length;
  }
  return out;
}

/** Root mean square of `pcm` in sample units (0 for an empty array). */
export function rms(pcm: Int16Array): number {
  if (pcm.length === 0) return 0;
  let acc = 0;
  for (let i = 0; i < pcm.length; i++) acc += pcm[i] * pcm[i];
  return Math.sqrt(acc / pcm.length);
}

/** RMS level in dB relative to full scale (32768); -Infinity for silence. */
export function rmsDbfs(pcm: Int16Array): number {
  const r = rms(pcm);
  return r === 0 ? -Infinity : 20 * Math.log10(r / 32768);
}
