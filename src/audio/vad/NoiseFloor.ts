/**
 * A line's noise floor from window energies: the minimum over the last few seconds (minimum
 * statistics, kept as per-block minima so each window costs O(1)). It follows a floor that drops at
 * once and one that rises within {@link NOISE_FLOOR_BLOCKS} blocks, and stays under speech, whose
 * energy falls between syllables far more often than that. It starts at
 * {@link NOISE_FLOOR_INITIAL_DBFS}, so a caller who speaks first is not taken for the floor.
 */

/** Level of digital silence, dBFS (the log of zero energy is clamped here). */
export const SILENCE_DBFS = -100;

/** Windows below this level, dBFS, are digital silence and leave the floor alone. */
export const DIGITAL_SILENCE_DBFS = -90;

/** Floor assumed until the first blocks have been seen, dBFS (a quiet telephone line). */
export const NOISE_FLOOR_INITIAL_DBFS = -45;

/** Windows per block of the minimum tracker (16 x 32 ms = 0.5 s). */
export const NOISE_FLOOR_BLOCK_WINDOWS = 16;

/** Blocks the minimum is taken over (6 x 0.5 s = 3 s). */
export const NOISE_FLOOR_BLOCKS = 6;

/** Mean-square energy of Int16 PCM in dBFS (full-scale sine: -3 dBFS), from a sum of squares. */
export function energyDbfs(sumOfSquares: number, samples: number): number {
  if (samples <= 0 || sumOfSquares <= 0) return SILENCE_DBFS;
  return Math.max(SILENCE_DBFS, 10 * Math.log10(sumOfSquares / samples / (32768 * 32768)));
}

/** Sum of squares of `pcm[start, end)`. */
export function sumOfSquares(pcm: Int16Array, start: number, end: number): number {
  let s = 0;
  for (let i = start; i < end; i++) s += pcm[i] * pcm[i];
  return s;
}

/** Tracks the noise floor of one line, one window energy at a time. */
export class NoiseFloor {
  readonly #blocks = new Float64Array(NOISE_FLOOR_BLOCKS).fill(NOISE_FLOOR_INITIAL_DBFS);
  #block = 0;
  #inBlock = 0;
  #floor = NOISE_FLOOR_INITIAL_DBFS;

  /** The floor the next window is judged against, dBFS. */
  get floorDbfs(): number {
    return this.#floor;
  }

  /** Account one window's energy and return the floor it is to be judged against (the floor before it). */
  update(db: number): number {
    const before = this.#floor;
    const blocks = this.#blocks;
    // Digital silence (no RTP yet, DTX) is not the line's noise: it would hold the floor down for seconds.
    if (db < blocks[this.#block] && db > DIGITAL_SILENCE_DBFS) blocks[this.#block] = db;
    if (++this.#inBlock === NOISE_FLOOR_BLOCK_WINDOWS) {
      this.#inBlock = 0;
      this.#block = (this.#block + 1) % NOISE_FLOOR_BLOCKS;
      blocks[this.#block] = Infinity;
    }
    let min = Infinity;
    for (let i = 0; i < NOISE_FLOOR_BLOCKS; i++) if (blocks[i] < min) min = blocks[i];
    // Seconds of digital silence only: keep the last floor.
    if (min !== Infinity) this.#floor = min;
    return before;
  }
}
