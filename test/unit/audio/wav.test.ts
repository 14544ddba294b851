import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WaveFile } from 'wavefile';
import { aLawToLinear, muLawToLinear } from '../../../src/audio/g711';
import { loadWavFile, writeWavFile } from '../../../src/audio/wav';
import { ConfigError } from '../../../src/util/errors';
import { sineSamples } from '../../helpers/tone';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'sip-ai-agent-wav-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

function file(name: string, bytes: Uint8Array | string): string {
  const p = join(dir, name);
  writeFileSync(p, bytes);
  return p;
}

function wavBytes(channels: number, rate: number, bitDepth: string, samples: ArrayLike<number>): Uint8Array {
  const w = new WaveFile();
  w.fromScratch(channels, rate, bitDepth, samples);
  return w.toBuffer();
}

/** Amplitude and phase of the component at `freq` over [start, start+len) (whole periods). */
function fit(y: Int16Array, rate: number, freq: number, start: number, len: number): { amplitude: number; phase: number } {
  let s = 0;
  let c = 0;
  for (let i = start; i < start + len; i++) {
    const w = (2 * Math.PI * freq * i) / rate;
    s += y[i] * Math.sin(w);
    c += y[i] * Math.cos(w);
  }
  return { amplitude: (2 * Math.hypot(s, c)) / len, phase: Math.atan2(c, s) };
}

function configErrorOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('loadWavFile', () => {
  it('loads 16-bit mono at the target rate unchanged', () => {
    const samples = Int16Array.from([0, 1, -1, 32767, -32768, 1234]);
    const got = loadWavFile(file('m16.wav', wavBytes(1, 8000, '16', samples)), 8000);
    expect(Array.from(got.pcm)).toEqual(Array.from(samples));
    expect(got.sampleRate).toBe(8000);
    expect(got.durationMs).toBe(0.75);
    expect(got.source).toMatchObject({ encoding: 'pcm', bitsPerSample: 16, channels: 1, sampleRate: 8000 });
  });

  it('downmixes stereo by averaging the channels', () => {
    const got = loadWavFile(file('s16.wav', wavBytes(2, 16000, '16', [1000, 3000, -32768, -32768, 10, -10])), 16000);
    expect(Array.from(got.pcm)).toEqual([2000, -32768, 0]);
    expect(got.source.channels).toBe(2);
  });

  it('scales 8-bit, 24-bit, 32-bit and float samples to 16-bit full scale', () => {
    expect(Array.from(loadWavFile(file('p8.wav', wavBytes(1, 8000, '8', [0, 128, 255])), 8000).pcm)).toEqual([-32768, 0, 32512]);
    expect(Array.from(loadWavFile(file('p24.wav', wavBytes(1, 8000, '24', [8388607, -8388608, 256, -256])), 8000).pcm)).toEqual([32767, -32768, 1, -1]);
    expect(Array.from(loadWavFile(file('p32.wav', wavBytes(1, 8000, '32', [2147483647, -2147483648, 65536 * 5])), 8000).pcm)).toEqual([32767, -32768, 5]);
    expect(Array.from(loadWavFile(file('f32.wav', wavBytes(1, 8000, '32f', [0.5, -1, 2])), 8000).pcm)).toEqual([16384, -32768, 32767]);
    expect(Array.from(loadWavFile(file('f64.wav', wavBytes(1, 8000, '64', [0.25])), 8000).pcm)).toEqual([8192]);
  });

  it('decodes µ-law and A-law files with the G.711 tables', () => {
    for (const [law, convert, decode] of [
      ['mulaw', (w: WaveFile) => w.toMuLaw(), muLawToLinear],
      ['alaw', (w: WaveFile) => w.toALaw(), aLawToLinear],
    ] as const) {
      const w = new WaveFile();
      w.fromScratch(1, 8000, '16', sineSamples(440, 8000, 400, 16000));
      convert(w);
      const codes = w.getSamples(true, Float64Array);
      const got = loadWavFile(file(`${law}.wav`, w.toBuffer()), 8000);
      expect(got.source.encoding).toBe(law);
      expect(Array.from(got.pcm)).toEqual(Array.from(codes, (c) => decode(c)));
    }
  });

  it('resamples 44.1 kHz to 8 kHz once at load, level and timing preserved', () => {
    const src = sineSamples(200, 44100, 44100, 16000);
    const got = loadWavFile(file('cd.wav', wavBytes(1, 44100, '16', src)), 8000);
    expect(got.pcm.length).toBe(8000);
    expect(got.durationMs).toBe(1000);
    const f = fit(got.pcm, 8000, 200, 2000, 4000);
    expect(Math.abs(20 * Math.log10(f.amplitude / 16000))).toBeLessThan(0.05);
    // Delay-compensated: the sine still starts at phase 0 (within a quarter of an output sample).
    expect(Math.abs(f.phase)).toBeLessThan((2 * Math.PI * 200) / 8000 / 4);
  });

  it('resamples 16 kHz stereo to 24 kHz mono', () => {
    const mono = sineSamples(1000, 16000, 16000, 16000);
    const stereo = new Int16Array(mono.length * 2);
    for (let i = 0; i < mono.length; i++) stereo[2 * i] = stereo[2 * i + 1] = mono[i];
    const got = loadWavFile(file('wb.wav', wavBytes(2, 16000, '16', stereo)), 24000);
    expect(got.pcm.length).toBe(24000);
    expect(Math.abs(20 * Math.log10(fit(got.pcm, 24000, 1000, 2400, 12000).amplitude / 16000))).toBeLessThan(0.05);
  });

  it('names config key, file and reason when the file is missing', () => {
    const p = join(dir, 'missing.wav');
    const err = configErrorOf(() => loadWavFile(p, 8000, { configPath: 'greeting.file' }));
    expect(err.message).toBe(`greeting.file: ${p}: cannot read file (ENOENT)`);
    expect(err.problems).toEqual([{ path: 'greeting.file', message: `${p}: cannot read file (ENOENT)` }]);
  });

  it('rejects files that are not WAV', () => {
    const text = file('x.wav', 'this is a text file, not audio at all');
    expect(configErrorOf(() => loadWavFile(text, 8000, { configPath: 'greeting.file' })).message).toBe(
      `greeting.file: ${text}: not a WAV file (no RIFF header)`,
    );
    const avi = file('avi.wav', Buffer.concat([Buffer.from('RIFF\x10\x00\x00\x00AVI ', 'latin1'), Buffer.alloc(16)]));
    expect(configErrorOf(() => loadWavFile(avi, 8000)).message).toMatch(/RIFF type is not WAVE/);
    const cut = file('cut.wav', wavBytes(1, 8000, '16', [1, 2, 3]).subarray(0, 30));
    expect(configErrorOf(() => loadWavFile(cut, 8000)).message).toMatch(/unreadable WAV \(.+\)/);
    expect(configErrorOf(() => loadWavFile(dir, 8000)).message).toMatch(/not a regular file/);
  });

  it('rejects unsupported rates, channel counts and encodings', () => {
    expect(configErrorOf(() => loadWavFile(file('hi.wav', wavBytes(1, 96000, '16', [1, 2])), 8000)).message).toMatch(
      /unsupported sample rate 96000 Hz \(8000-48000 Hz\)/,
    );
    expect(configErrorOf(() => loadWavFile(file('lo.wav', wavBytes(1, 4000, '16', [1, 2])), 8000)).message).toMatch(/unsupported sample rate 4000 Hz/);
    expect(configErrorOf(() => loadWavFile(file('quad.wav', wavBytes(4, 8000, '16', [1, 2, 3, 4])), 8000)).message).toMatch(
      /unsupported channel count 4 \(mono or stereo\)/,
    );
    const adpcm = new WaveFile();
    adpcm.fromScratch(1, 8000, '16', sineSamples(300, 8000, 2000, 16000));
    adpcm.toIMAADPCM();
    expect(configErrorOf(() => loadWavFile(file('ima.wav', adpcm.toBuffer()), 8000)).message).toMatch(
      /unsupported WAV encoding \(format 0x0011, 4 bits\)/,
    );
    expect(configErrorOf(() => loadWavFile(file('odd.wav', wavBytes(1, 47999, '16', [1, 2, 3])), 8000)).message).toMatch(
      /cannot resample 47999 Hz to 8000 Hz/,
    );
  });

  it('rejects empty, too long and too large files', () => {
    expect(configErrorOf(() => loadWavFile(file('empty.wav', wavBytes(1, 8000, '16', [])), 8000)).message).toMatch(/no audio samples/);
    const long = file('long.wav', wavBytes(1, 8000, '16', new Int16Array(8000 * 3)));
    expect(configErrorOf(() => loadWavFile(long, 8000, { maxDurationMs: 2000 })).message).toMatch(/too long \(3000 ms, limit 2000 ms\)/);
    expect(configErrorOf(() => loadWavFile(long, 8000, { maxBytes: 1000 })).message).toMatch(/file too large \(48044 bytes, limit 1000\)/);
  });
});

describe('writeWavFile', () => {
  it('writes 16-bit PCM that reads back identically, mono and stereo', () => {
    const mono = join(dir, 'out-mono.wav');
    writeWavFile(mono, Int16Array.from([5, -5, 32767]), 16000);
    expect(Array.from(loadWavFile(mono, 16000).pcm)).toEqual([5, -5, 32767]);
    const stereo = join(dir, 'out-stereo.wav');
    writeWavFile(stereo, Int16Array.from([100, 300, -2, -4]), 8000, 2);
    const w = new WaveFile(readFileSync(stereo));
    expect((w.fmt as { numChannels: number }).numChannels).toBe(2);
    expect(Array.from(w.getSamples(true, Float64Array))).toEqual([100, 300, -2, -4]);
  });

  it('rejects bad channel counts and partial frames', () => {
    expect(() => writeWavFile(join(dir, 'bad.wav'), new Int16Array(3), 8000, 2)).toThrow(RangeError);
    expect(() => writeWavFile(join(dir, 'bad.wav'), new Int16Array(4), 8000, 3)).toThrow(RangeError);
  });
});
