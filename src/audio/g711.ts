/**
 * ITU-T G.711 µ-law and A-law codecs, bit-exact with the ITU-T G.191 reference implementation
 * (`ulaw_compress`/`ulaw_expand`, `alaw_compress`/`alaw_expand`). Samples are 16-bit linear; decode
 * is one table lookup per sample and so is encode (the code depends only on the top 14 bits for
 * µ-law and the top 12 for A-law, so the encode tables stay small: 16 KiB and 4 KiB).
 */

/** Decoded value of every µ-law code (index = code). */
const MULAW_DECODE = new Int16Array(256);
/** Decoded value of every A-law code (index = code). */
const ALAW_DECODE = new Int16Array(256);
/** µ-law code for every `(sample >> 2) + 8192`. */
const MULAW_ENCODE = new Uint8Array(1 << 14);
/** A-law code for every `(sample >> 4) + 2048`. */
const ALAW_ENCODE = new Uint8Array(1 << 12);

for (let code = 0; code < 256; code++) {
  // µ-law: bits are inverted on the wire; exponent e, mantissa m; value = ((33 + 2m) << e) - 33, in 14-bit units.
  const u = ~code & 0xff;
  const ue = (u >> 4) & 7;
  const um = u & 0x0f;
  const umag = (((2 * um + 33) << ue) - 33) * 4;
  MULAW_DECODE[code] = code & 0x80 ? umag : -umag;
  // A-law: even bits toggled on the wire; value is the middle of the quantisation interval.
  const a = (code ^ 0x55) & 0x7f;
  const ae = a >> 4;
  const am = a & 0x0f;
  const amag = ae === 0 ? am * 16 + 8 : ((am + 16) * 16 + 8) << (ae - 1);
  ALAW_DECODE[code] = code & 0x80 ? amag : -amag;
}

for (let i = 0; i < MULAW_ENCODE.length; i++) {
  const top = i - 8192; // sample >> 2
  // Negative samples use the one's complement, as G.191 does (so -1 and 0 share a magnitude).
  let mag = (top < 0 ? ~top : top) + 33;
  if (mag > 0x1fff) mag = 0x1fff;
  const e = 32 - Math.clz32(mag >> 6); // segment - 1
  const m = (mag >> (e + 1)) & 0x0f;
  const code = ((7 - e) << 4) | (15 - m);
  MULAW_ENCODE[i] = top >= 0 ? code | 0x80 : code;
}

for (let i = 0; i < ALAW_ENCODE.length; i++) {
  const top = i - 2048; // sample >> 4
  const mag = top < 0 ? ~top : top; // 0..2047
  let code: number;
  if (mag < 16) {
    code = mag;
  } else {
    const e = 28 - Math.clz32(mag); // mag in [16 << (e-1), 32 << (e-1))
    code = (e << 4) | ((mag >> (e - 1)) & 0x0f);
  }
  ALAW_ENCODE[i] = (top >= 0 ? code | 0x80 : code) ^ 0x55;
}

/** µ-law code of one 16-bit sample. */
export function linearToMuLaw(sample: number): number {
  return MULAW_ENCODE[(sample >> 2) + 8192];
}

/** 16-bit sample of one µ-law code. */
export function muLawToLinear(code: number): number {
  return MULAW_DECODE[code & 0xff];
}

/** A-law code of one 16-bit sample. */
export function linearToALaw(sample: number): number {
  return ALAW_ENCODE[(sample >> 4) + 2048];
}

/** 16-bit sample of one A-law code. */
export function aLawToLinear(code: number): number {
  return ALAW_DECODE[code & 0xff];
}

/** Encode PCM to µ-law, into `out` when given (returns the written view). */
export function encodeMuLaw(pcm: Int16Array, out?: Uint8Array): Uint8Array {
  const dst = target(out, pcm.length, Uint8Array);
  for (let i = 0; i < pcm.length; i++) dst[i] = MULAW_ENCODE[(pcm[i] >> 2) + 8192];
  return dst;
}

/** Decode µ-law to PCM, into `out` when given (returns the written view). */
export function decodeMuLaw(codes: Uint8Array, out?: Int16Array): Int16Array {
  const dst = target(out, codes.length, Int16Array);
  for (let i = 0; i < codes.length; i++) dst[i] = MULAW_DECODE[codes[i]];
  return dst;
}

/** Encode PCM to A-law, into `out` when given (returns the written view). */
export function encodeALaw(pcm: Int16Array, out?: Uint8Array): Uint8Array {
  const dst = target(out, pcm.length, Uint8Array);
  for (let i = 0; i < pcm.length; i++) dst[i] = ALAW_ENCODE[(pcm[i] >> 4) + 2048];
  return dst;
}

/** Decode A-law to PCM, into `out` when given (returns the written view). */
export function decodeALaw(codes: Uint8Array, out?: Int16Array): Int16Array {
  const dst = target(out, codes.length, Int16Array);
  for (let i = 0; i < codes.length; i++) dst[i] = ALAW_DECODE[codes[i]];
  return dst;
}

function target<T extends Uint8Array | Int16Array>(
  out: T | undefined,
  length: number,
  Ctor: { new (n: number): T },
): T {
  if (!out) return new Ctor(length);
  if (out.length < length) throw new RangeError(`output buffer too small [length:${out.length}, needed:${length}]`);
  return out.subarray(0, length) as T;
}
