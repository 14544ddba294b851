import {
  aLawToLinear,
  decodeALaw,
  decodeMuLaw,
  encodeALaw,
  encodeMuLaw,
  linearToALaw,
  linearToMuLaw,
  muLawToLinear,
} from '../../../src/audio/g711';

// Literal transcriptions of the ITU-T G.191 STL reference (g711.c), loops and all, kept apart from
// the table-driven implementation under test.
function refUlawCompress(lin: number): number {
  let absno = lin < 0 ? (~lin >> 2) + 33 : (lin >> 2) + 33;
  if (absno > 0x1fff) absno = 0x1fff;
  let i = absno >> 6;
  let segno = 1;
  while (i !== 0) {
    segno++;
    i >>= 1;
  }
  const high = 0x0008 - segno;
  const low = 0x000f - ((absno >> segno) & 0x000f);
  let out = (high << 4) | low;
  if (lin >= 0) out |= 0x0080;
  return out;
}

function refUlawExpand(log: number): number {
  const sign = log < 0x0080 ? -1 : 1;
  let mantissa = ~log;
  const exponent = (mantissa >> 4) & 0x0007;
  const segment = exponent + 1;
  mantissa &= 0x000f;
  const step = 4 << segment;
  return sign * ((0x0080 << exponent) + step * mantissa + step / 2 - 4 * 33);
}

function refAlawCompress(lin: number): number {
  let ix = lin < 0 ? ~lin >> 4 : lin >> 4;
  if (ix > 15) {
    let iexp = 1;
    while (ix > 16 + 15) {
      ix >>= 1;
      iexp++;
    }
    ix -= 16;
    ix += iexp << 4;
  }
  if (lin >= 0) ix |= 0x0080;
  return ix ^ 0x0055;
}

function refAlawExpand(log: number): number {
  let ix = (log ^ 0x0055) & 0x007f;
  const iexp = ix >> 4;
  let mant = ix & 0x000f;
  if (iexp > 0) mant += 16;
  mant = (mant << 4) + 0x0008;
  if (iexp > 1) mant <<= iexp - 1;
  ix = mant;
  return log > 127 ? ix : -ix;
}

const ALL_SAMPLES = (() => {
  const a = new Int16Array(65536);
  for (let i = 0; i < 65536; i++) a[i] = i - 32768;
  return a;
})();
const ALL_CODES = (() => {
  const a = new Uint8Array(256);
  for (let i = 0; i < 256; i++) a[i] = i;
  return a;
})();

describe('G.711 µ-law', () => {
  it('decodes the known code points', () => {
    expect(muLawToLinear(0xff)).toBe(0);
    expect(muLawToLinear(0x7f)).toBe(0);
    expect(muLawToLinear(0x00)).toBe(-32124);
    expect(muLawToLinear(0x80)).toBe(32124);
    expect(muLawToLinear(0xfe)).toBe(8);
    expect(muLawToLinear(0x7e)).toBe(-8);
  });

  it('encodes the known code points', () => {
    expect(linearToMuLaw(0)).toBe(0xff);
    expect(linearToMuLaw(-1)).toBe(0x7f);
    expect(linearToMuLaw(32767)).toBe(0x80);
    expect(linearToMuLaw(-32768)).toBe(0x00);
  });

  it('matches the G.191 reference encoder on all 65536 inputs', () => {
    const got = encodeMuLaw(ALL_SAMPLES);
    const mismatches = [];
    for (let i = 0; i < 65536; i++) if (got[i] !== refUlawCompress(ALL_SAMPLES[i])) mismatches.push(ALL_SAMPLES[i]);
    expect(mismatches.slice(0, 5)).toEqual([]);
  });

  it('matches the G.191 reference decoder on all 256 codes', () => {
    const got = decodeMuLaw(ALL_CODES);
    for (let c = 0; c < 256; c++) expect([c, got[c]]).toEqual([c, refUlawExpand(c) + 0]); // + 0 folds the reference's -0
  });

  it('round-trips within half a quantisation step below the clip level', () => {
    const dec = decodeMuLaw(encodeMuLaw(ALL_SAMPLES));
    let worstExcess = -Infinity;
    for (let i = 0; i < 65536; i++) {
      const x = ALL_SAMPLES[i];
      if (Math.abs(x) > 32124) continue;
      // With the bias of 132, segment e >= 1 covers |x| + 132 in [128 << e, 256 << e); its step is 8 << e.
      const e = Math.max(0, Math.floor(Math.log2((Math.abs(x) + 132) / 128)));
      worstExcess = Math.max(worstExcess, Math.abs(dec[i] - x) - (8 << e) / 2);
    }
    // One's complement for negatives costs at most one LSB beyond the half step.
    expect(worstExcess).toBeLessThanOrEqual(1);
  });

  it('re-encodes every decoded code to itself (except negative zero)', () => {
    const again = encodeMuLaw(decodeMuLaw(ALL_CODES));
    for (let c = 0; c < 256; c++) expect([c, again[c]]).toEqual([c, c === 0x7f ? 0xff : c]);
  });
});

describe('G.711 A-law', () => {
  it('decodes the known code points', () => {
    expect(aLawToLinear(0xd5)).toBe(8);
    expect(aLawToLinear(0x55)).toBe(-8);
    expect(aLawToLinear(0x2a)).toBe(-32256);
    expect(aLawToLinear(0xaa)).toBe(32256);
  });

  it('encodes the known code points', () => {
    expect(linearToALaw(0)).toBe(0xd5);
    expect(linearToALaw(-1)).toBe(0x55);
    expect(linearToALaw(32767)).toBe(0xaa);
    expect(linearToALaw(-32768)).toBe(0x2a);
  });

  it('matches the G.191 reference encoder on all 65536 inputs', () => {
    const got = encodeALaw(ALL_SAMPLES);
    const mismatches = [];
    for (let i = 0; i < 65536; i++) if (got[i] !== refAlawCompress(ALL_SAMPLES[i])) mismatches.push(ALL_SAMPLES[i]);
    expect(mismatches.slice(0, 5)).toEqual([]);
  });

  it('matches the G.191 reference decoder on all 256 codes', () => {
    const got = decodeALaw(ALL_CODES);
    for (let c = 0; c < 256; c++) expect([c, got[c]]).toEqual([c, refAlawExpand(c)]);
  });

  it('round-trips within half a quantisation step below the clip level', () => {
    const dec = decodeALaw(encodeALaw(ALL_SAMPLES));
    let worstExcess = -Infinity;
    for (let i = 0; i < 65536; i++) {
      const x = ALL_SAMPLES[i];
      if (Math.abs(x) > 32256) continue;
      // Segments 0 and 1 share a step of 16; segment e >= 1 starts at 256 << (e-1).
      const mag = Math.abs(x);
      const step = mag < 512 ? 16 : 16 << Math.floor(Math.log2(mag / 256));
      worstExcess = Math.max(worstExcess, Math.abs(dec[i] - x) - step / 2);
    }
    expect(worstExcess).toBeLessThanOrEqual(1);
  });

  it('re-encodes every decoded code to itself', () => {
    const again = encodeALaw(decodeALaw(ALL_CODES));
    for (let c = 0; c < 256; c++) expect([c, again[c]]).toEqual([c, c]);
  });
});

describe('G.711 buffers', () => {
  it('writes into caller buffers and rejects short ones', () => {
    const pcm = Int16Array.from([0, 1000, -1000, 32000]);
    const out = new Uint8Array(8);
    const view = encodeMuLaw(pcm, out);
    expect(view.buffer).toBe(out.buffer);
    expect(Array.from(view)).toEqual(Array.from(encodeMuLaw(pcm)));
    expect(() => encodeALaw(pcm, new Uint8Array(2))).toThrow(RangeError);
    expect(() => decodeMuLaw(out, new Int16Array(2))).toThrow(RangeError);
  });
});
