import { NoiseFloor, SpeechSegmenter, energyDbfs } from '../../../src/audio/vad';
import { DIGITAL_SILENCE_DBFS, NOISE_FLOOR_BLOCKS, NOISE_FLOOR_BLOCK_WINDOWS, NOISE_FLOOR_INITIAL_DBFS } from '../../../src/audio/vad/NoiseFloor';

/** Feed probabilities from window 0 on; returns the changes with their window index. */
function run(seg: SpeechSegmenter, probs: number[]): string[] {
  const out: string[] = [];
  probs.forEach((p, i) => {
    const c = seg.feed(i, p);
    if (c.kind !== 'none') out.push(`${c.kind}@${c.at}:${i}`);
  });
  return out;
}

describe('SpeechSegmenter', () => {
  const make = (): SpeechSegmenter => new SpeechSegmenter({ threshold: 0.5, minSpeechWindows: 3, silenceWindows: 4 });

  test('starts after minSpeechWindows of speech, dated from the first of them', () => {
    expect(run(make(), [0, 0, 0.9, 0.9, 0.9, 0.9])).toEqual(['start@2:4']);
  });

  test('a burst shorter than minSpeechWindows starts nothing', () => {
    expect(run(make(), [0, 0.9, 0.9, 0.1, 0.9, 0.9, 0.1, 0])).toEqual([]);
  });

  test('an onset survives pauses up to onsetGapWindows, not longer', () => {
    const tolerant = (): SpeechSegmenter => new SpeechSegmenter({ threshold: 0.5, minSpeechWindows: 3, silenceWindows: 4, onsetGapWindows: 2 });
    expect(run(tolerant(), [0.9, 0, 0, 0.9, 0.9])).toEqual(['start@0:4']);
    expect(run(tolerant(), [0.9, 0, 0, 0, 0.9, 0.9, 0.9])).toEqual(['start@4:6']);
  });

  test('scores between the two thresholds neither count as speech nor break an onset', () => {
    expect(run(make(), [0.9, 0.4, 0.9, 0.4, 0.9])).toEqual(['start@0:4']);
  });

  test('ends after silenceWindows from the first non-speech window, dated from it', () => {
    expect(run(make(), [0.9, 0.9, 0.9, 0.9, 0.1, 0.1, 0.1, 0.1, 0.1])).toEqual(['start@0:2', 'end@4:7']);
  });

  test('speech inside the silence restarts the count', () => {
    expect(run(make(), [0.9, 0.9, 0.9, 0.1, 0.1, 0.9, 0.1, 0.1, 0.1, 0.1])).toEqual(['start@0:2', 'end@6:9']);
  });

  test('hysteresis: scores just under the threshold keep the utterance going', () => {
    const seg = make();
    expect(run(seg, [0.9, 0.9, 0.9, 0.45, 0.4, 0.36, 0.45, 0.4, 0.36])).toEqual(['start@0:2']);
    expect(seg.speaking).toBe(true);
  });

  test('starts again after an end', () => {
    expect(run(make(), [0.9, 0.9, 0.9, 0, 0, 0, 0, 0.9, 0.9, 0.9])).toEqual(['start@0:2', 'end@3:6', 'start@7:9']);
  });
});

describe('NoiseFloor', () => {
  const feed = (f: NoiseFloor, db: number, windows: number): void => {
    for (let i = 0; i < windows; i++) f.update(db);
  };
  const horizon = NOISE_FLOOR_BLOCKS * NOISE_FLOOR_BLOCK_WINDOWS;

  test('starts at the initial floor and judges each window against the floor before it', () => {
    const f = new NoiseFloor();
    expect(f.update(-20)).toBe(NOISE_FLOOR_INITIAL_DBFS);
    expect(f.floorDbfs).toBe(NOISE_FLOOR_INITIAL_DBFS);
  });

  test('drops to a quieter line at once', () => {
    const f = new NoiseFloor();
    f.update(-70);
    expect(f.floorDbfs).toBe(-70);
  });

  test('rises to a louder line within the horizon (one block less at most), not sooner', () => {
    const f = new NoiseFloor();
    feed(f, -70, horizon);
    feed(f, -40, horizon - 2 * NOISE_FLOOR_BLOCK_WINDOWS);
    expect(f.floorDbfs).toBe(-70);
    feed(f, -40, 2 * NOISE_FLOOR_BLOCK_WINDOWS);
    expect(f.floorDbfs).toBe(-40);
  });

  test('stays under speech whose pauses come more often than the horizon', () => {
    const f = new NoiseFloor();
    for (let i = 0; i < 20; i++) {
      feed(f, -55, 3);
      feed(f, -20, 40);
    }
    expect(f.floorDbfs).toBe(-55);
  });

  test('digital silence leaves the floor where it was', () => {
    const f = new NoiseFloor();
    feed(f, -50, horizon);
    feed(f, -100, horizon * 3);
    expect(f.floorDbfs).toBe(-50);
    expect(DIGITAL_SILENCE_DBFS).toBeGreaterThan(-100);
  });

  test('energyDbfs: a full-scale square wave is 0 dBFS, zeros are the silence level', () => {
    expect(energyDbfs(32768 * 32768 * 10, 10)).toBeCloseTo(0, 6);
    expect(energyDbfs(0, 10)).toBe(-100);
  });
});
