/**
 * Streaming stereo WAV writer for call recordings: caller on the left channel, agent on the right,
 * 16-bit PCM at the bridge rate. Audio is appended per batch and written in chunks off the event
 * loop; the file is `<path>.part` until close() fixes up the RIFF header, fsyncs and renames it.
 *
 * Bounded: at most `maxDurationMs` of audio is written (the rest is counted and dropped), and at most
 * `maxPendingBytes` may wait for the disk (a batch beyond that is dropped and counted). A write error
 * (disk full, permissions) stops the recording, is logged once and never reaches the caller.
 */
import { promises as fsp } from 'node:fs';
import type { Logger } from '../logging/logger';
import { RECORD_FILE_MODE } from './atomic';

/** Size of the canonical PCM WAV header written here. */
export const WAV_HEADER_BYTES = 44;
/** Suffix of a recording still being written. */
export const PART_SUFFIX = '.part';
/** Default cap on a recording, ms (2 hours). */
export const DEFAULT_MAX_RECORDING_MS = 2 * 60 * 60 * 1000;

const BYTES_PER_FRAME = 4; // two 16-bit channels
// RIFF sizes are 32-bit; stay clear of the 4 GiB limit whatever the cap asks.
const MAX_DATA_BYTES = 0xffffffff - WAV_HEADER_BYTES - 4096;

/** Options of {@link StereoWavWriter}. */
export interface StereoWavWriterOptions {
  /** Sample rate of both channels, Hz (the bridge rate). */
  sampleRate: number;
  /** Stop recording after this much audio, ms (default {@link DEFAULT_MAX_RECORDING_MS}). */
  maxDurationMs?: number;
  /** Bytes gathered before a write is issued (default: about one second of audio). */
  chunkBytes?: number;
  /** Most bytes allowed to wait for the disk before batches are dropped (default 4 MiB). */
  maxPendingBytes?: number;
  logger?: Logger;
}

/** What a recording ended up as. */
export interface WavSummary {
  /** Final path (`.wav`), or the `.part` path when the rename failed. */
  path: string;
  sampleRate: number;
  /** Stereo frames written. */
  frames: number;
  durationMs: number;
  /** Frames offered but not written (cap reached, disk lagging, or after an error). */
  droppedFrames: number;
  droppedMs: number;
  /** The duration cap was reached. */
  truncated: boolean;
  /** First error met, as a sentence; null when the file is complete. */
  error: string | null;
}

/** A canonical 44-byte header for 16-bit PCM with `dataBytes` of samples. */
export function wavHeader(sampleRate: number, channels: number, dataBytes: number): Buffer {
  const h = Buffer.alloc(WAV_HEADER_BYTES);
  const blockAlign = channels * 2;
  h.write('RIFF', 0, 'latin1');
  h.writeUInt32LE(36 + dataBytes, 4);
  h.write('WAVE', 8, 'latin1');
  h.write('fmt ', 12, 'latin1');
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(1, 20); // WAVE_FORMAT_PCM
  h.writeUInt16LE(channels, 22);
  h.writeUInt32LE(sampleRate, 24);
  h.writeUInt32LE(sampleRate * blockAlign, 28);
  h.writeUInt16LE(blockAlign, 32);
  h.writeUInt16LE(16, 34);
  h.write('data', 36, 'latin1');
  h.writeUInt32LE(dataBytes, 40);
  return h;
}

/**
 * Make the header of a WAV written by {@link StereoWavWriter} match the file's length (after a crash
 * left the sizes of the last checkpoint). Returns the data bytes now declared, or undefined when the
 * file is not one of ours (no canonical 44-byte PCM header).
 */
export async function repairWavHeader(path: string): Promise<{ dataBytes: number; sampleRate: number; channels: number } | undefined> {
  const fh = await fsp.open(path, 'r+');
  try {
    const head = Buffer.alloc(WAV_HEADER_BYTES);
    const { bytesRead } = await fh.read(head, 0, WAV_HEADER_BYTES, 0);
    if (
      bytesRead < WAV_HEADER_BYTES ||
      head.toString('latin1', 0, 4) !== 'RIFF' ||
      head.toString('latin1', 8, 16) !== 'WAVEfmt ' ||
      head.toString('latin1', 36, 40) !== 'data' ||
      head.readUInt16LE(20) !== 1
    ) {
      return undefined;
    }
    const channels = head.readUInt16LE(22);
    const sampleRate = head.readUInt32LE(24);
    const blockAlign = head.readUInt16LE(32) || 2 * channels;
    const size = (await fh.stat()).size;
    const raw = Math.min(Math.max(0, size - WAV_HEADER_BYTES), MAX_DATA_BYTES);
    const dataBytes = raw - (raw % blockAlign);
    if (dataBytes !== raw) await fh.truncate(WAV_HEADER_BYTES + dataBytes);
    await fh.write(wavHeader(sampleRate, channels, dataBytes), 0, WAV_HEADER_BYTES, 0);
    await fh.sync();
    return { dataBytes, sampleRate, channels };
  } finally {
    await fh.close();
  }
}

/** Streaming stereo recorder; see the module comment. */
export class StereoWavWriter {
  /** Final path of the recording. */
  readonly path: string;
  /** Path while recording. */
  readonly partPath: string;
  readonly sampleRate: number;
  readonly #maxFrames: number;
  readonly #chunkBytes: number;
  readonly #maxPending: number;
  readonly #log: Logger | undefined;

  #fh: Promise<fsp.FileHandle | undefined>;
  #tail: Promise<void>;
  #chunk: Buffer;
  #chunkUsed = 0;
  #framesAccepted = 0;
  #bytesOnDisk = 0;
  #pendingBytes = 0;
  #dropped = 0;
  #truncated = false;
  #error: string | null = null;
  #closing: Promise<WavSummary> | undefined;

  /** Start recording into `<path>.part` (the file is opened asynchronously; audio is queued meanwhile). */
  constructor(path: string, opts: StereoWavWriterOptions) {
    if (!Number.isInteger(opts.sampleRate) || opts.sampleRate <= 0) {
      throw new RangeError(`invalid sampleRate [sampleRate:${opts.sampleRate}]`);
    }
    this.path = path;
    this.partPath = path + PART_SUFFIX;
    this.sampleRate = opts.sampleRate;
    const maxMs = Math.max(0, opts.maxDurationMs ?? DEFAULT_MAX_RECORDING_MS);
    this.#maxFrames = Math.min(Math.floor((maxMs * opts.sampleRate) / 1000), Math.floor(MAX_DATA_BYTES / BYTES_PER_FRAME));
    const chunk = opts.chunkBytes ?? opts.sampleRate * BYTES_PER_FRAME;
    this.#chunkBytes = Math.max(BYTES_PER_FRAME, chunk - (chunk % BYTES_PER_FRAME));
    this.#maxPending = Math.max(this.#chunkBytes, opts.maxPendingBytes ?? 4 * 1024 * 1024);
    this.#log = opts.logger;
    this.#chunk = Buffer.alloc(this.#chunkBytes);
    this.#fh = fsp.open(this.partPath, 'w', RECORD_FILE_MODE).then(
      async (fh) => {
        try {
          await fh.write(wavHeader(this.sampleRate, 2, 0), 0, WAV_HEADER_BYTES, 0);
          return fh;
        } catch (err) {
          await fh.close().catch(() => undefined);
          this.#fail('cannot write the header', err);
          return undefined;
        }
      },
      (err) => {
        this.#fail('cannot create the file', err);
        return undefined;
      },
    );
    this.#tail = this.#fh.then(() => undefined);
  }

  /** Stereo frames accepted so far (written or waiting for the disk). */
  get frames(): number {
    return this.#framesAccepted;
  }

  /** Frames offered but not recorded. */
  get droppedFrames(): number {
    return this.#dropped;
  }

  /** Bytes queued for the disk. */
  get pendingBytes(): number {
    return this.#pendingBytes + this.#chunkUsed;
  }

  /** True once close() was called. */
  get closed(): boolean {
    return this.#closing !== undefined;
  }

  /** The first error met, or null. */
  get error(): string | null {
    return this.#error;
  }

  /**
   * Append one batch: the caller's samples go left, the agent's right. The batch is as long as the
   * longer side; the shorter is padded with silence, so both channels always hold the same number of
   * samples. Pass each tick's caller frame with the agent audio played in that tick.
   */
  append(caller: Int16Array | null | undefined, agent: Int16Array | null | undefined): void {
    const lc = caller?.length ?? 0;
    const la = agent?.length ?? 0;
    const n = Math.max(lc, la);
    if (n === 0) return;
    if (this.#closing || this.#error) {
      this.#dropped += n;
      return;
    }
    const room = this.#maxFrames - this.#framesAccepted;
    if (room <= 0) {
      this.#hitCap(n);
      return;
    }
    if (this.#pendingBytes + this.#chunkUsed + n * BYTES_PER_FRAME > this.#maxPending + this.#chunkBytes) {
      // The disk is not keeping up; dropping a whole batch keeps the channels aligned with each other.
      this.#dropped += n;
      return;
    }
    const take = Math.min(n, room);
    for (let i = 0; i < take; i++) {
      if (this.#chunkUsed === this.#chunkBytes) this.#flushChunk();
      this.#chunk.writeInt16LE(i < lc ? caller![i] : 0, this.#chunkUsed);
      this.#chunk.writeInt16LE(i < la ? agent![i] : 0, this.#chunkUsed + 2);
      this.#chunkUsed += BYTES_PER_FRAME;
    }
    this.#framesAccepted += take;
    if (this.#chunkUsed === this.#chunkBytes) this.#flushChunk();
    if (take < n) this.#hitCap(n - take);
  }

  /**
   * Write what is buffered and make the header describe it, so a crash after this leaves a playable
   * file. Never rejects.
   */
  flush(): Promise<void> {
    if (this.#closing) return this.#closing.then(() => undefined);
    this.#flushChunk();
    return this.#enqueue(async (fh) => {
      await fh.write(wavHeader(this.sampleRate, 2, this.#bytesOnDisk), 0, WAV_HEADER_BYTES, 0);
    });
  }

  /** Finish: write the rest, fix up the header, fsync, close and rename `.part` to `.wav`. Idempotent; never rejects. */
  close(): Promise<WavSummary> {
    if (this.#closing) return this.#closing;
    this.#flushChunk();
    this.#closing = (async (): Promise<WavSummary> => {
      await this.#tail;
      const fh = await this.#fh;
      let path = this.partPath;
      if (fh) {
        try {
          await fh.write(wavHeader(this.sampleRate, 2, this.#bytesOnDisk), 0, WAV_HEADER_BYTES, 0);
          await fh.sync();
        } catch (err) {
          this.#fail('cannot finish the file', err);
        }
        await fh.close().catch(() => undefined);
        try {
          await fsp.rename(this.partPath, this.path);
          path = this.path;
        } catch (err) {
          this.#fail('cannot rename the finished file', err);
        }
      }
      const frames = this.#bytesOnDisk / BYTES_PER_FRAME;
      // Frames accepted but never written (after an error) count as dropped too.
      const dropped = this.#dropped + (this.#framesAccepted - frames);
      return {
        path,
        sampleRate: this.sampleRate,
        frames,
        durationMs: Math.round((frames * 1000) / this.sampleRate),
        droppedFrames: dropped,
        droppedMs: Math.round((dropped * 1000) / this.sampleRate),
        truncated: this.#truncated,
        error: this.#error,
      };
    })();
    return this.#closing;
  }

  #hitCap(frames: number): void {
    this.#dropped += frames;
    if (!this.#truncated) {
      this.#truncated = true;
      this.#log?.warn({ path: this.path, maxFrames: this.#maxFrames }, 'recording reached its duration cap; the rest of the call is not recorded');
    }
  }

  #flushChunk(): void {
    if (this.#chunkUsed === 0) return;
    const buf = this.#chunk.subarray(0, this.#chunkUsed);
    this.#chunk = Buffer.alloc(this.#chunkBytes);
    this.#chunkUsed = 0;
    this.#pendingBytes += buf.length;
    void this.#enqueue(async (fh) => {
      await fh.write(buf, 0, buf.length, WAV_HEADER_BYTES + this.#bytesOnDisk);
      this.#bytesOnDisk += buf.length;
    }).then(() => {
      this.#pendingBytes -= buf.length;
    });
  }

  #enqueue(job: (fh: fsp.FileHandle) => Promise<void>): Promise<void> {
    const next = this.#tail.then(async () => {
      const fh = await this.#fh;
      if (!fh || this.#error) return;
      try {
        await job(fh);
      } catch (err) {
        this.#fail('write failed', err);
      }
    });
    this.#tail = next;
    return next;
  }

  #fail(what: string, err: unknown): void {
    if (this.#error) return;
    const code = (err as NodeJS.ErrnoException | undefined)?.code ?? (err instanceof Error ? err.message : String(err));
    this.#error = `recording ${what} [path:${this.partPath}, code:${code}]`;
    this.#log?.error({ err, path: this.partPath }, this.#error);
  }
}
