import { base64ToInt16, bytesLEToInt16, concatInt16, int16ToBase64, int16ToBytesLE, rms, rmsDbfs } from '../../../src/audio/pcm';

describe('pcm helpers', () => {
  it('encodes samples as little-endian base64', () => {
    // 1 -> 01 00, -2 -> fe ff, 0x1234 -> 34 12
    expect(int16ToBase64(Int16Array.from([1, -2, 0x1234]))).toBe(Buffer.from([1, 0, 0xfe, 0xff, 0x34, 0x12]).toString('base64'));
  });

  it('round-trips base64 for every sample value', () => {
    const all = new Int16Array(65536);
    for (let i = 0; i < all.length; i++) all[i] = i - 32768;
    expect(Array.from(base64ToInt16(int16ToBase64(all)))).toEqual(Array.from(all));
  });

  it('encodes only the viewed part of a subarray', () => {
    const backing = Int16Array.from([9, 9, 5, -5, 9]);
    expect(Array.from(base64ToInt16(int16ToBase64(backing.subarray(2, 4))))).toEqual([5, -5]);
    expect(int16ToBytesLE(backing.subarray(2, 4)).length).toBe(4);
  });

  it('decodes from unaligned byte views', () => {
    const bytes = Buffer.from([0xaa, 0x34, 0x12, 0xff, 0x7f]).subarray(1);
    expect(Array.from(bytesLEToInt16(bytes))).toEqual([0x1234, 0x7fff]);
  });

  it('rejects an odd byte count with context', () => {
    expect(() => base64ToInt16(Buffer.from([1, 2, 3]).toString('base64'))).toThrow(/odd PCM16 byte count \[bytes:3\]/);
  });

  it('concatenates chunks in order', () => {
    expect(Array.from(concatInt16([Int16Array.from([1, 2]), new Int16Array(0), Int16Array.from([3])]))).toEqual([1, 2, 3]);
  });

  it('measures RMS and dBFS', () => {
    expect(rms(new Int16Array(0))).toBe(0);
    expect(rms(Int16Array.from([3, -3, 3, -3]))).toBe(3);
    expect(rmsDbfs(new Int16Array(10))).toBe(-Infinity);
    const square = Int16Array.from([16384, -16384]);
    expect(rmsDbfs(square)).toBeCloseTo(-6.0206, 3);
  });
});
