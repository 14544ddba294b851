import { mkdtempSync, readFileSync, rmSync, existsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WaveFile } from 'wavefile';
import { StereoWavWriter, repairWavHeader, wavHeader, WAV_HEADER_BYTES } from '../../../src/records/StereoWavWriter';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'wav-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

function ramp(n: number, start: number): Int16Array {
  const a = new Int16Array(n);
  for (let i = 0; i < n; i++) a[i] = start + i;
  return a;
}

/** Read a stereo 16-bit WAV as its two channels, checking the header on the way. */
function readStereo(path: string): { rate: number; left: number[]; right: number[]; riffSize: number; dataSize: number; fileSize: number } {
  const buf = readFileSync(path);
  expect(buf.toString('latin1', 0, 4)).toBe('RIFF');
  expect(buf.toString('latin1', 8, 16)).toBe('WAVEfmt ');
  expect(buf.readUInt16LE(20)).toBe(1);
  expect(buf.readUInt16LE(22)).toBe(2);
  expect(buf.readUInt16LE(34)).toBe(16);
  const dataSize = buf.readUInt32LE(40);
  const left: number[] = [];
  const right: number[] = [];
  for (let o = WAV_HEADER_BYTES; o < WAV_HEADER_BYTES + dataSize; o += 4) {
    left.push(buf.readInt16LE(o));
    right.push(buf.readInt16LE(o + 2));
  }
  return { rate: buf.readUInt32LE(24), left, right, riffSize: buf.readUInt32LE(4), dataSize, fileSize: buf.length };
}

describe('StereoWavWriter', () => {
  it('puts the caller left and the agent right, padding the shorter side of each batch with silence', async () => {
    const w = new StereoWavWriter(join(dir, 'a.wav'), { sampleRate: 8000, chunkBytes: 64 });
    w.append(ramp(160, 1), ramp(100, 1000)); // agent short
    w.append(null, ramp(50, 2000)); // caller missing
    w.append(ramp(30, 3000), new Int16Array(0)); // agent empty
    const s = await w.close();
    expect(s.frames).toBe(160 + 50 + 30);
    expect(s.error).toBeNull();
    const { rate, left, right } = readStereo(join(dir, 'a.wav'));
    expect(rate).toBe(8000);
    expect(left).toHaveLength(240);
    expect(right).toHaveLength(240);
    expect(left.slice(0, 160)).toEqual(Array.from(ramp(160, 1)));
    expect(right.slice(0, 100)).toEqual(Array.from(ramp(100, 1000)));
    expect(right.slice(100, 160).every((v) => v === 0)).toBe(true);
    expect(left.slice(160, 210).every((v) => v === 0)).toBe(true);
    expect(right.slice(160, 210)).toEqual(Array.from(ramp(50, 2000)));
    expect(left.slice(210)).toEqual(Array.from(ramp(30, 3000)));
    expect(right.slice(210).every((v) => v === 0)).toBe(true);
  });

  it('fixes up the RIFF header on close so other readers accept the file', async () => {
    const w = new StereoWavWriter(join(dir, 'b.wav'), { sampleRate: 16000 });
    for (let i = 0; i < 50; i++) w.append(ramp(320, i), ramp(320, -i));
    const s = await w.close();
    expect(s.durationMs).toBe(1000);
    const { riffSize, dataSize, fileSize } = readStereo(join(dir, 'b.wav'));
    expect(dataSize).toBe(50 * 320 * 4);
    expect(riffSize).toBe(fileSize - 8);
    const wf = new WaveFile(readFileSync(join(dir, 'b.wav')));
    expect((wf.fmt as { numChannels: number }).numChannels).toBe(2);
    expect((wf.fmt as { sampleRate: number }).sampleRate).toBe(16000);
  });

  it('writes to .part while recording and renames on close', async () => {
    const w = new StereoWavWriter(join(dir, 'c.wav'), { sampleRate: 8000 });
    w.append(ramp(160, 0), ramp(160, 0));
    await w.flush();
    expect(existsSync(join(dir, 'c.wav.part'))).toBe(true);
    expect(existsSync(join(dir, 'c.wav'))).toBe(false);
    // After a flush the partial file already has a header that matches what was written.
    expect(readStereo(join(dir, 'c.wav.part')).left).toHaveLength(160);
    await w.close();
    expect(existsSync(join(dir, 'c.wav.part'))).toBe(false);
    expect(existsSync(join(dir, 'c.wav'))).toBe(true);
  });

  it('stops at the duration cap and counts what it dropped', async () => {
    const w = new StereoWavWriter(join(dir, 'd.wav'), { sampleRate: 8000, maxDurationMs: 100 });
    for (let i = 0; i < 10; i++) w.append(ramp(160, 0), ramp(160, 0)); // 200 ms offered
    const s = await w.close();
    expect(s.frames).toBe(800);
    expect(s.droppedFrames).toBe(800);
    expect(s.truncated).toBe(true);
    expect(readStereo(join(dir, 'd.wav')).left).toHaveLength(800);
  });

  it('drops batches after close() and close() is idempotent', async () => {
    const w = new StereoWavWriter(join(dir, 'e.wav'), { sampleRate: 8000 });
    w.append(ramp(10, 0), null);
    const a = w.close();
    w.append(ramp(10, 0), null);
    expect(w.closed).toBe(true);
    expect(w.close()).toBe(a);
    const s = await a;
    expect(s.frames).toBe(10);
    expect(s.droppedFrames).toBe(10);
  });

  it('reports a file it cannot create as an error without throwing', async () => {
    writeFileSync(join(dir, 'file'), 'x');
    const w = new StereoWavWriter(join(dir, 'file', 'x.wav'), { sampleRate: 8000 });
    w.append(ramp(160, 0), ramp(160, 0));
    const s = await w.close();
    expect(s.error).toMatch(/recording cannot create the file \[path:.*x\.wav\.part, code:ENOTDIR\]/);
    expect(s.frames).toBe(0);
    expect(s.droppedFrames).toBe(160);
  });

  it('repairWavHeader() makes a crashed recording match its length', async () => {
    const p = join(dir, 'crash.wav.part');
    const data = Buffer.alloc(4 * 100 + 3, 1); // a torn last frame
    writeFileSync(p, Buffer.concat([wavHeader(8000, 2, 0), data]));
    const info = await repairWavHeader(p);
    expect(info).toEqual({ dataBytes: 400, sampleRate: 8000, channels: 2 });
    const r = readStereo(p);
    expect(r.left).toHaveLength(100);
    expect(r.riffSize).toBe(r.fileSize - 8);
  });

  it('repairWavHeader() leaves foreign files alone', async () => {
    const p = join(dir, 'other.wav.part');
    writeFileSync(p, 'not a wav at all, certainly more than forty-four bytes long');
    expect(await repairWavHeader(p)).toBeUndefined();
  });
});
