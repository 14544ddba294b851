/**
 * PlayoutBuffer: the JS side of one call's TX playout. Bursty audio (AI response items, prompts
 * such as the greeting) goes into the native playout ring; what does not fit waits in a bounded
 * JS backlog that {@link PlayoutBuffer.pump} moves into the ring once per audio tick.
 *
 * Accounting is by sample position in the ring: an item's played samples are those the clock
 * thread consumed (the ring's read index passed them), never an estimate from wall-clock time.
 * That is what barge-in needs: flush() clears ring and backlog at once and reports how much of the
 * interrupted item the caller actually heard, for `conversation.item.truncate`.
 *
 * Paced sources: a model that sends its audio at about real time leaves no margin in the ring, so
 * every late delta would be heard as a gap. With `prebufferMs`, an item whose audio starts into an
 * empty ring waits in the backlog until that much is queued (a bursty source reaches it with its
 * first deltas and waits for nothing), it is done, or `prebufferMs` has passed since its first
 * audio, whichever comes first; the same after an underrun inside the item (re-buffering).
 *
 * An underrun is counted when an unfinished item ran out of audio and more audio came for it after
 * the clock thread had played silence (a gap the caller heard). A ring that runs dry just before the
 * next delta, or an item whose end is only known later (GPT-Live turns), is not one.
 *
 * The buffer is the ring's only writer, so it owns the write position: {@link PlayoutBuffer.writeIndex}
 * starts at the ring's own write index and advances by what each write accepted. A
 * {@link PlayoutTap} hears where every write landed, how far the ring was played and when it was
 * cleared (the call recorder follows what the caller heard this way).
 *
 * Threading: everything here runs on the JS thread; the ring's own indices are the only shared
 * state.
 */
import { performance } from 'node:perf_hooks';
import { TypedEmitter } from '../util/TypedEmitter';

/** The native TX playout ring of one call. Indices are monotonic sample counts at the bridge rate. */
export interface PcmSink {
  /** Append samples; returns how many were accepted (the rest did not fit in the ring). */
  write(pcm: Int16Array): number;
  /** Drop everything queued, synchronously; returns the read index at which playout stopped (every sample before it was played, none after it will be). */
  clear(): number;
  /** Samples consumed so far by the clock thread (played or cleared), monotonic. */
  readIndex(): number;
  /** Samples accepted so far by write(), monotonic. */
  writeIndex(): number;
  /**
   * Clock-thread ticks that played silence, in whole or in part, so far (monotonic). Optional: tells
   * an underrun from a ring that ran dry just before more audio came; without it every such case counts.
   */
  silentFrames?(): number;
}

/**
 * Follows the ring as the buffer sees it. Calls come in ring order: `written` for every write the
 * ring accepted, `played` whenever the read index was read and had moved, `cleared` after a flush.
 */
export interface PlayoutTap {
  /** `pcm` went into the ring at index `start` (a view of the caller's buffer: copy what you keep). */
  written(start: number, pcm: Int16Array): void;
  /** The clock thread consumed the ring up to `readIndex`: every sample before it was played. */
  played(readIndex: number): void;
  /** The ring was cleared with playout stopped at `stoppedAt`; nothing written after it will play. */
  cleared(stoppedAt: number): void;
}

/** Options for {@link PlayoutBuffer}. */
export interface PlayoutBufferOptions {
  /** Bridge sample rate of the sink, Hz. */
  sampleRate: number;
  /** Most audio held in the JS backlog beyond the ring, ms; the excess of an append is dropped and counted. Must cover the longest prompt. */
  maxBacklogMs: number;
  /** Recent items kept for per-item queries (default 32). */
  maxTrackedItems?: number;
  /** Told of every write, read-index advance and clear (unset: nobody is). */
  tap?: PlayoutTap;
  /**
   * Jitter tolerance for sources that pace their audio, ms (default 0: off). An item starting into an
   * empty ring, or resuming after an underrun, plays once this much is queued, it is done, or this
   * long after its first audio. Prompts never wait. Capped at maxBacklogMs.
   */
  prebufferMs?: number;
  /** Monotonic clock, ms, that bounds the prebuffer wait (default performance.now). */
  now?: () => number;
}

/** Accounting of one item (AI response audio or a prompt). Milliseconds are rounded down. */
export interface PlayoutItemReport {
  /** Realtime item id, or the prompt id. */
  itemId: string;
  /** True for non-AI audio added with appendPrompt(). */
  prompt: boolean;
  /** Audio handed to append() for this item, ms (including any dropped over the backlog cap). */
  receivedMs: number;
  /** Audio of this item the clock thread consumed from the ring, ms. */
  playedMs: number;
  /** Samples handed to append() for this item. */
  receivedSamples: number;
  /** Samples of this item played. */
  playedSamples: number;
  /** Samples of this item dropped because the backlog was full. */
  droppedSamples: number;
  /** Samples of this item discarded by flush() before they played. */
  flushedSamples: number;
  /** markItemDone() was called (or it is a prompt). */
  done: boolean;
  /** flush() interrupted it; later audio for it is discarded. */
  flushed: boolean;
}

/** What flush() interrupted: the item that was playing (or next to play). */
export interface PlayoutFlushReport {
  /** The interrupted item. */
  itemId: string;
  /** True when the interrupted audio was a prompt, not an AI item (nothing to truncate). */
  prompt: boolean;
  /** Audio received for it, ms. */
  receivedMs: number;
  /** Audio of it actually played, ms (never more than receivedMs). */
  playedMs: number;
  /** Every item whose queued or future audio this flush discarded (the reported one first). */
  flushedItemIds: string[];
  /** Ring read index at which playout stopped (every sample before it was played). */
  stoppedAt: number;
  /** Samples still in the ring, i.e. about to be heard, that the flush discarded. */
  ringDiscardedSamples: number;
}

/** Counters since construction (samples at the bridge rate unless named otherwise). */
export interface PlayoutStats {
  /** Samples accepted into the queue (ring or backlog). */
  appendedSamples: number;
  /** Samples the clock thread played. */
  playedSamples: number;
  /** Samples discarded from ring and backlog by flush(). */
  flushedSamples: number;
  /** Samples dropped at append() because the backlog was at maxBacklogMs. */
  droppedSamples: number;
  /** Samples ignored because their item had been flushed, the buffer was closed, or they were a done item's tail after it ran dry. */
  discardedSamples: number;
  /** Samples waiting in the JS backlog now. */
  backlogSamples: number;
  /** Largest backlog seen. */
  backlogPeakSamples: number;
  /** Times an unfinished item ran out of audio and more came for it after silence was played: a gap the caller heard. */
  underruns: number;
  /** pump() calls spent in such gaps. */
  starvedPumps: number;
  /** Clock-thread ticks of silence in such gaps (0 when the sink does not count them). */
  underrunFrames: number;
  /** Times an item's start waited for prebufferMs of audio (prebuffers) or waited again after an underrun (rebuffers). */
  prebuffers: number;
  rebuffers: number;
  /** Of those waits, the ones that ended because prebufferMs passed with less than that queued. */
  prebufferTimeouts: number;
  /** Times the ring ran dry while the backlog still held audio (pump() came too late or the ring is too small). */
  lateRefills: number;
  /** flush() calls. */
  flushes: number;
}

/** Events of a {@link PlayoutBuffer}. */
export type PlayoutBufferEvents = {
  /** An item marked done has played to its last sample (not emitted for flushed items). */
  itemPlayed: [report: PlayoutItemReport];
};

interface ItemState {
  id: string;
  prompt: boolean;
  received: number;
  played: number;
  dropped: number;
  flushed: number;
  /** Samples of this item in the ring or backlog. */
  pending: number;
  done: boolean;
  wasFlushed: boolean;
  reported: boolean;
}

interface Segment {
  item: ItemState;
  /** Ring index of the first unplayed sample. */
  start: number;
  /** Ring index after the last sample. */
  end: number;
}

interface Chunk {
  item: ItemState;
  pcm: Int16Array;
  offset: number;
}

/** An item's start held back in the backlog until enough of it is queued. */
interface Hold {
  item: ItemState;
  /** When the wait began (the clock of the options), ms. */
  since: number;
  /** It follows an underrun inside the item. */
  rebuffer: boolean;
  /** Counted in the stats: it outlived the append that began it (audio that fills it at once waited for nothing). */
  counted: boolean;
}

interface DrainWaiter {
  target: number;
  promise: Promise<void>;
  resolve: () => void;
}

/** Bounded per-call playout queue over a {@link PcmSink}, with per-item played accounting. */
export class PlayoutBuffer extends TypedEmitter<PlayoutBufferEvents> {
  /** Bridge sample rate, Hz. */
  readonly sampleRate: number;
  /** Backlog cap, samples. */
  readonly maxBacklogSamples: number;
  /** Audio a paced item's start waits for, samples (0: none). */
  readonly prebufferSamples: number;

  readonly #sink: PcmSink;
  readonly #tap: PlayoutTap | undefined;
  readonly #maxItems: number;
  readonly #items = new Map<string, ItemState>();
  /** Ring contents written by us and not yet consumed, oldest first. */
  #segments: Segment[] = [];
  #segHead = 0;
  /** Backlog chunks, oldest first. */
  #chunks: Chunk[] = [];
  #chunkHead = 0;
  #backlog = 0;
  /** The ring's write index: read once from the ring, then advanced by every write (we are its only writer). */
  #ringWrite: number;
  #lastRead: number;
  /** Samples ever queued, and samples that left the queue (played or flushed): whenDrained() compares them. */
  #queuedTotal = 0;
  #consumedTotal = 0;
  #waiters: DrainWaiter[] = [];
  #tail: ItemState | undefined;
  #starving = false;
  /** The sink's silent-tick count when the current starving began (undefined: the sink has none). */
  #starveMark: number | undefined;
  #starvePumps = 0;
  #hold: Hold | undefined;
  readonly #prebufferMs: number;
  readonly #now: () => number;
  #promptSeq = 0;
  #closed = false;
  readonly #stats: PlayoutStats = {
    appendedSamples: 0, playedSamples: 0, flushedSamples: 0, droppedSamples: 0, discardedSamples: 0,
    backlogSamples: 0, backlogPeakSamples: 0, underruns: 0, starvedPumps: 0, underrunFrames: 0,
    prebuffers: 0, rebuffers: 0, prebufferTimeouts: 0, lateRefills: 0, flushes: 0,
  };

  /** @throws RangeError on a non-positive sample rate, or a negative backlog cap or prebuffer. */
  constructor(sink: PcmSink, options: PlayoutBufferOptions) {
    super();
    const { sampleRate, maxBacklogMs } = options;
    if (!Number.isInteger(sampleRate) || sampleRate <= 0) throw new RangeError(`invalid sampleRate [sampleRate:${sampleRate}]`);
    if (!(maxBacklogMs >= 0) || !Number.isFinite(maxBacklogMs)) throw new RangeError(`invalid maxBacklogMs [maxBacklogMs:${maxBacklogMs}]`);
    this.sampleRate = sampleRate;
    this.maxBacklogSamples = Math.floor((maxBacklogMs * sampleRate) / 1000);
    const prebufferMs = options.prebufferMs ?? 0;
    if (!(prebufferMs >= 0) || !Number.isFinite(prebufferMs)) throw new RangeError(`invalid prebufferMs [prebufferMs:${prebufferMs}]`);
    this.prebufferSamples = Math.min(this.maxBacklogSamples, Math.floor((prebufferMs * sampleRate) / 1000));
    this.#prebufferMs = (this.prebufferSamples * 1000) / sampleRate;
    this.#now = options.now ?? (() => performance.now());
    this.#maxItems = Math.max(2, options.maxTrackedItems ?? 32);
    this.#sink = sink;
    this.#tap = options.tap;
    this.#ringWrite = sink.writeIndex();
    this.#lastRead = sink.readIndex();
  }

  /** True after close(). */
  get closed(): boolean {
    return this.#closed;
  }

  /** Audio is queued in the backlog or still unplayed in the ring. */
  get isPlaying(): boolean {
    if (this.#closed) return false;
    if (this.#backlog > 0) return true;
    if (this.#segHead < this.#segments.length) this.#settle(this.#sink.readIndex());
    return this.#segHead < this.#segments.length;
  }

  /** The ring's write index: just past the last sample written (a monotonic sample count, no native call). */
  get writeIndex(): number {
    return this.#ringWrite;
  }

  /** A snapshot of the counters. */
  get stats(): PlayoutStats {
    return { ...this.#stats, backlogSamples: this.#backlog };
  }

  /**
   * Queue audio of response item `itemId` (bridge rate, mono). Goes straight into the ring when
   * nothing is waiting ahead of it; the rest is copied into the backlog up to the cap, and the
   * excess dropped. Audio for an item that flush() interrupted is ignored (counted as discarded).
   */
  append(itemId: string, pcm: Int16Array): void {
    this.#append(itemId, pcm, false);
  }

  /**
   * Queue non-AI audio (a greeting) as a prompt item, already done, so flush() can interrupt it
   * like any item. Pass the whole prompt at once. Returns its id (`prompt_<n>` unless given).
   */
  appendPrompt(pcm: Int16Array, promptId?: string): string {
    const id = promptId ?? `prompt_${++this.#promptSeq}`;
    this.#append(id, pcm, true);
    this.markItemDone(id);
    return id;
  }

  /**
   * No more audio will come for `itemId`: running dry before this was its end, not a gap. `tail`
   * (optional) is the item's last few samples (a resampler's filter tail): queued when they follow
   * its audio, discarded (counted) when the item has already run dry, where alone they would be a click.
   */
  markItemDone(itemId: string, tail?: Int16Array): void {
    const item = this.#items.get(itemId);
    if (!item || item.done) return;
    if (tail && tail.length > 0) {
      if (this.#starving && this.#tail === item) this.#stats.discardedSamples += tail.length;
      else this.#append(itemId, tail, item.prompt);
    }
    if (this.#tail === item) this.#starving = false; // the quiet was the item's end
    item.done = true;
    // A finished item has all it will get: nothing left to wait for.
    if (this.#hold?.item === item) this.#release(false);
    this.#maybeReportPlayed(item);
  }

  /**
   * Once per audio tick: move backlog into the ring and settle played accounting from the ring's
   * read index. Does no native call when nothing is queued.
   */
  pump(): void {
    if (this.#closed) return;
    if (this.#segHead < this.#segments.length) {
      this.#settle(this.#sink.readIndex());
      if (this.#backlog > 0 && !this.#hold && this.#segHead === this.#segments.length) this.#stats.lateRefills++;
    }
    if (this.#hold && this.#now() - this.#hold.since >= this.#prebufferMs) this.#release(true);
    if (this.#backlog > 0 && !this.#hold) this.#writeBacklog();
    const tail = this.#tail;
    const starving =
      this.#backlog === 0 &&
      this.#segHead === this.#segments.length &&
      tail !== undefined && !tail.done && !tail.wasFlushed && tail.received > 0;
    if (starving) {
      if (!this.#starving) {
        // Whether this becomes a gap is known only if more audio comes for the item (see #append).
        this.#starveMark = this.#sink.silentFrames?.();
        this.#starvePumps = 0;
      }
      this.#starvePumps++;
    }
    this.#starving = starving;
  }

  /**
   * Barge-in: clear ring and backlog at once. Reports the item that was playing (or next to play,
   * or still receiving); returns null when nothing was playing or expected. Every item that lost
   * audio, and the unfinished last item, is marked flushed so its late audio is ignored.
   */
  flush(): PlayoutFlushReport | null {
    if (this.#closed) return null;
    this.#stats.flushes++;
    const stoppedAt = this.#sink.clear();
    this.#settle(stoppedAt);
    const ringDiscardedSamples = Math.max(0, this.#ringWrite - stoppedAt);
    const touched: ItemState[] = [];
    const discard = (item: ItemState, n: number): void => {
      if (n <= 0) return;
      item.flushed += n;
      item.pending -= n;
      this.#stats.flushedSamples += n;
      this.#consumedTotal += n;
      if (!touched.includes(item)) touched.push(item);
    };
    for (let i = this.#segHead; i < this.#segments.length; i++) {
      const s = this.#segments[i];
      discard(s.item, s.end - s.start);
    }
    for (let i = this.#chunkHead; i < this.#chunks.length; i++) {
      const c = this.#chunks[i];
      discard(c.item, c.pcm.length - c.offset);
    }
    this.#segments = [];
    this.#segHead = 0;
    this.#chunks = [];
    this.#chunkHead = 0;
    this.#backlog = 0;
    this.#hold = undefined;
    // After clear() the ring's read index equals its write index.
    this.#lastRead = this.#ringWrite;
    this.#starving = false;
    this.#tap?.cleared(stoppedAt);
    const tail = this.#tail;
    if (tail && !tail.done && !tail.wasFlushed && !touched.includes(tail)) touched.push(tail);
    for (const item of touched) item.wasFlushed = true;
    this.#resolveWaiters();
    if (touched.length === 0) return null;
    const head = touched[0];
    return {
      itemId: head.id,
      prompt: head.prompt,
      receivedMs: this.#ms(head.received),
      playedMs: this.#ms(Math.min(head.played, head.received)),
      flushedItemIds: touched.map((i) => i.id),
      stoppedAt,
      ringDiscardedSamples,
    };
  }

  /** Samples of `itemId` played so far (0 for an unknown item). */
  played(itemId: string): number {
    return this.item(itemId)?.playedSamples ?? 0;
  }

  /** Audio received for `itemId`, ms rounded down (0 for an unknown item). */
  receivedMs(itemId: string): number {
    return this.item(itemId)?.receivedMs ?? 0;
  }

  /** Audio of `itemId` played, ms rounded down (0 for an unknown item). */
  playedMs(itemId: string): number {
    return this.item(itemId)?.playedMs ?? 0;
  }

  /** Full accounting of a recent item, settled against the ring's read index now; undefined when unknown or evicted. */
  item(itemId: string): PlayoutItemReport | undefined {
    const item = this.#items.get(itemId);
    if (!item) return undefined;
    if (!this.#closed && item.pending > 0 && this.#segHead < this.#segments.length) this.#settle(this.#sink.readIndex());
    return this.#report(item);
  }

  /**
   * Resolves once everything appended so far has left the queue: played, or discarded by flush().
   * Driven by pump() (it reads the ring's read index), so it needs pump() calls; resolves at close().
   */
  whenDrained(): Promise<void> {
    if (this.#closed || this.#consumedTotal >= this.#queuedTotal) return Promise.resolve();
    const last = this.#waiters[this.#waiters.length - 1];
    if (last && last.target === this.#queuedTotal) return last.promise;
    let resolve!: () => void;
    const promise = new Promise<void>((r) => (resolve = r));
    this.#waiters.push({ target: this.#queuedTotal, promise, resolve });
    return promise;
  }

  /** Stop: drop the backlog, resolve drain waiters, forget listeners. Leaves the ring alone (the call owns it). Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#hold = undefined;
    this.#chunks = [];
    this.#chunkHead = 0;
    this.#backlog = 0;
    this.#segments = [];
    this.#segHead = 0;
    for (const w of this.#waiters) w.resolve();
    this.#waiters = [];
    this.removeAllListeners();
  }

  #append(itemId: string, pcm: Int16Array, prompt: boolean): void {
    const len = pcm.length;
    if (this.#closed) {
      this.#stats.discardedSamples += len;
      return;
    }
    const item = this.#itemFor(itemId, prompt);
    if (item.wasFlushed) {
      this.#stats.discardedSamples += len;
      return;
    }
    const resumed = this.#starving && this.#tail === item && len > 0;
    this.#tail = item;
    if (len === 0) return;
    if (this.prebufferSamples > 0 && !prompt && !this.#hold && this.#backlog === 0) this.#maybeHold(item, resumed);
    else if (resumed) this.#gapEnded();
    item.received += len;
    let written = 0;
    if (this.#backlog === 0 && !this.#hold) {
      written = this.#sink.write(pcm);
      if (written > 0) this.#recordSegment(item, pcm, written);
    }
    const rest = len - written;
    const kept = Math.min(rest, this.maxBacklogSamples - this.#backlog);
    if (kept > 0) {
      // Copy: callers reuse their buffers (resampler output, decode scratch).
      this.#chunks.push({ item, pcm: pcm.slice(written, written + kept), offset: 0 });
      this.#backlog += kept;
      if (this.#backlog > this.#stats.backlogPeakSamples) this.#stats.backlogPeakSamples = this.#backlog;
    }
    const dropped = rest - kept;
    if (dropped > 0) {
      item.dropped += dropped;
      this.#stats.droppedSamples += dropped;
    }
    const queued = written + kept;
    if (queued > 0) this.#starving = false; // the gap, if any, ends here
    item.pending += queued;
    this.#queuedTotal += queued;
    this.#stats.appendedSamples += queued;
    const hold = this.#hold;
    if (hold && this.#backlog >= this.prebufferSamples) this.#release(false);
    else if (hold && !hold.counted) {
      hold.counted = true;
      if (hold.rebuffer) this.#stats.rebuffers++;
      else this.#stats.prebuffers++;
    }
  }

  /**
   * Audio came for `item` while nothing is queued: if it starts the item, or resumes it after a gap,
   * hold it until prebufferSamples are queued (or the item is done, or the wait times out). A ring
   * still playing earlier audio needs no wait: the new audio follows it without a break.
   */
  #maybeHold(item: ItemState, resumed: boolean): void {
    const gap = resumed && this.#gapEnded();
    if (!gap && item.received > 0) return;
    if (this.#segHead < this.#segments.length) this.#settle(this.#sink.readIndex());
    if (this.#segHead < this.#segments.length) return;
    this.#hold = { item, since: this.#now(), rebuffer: gap, counted: false };
  }

  /**
   * More audio came for an item that had run dry: a gap when the clock thread played silence
   * meanwhile (or when the sink cannot tell). Counted here, not when the ring ran dry, because only
   * now is it known that the item went on. Returns whether it was a gap.
   */
  #gapEnded(): boolean {
    const mark = this.#starveMark;
    const silent = mark === undefined ? undefined : (this.#sink.silentFrames?.() ?? mark) - mark;
    this.#starving = false;
    this.#starveMark = undefined;
    if (silent === 0) return false;
    this.#stats.underruns++;
    this.#stats.starvedPumps += this.#starvePumps;
    this.#stats.underrunFrames += silent ?? 0;
    return true;
  }

  /** End the hold: its audio goes into the ring now. */
  #release(timedOut: boolean): void {
    if (!this.#hold) return;
    this.#hold = undefined;
    if (timedOut) this.#stats.prebufferTimeouts++;
    if (this.#backlog > 0) this.#writeBacklog();
  }

  #writeBacklog(): void {
    while (this.#chunkHead < this.#chunks.length) {
      const c = this.#chunks[this.#chunkHead];
      const view = c.offset === 0 ? c.pcm : c.pcm.subarray(c.offset);
      const n = this.#sink.write(view);
      if (n > 0) {
        this.#recordSegment(c.item, view, n);
        c.offset += n;
        this.#backlog -= n;
      }
      if (c.offset < c.pcm.length) break; // ring full
      this.#chunkHead++;
    }
    if (this.#chunkHead === this.#chunks.length) {
      this.#chunks = [];
      this.#chunkHead = 0;
    } else if (this.#chunkHead > 64) {
      this.#chunks = this.#chunks.slice(this.#chunkHead);
      this.#chunkHead = 0;
    }
  }

  /** The ring accepted the first `n` samples of `pcm`. */
  #recordSegment(item: ItemState, pcm: Int16Array, n: number): void {
    this.#tap?.written(this.#ringWrite, n === pcm.length ? pcm : pcm.subarray(0, n));
    const last = this.#segments[this.#segments.length - 1];
    if (this.#segHead < this.#segments.length && last.item === item && last.end === this.#ringWrite) {
      last.end += n;
    } else {
      this.#segments.push({ item, start: this.#ringWrite, end: this.#ringWrite + n });
    }
    this.#ringWrite += n;
  }

  /** Credit played samples up to ring read index `readIdx`. */
  #settle(readIdx: number): void {
    if (readIdx <= this.#lastRead) return;
    this.#lastRead = readIdx;
    this.#tap?.played(readIdx);
    const segs = this.#segments;
    const finished: ItemState[] = [];
    while (this.#segHead < segs.length) {
      const s = segs[this.#segHead];
      if (s.start >= readIdx) break;
      const end = Math.min(s.end, readIdx);
      const n = end - s.start;
      s.item.played += n;
      s.item.pending -= n;
      this.#stats.playedSamples += n;
      this.#consumedTotal += n;
      s.start = end;
      if (s.item.pending === 0) finished.push(s.item);
      if (s.start < s.end) break;
      this.#segHead++;
    }
    if (this.#segHead === segs.length) {
      this.#segments = [];
      this.#segHead = 0;
    } else if (this.#segHead > 64) {
      this.#segments = segs.slice(this.#segHead);
      this.#segHead = 0;
    }
    this.#resolveWaiters();
    for (const item of finished) this.#maybeReportPlayed(item);
  }

  #resolveWaiters(): void {
    let i = 0;
    while (i < this.#waiters.length && this.#waiters[i].target <= this.#consumedTotal) this.#waiters[i++].resolve();
    if (i > 0) this.#waiters.splice(0, i);
  }

  #maybeReportPlayed(item: ItemState): void {
    if (!item.done || item.pending > 0 || item.wasFlushed || item.reported || this.#closed) return;
    item.reported = true;
    this.emit('itemPlayed', this.#report(item));
  }

  #itemFor(itemId: string, prompt: boolean): ItemState {
    let item = this.#items.get(itemId);
    if (item) return item;
    item = {
      id: itemId, prompt, received: 0, played: 0, dropped: 0, flushed: 0, pending: 0,
      done: false, wasFlushed: false, reported: false,
    };
    this.#items.set(itemId, item);
    if (this.#items.size > this.#maxItems) {
      // Evict the oldest entry; queued audio keeps its own reference, so accounting still completes.
      for (const [id, old] of this.#items) {
        if (old !== item && old !== this.#tail) {
          this.#items.delete(id);
          break;
        }
      }
    }
    return item;
  }

  #report(item: ItemState): PlayoutItemReport {
    return {
      itemId: item.id,
      prompt: item.prompt,
      receivedMs: this.#ms(item.received),
      playedMs: this.#ms(Math.min(item.played, item.received)),
      receivedSamples: item.received,
      playedSamples: item.played,
      droppedSamples: item.dropped,
      flushedSamples: item.flushed,
      done: item.done,
      flushed: item.wasFlushed,
    };
  }

  #ms(samples: number): number {
    return Math.floor((samples * 1000) / this.sampleRate);
  }
}
