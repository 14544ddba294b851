/**
 * RecorderTap: pairs each batch of caller audio with the agent audio the caller heard meanwhile,
 * for a {@link CallRecorderSink}. As a {@link PlayoutTap} it follows the call's TX ring through
 * the playout buffer: what was written where, how far the clock thread played it, and what a
 * barge-in cleared before it played. Only played samples reach the recording.
 *
 * One sample ring holds, in ring order, the heard samples not yet paired (at most `queueMs`; the
 * oldest go first, counted) followed by the written samples not yet played (no more than the TX
 * ring holds). Playing moves the boundary between the two and a clear cuts the unplayed tail, so
 * neither copies: a sample is copied in once (again only if the ring grows) and out once, or not at
 * all when a whole batch lies in one piece and is handed to the sink in place.
 *
 * Threading: JS thread only.
 */
import type { Logger } from '../logging/logger';
import type { PlayoutTap } from '../audio/PlayoutBuffer';
import type { CallRecorderSink } from './types';

/** Options of a {@link RecorderTap}. */
export interface RecorderTapOptions {
  /** Bridge rate, Hz. */
  sampleRate: number;
  /** Heard agent audio kept waiting for caller audio, ms; the oldest beyond it is dropped and counted. */
  queueMs: number;
  logger: Logger;
}

// The largest TX ring (media.txBufferMs at most 600 s): the ring never holds more unplayed audio.
const MAX_UNPLAYED_MS = 600_000;
// Room for this much unplayed audio is made up front; more grows the ring (doubling) when it comes.
const INITIAL_UNPLAYED_MS = 1000;

/** The recorder's tap on one call's playout; see the module comment. */
export class RecorderTap implements PlayoutTap {
  readonly #sink: CallRecorderSink;
  readonly #log: Logger;
  readonly #heardCap: number;
  readonly #maxUnplayed: number;
  #buf: Int16Array;
  /** Index in #buf of the oldest heard sample; the unplayed samples follow the heard ones. */
  #head = 0;
  #heard = 0;
  #unplayed = 0;
  /** TX ring index of the first unplayed sample held. */
  #heardTo = 0;
  #scratch = new Int16Array(0);
  #dropped = 0;
  #closed = false;

  constructor(sink: CallRecorderSink, options: RecorderTapOptions) {
    this.#sink = sink;
    this.#log = options.logger;
    this.#heardCap = Math.max(1, Math.floor((options.sampleRate * options.queueMs) / 1000));
    this.#maxUnplayed = Math.floor((options.sampleRate * MAX_UNPLAYED_MS) / 1000);
    this.#buf = new Int16Array(this.#heardCap + Math.floor((options.sampleRate * INITIAL_UNPLAYED_MS) / 1000));
  }

  /** Agent samples lost to the recording: heard while the queue was full (or beyond what a TX ring holds). */
  get droppedSamples(): number {
    return this.#dropped;
  }

  /** Heard agent samples waiting for caller audio. */
  get heardSamples(): number {
    return this.#heard;
  }

  /** Written agent samples not yet played. */
  get unplayedSamples(): number {
    return this.#unplayed;
  }

  /** Hold a copy of what went into the TX ring at `start`, until it plays or is cleared. */
  written(start: number, pcm: Int16Array): void {
    if (this.#closed || pcm.length === 0) return;
    let src = pcm;
    if (start !== this.#heardTo + this.#unplayed || this.#unplayed + src.length > this.#maxUnplayed) {
      // Not where the last write ended (the first write), or more than a TX ring holds: start here.
      this.#dropped += this.#unplayed;
      this.#unplayed = 0;
      this.#heardTo = start;
      if (src.length > this.#maxUnplayed) {
        const skip = src.length - this.#maxUnplayed;
        this.#dropped += skip;
        this.#heardTo += skip;
        src = src.subarray(skip);
      }
    }
    this.#reserve(this.#heard + this.#unplayed + src.length);
    const cap = this.#buf.length;
    let at = (this.#head + this.#heard + this.#unplayed) % cap;
    let off = 0;
    while (off < src.length) {
      const n = Math.min(src.length - off, cap - at);
      this.#buf.set(src.subarray(off, off + n), at);
      off += n;
      at = (at + n) % cap;
    }
    this.#unplayed += src.length;
  }

  /** What lies before `readIndex` was heard: it joins the queue waiting for caller audio. */
  played(readIndex: number): void {
    const n = Math.min(readIndex - this.#heardTo, this.#unplayed);
    if (n <= 0) return;
    this.#heardTo += n;
    this.#unplayed -= n;
    this.#heard += n;
    const over = this.#heard - this.#heardCap;
    if (over > 0) {
      this.#head = (this.#head + over) % this.#buf.length;
      this.#heard -= over;
      this.#dropped += over;
    }
  }

  /** What played up to `stoppedAt` was heard; the rest will never play and is forgotten. */
  cleared(stoppedAt: number): void {
    this.played(stoppedAt);
    // The unplayed tail is gone from the TX ring; the next write starts where it ended.
    this.#heardTo += this.#unplayed;
    this.#unplayed = 0;
  }

  /**
   * One batch of caller audio: hand it to the sink with as much heard agent audio, oldest first,
   * silence for the rest. A sink that throws is logged; the call goes on.
   */
  caller(batch: Int16Array): void {
    if (this.#closed) return;
    const n = batch.length;
    const k = Math.min(n, this.#heard);
    const cap = this.#buf.length;
    let agent: Int16Array;
    if (k === n && this.#head + n <= cap) {
      agent = this.#buf.subarray(this.#head, this.#head + n);
    } else {
      if (this.#scratch.length < n) this.#scratch = new Int16Array(n);
      agent = this.#scratch.subarray(0, n);
      const first = Math.min(k, cap - this.#head);
      agent.set(this.#buf.subarray(this.#head, this.#head + first));
      if (k > first) agent.set(this.#buf.subarray(0, k - first), first);
      agent.fill(0, k);
    }
    // Released now, written over no sooner than the next write: the sink has returned by then.
    this.#head = (this.#head + k) % cap;
    this.#heard -= k;
    if (this.#heard + this.#unplayed === 0) this.#head = 0;
    try {
      this.#sink.audio(batch, agent);
    } catch (err) {
      this.#log.warn({ err }, 'recorder threw');
    }
  }

  /** Stop: forget held audio; later calls do nothing. Idempotent. */
  close(): void {
    this.#closed = true;
    this.#heard = 0;
    this.#unplayed = 0;
    this.#head = 0;
    this.#buf = new Int16Array(1);
    this.#scratch = new Int16Array(0);
  }

  /** Make room for `n` samples, keeping their order (grows by doubling; never past the caps). */
  #reserve(n: number): void {
    const old = this.#buf;
    if (n <= old.length) return;
    const buf = new Int16Array(Math.min(Math.max(n, old.length * 2), this.#heardCap + this.#maxUnplayed));
    const held = this.#heard + this.#unplayed;
    const first = Math.min(held, old.length - this.#head);
    buf.set(old.subarray(this.#head, this.#head + first));
    if (held > first) buf.set(old.subarray(0, held - first), first);
    this.#buf = buf;
    this.#head = 0;
  }
}
