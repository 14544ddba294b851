/**
 * What the bridge adds to the audio path, measured per call from clock-thread tick times
 * (CLOCK_MONOTONIC, stamped natively) and JS times on the same clock:
 *
 * - **uplink**: the caller's RTP packet arrives -> the `input_audio_buffer.append` holding its audio
 *   is written to the Realtime socket: the jitter buffer's delay at the time (read natively about
 *   once a second) plus the frame leaving the clock thread -> the append (batching included: with
 *   `ai.appendMs` 40 the first frame of a batch waits for the second).
 * - **jitter buffer**: that delay on its own, sampled once a second per call.
 * - **downlink**: model audio arrives while nothing is queued for the caller -> its first sample
 *   leaves in RTP (the tick that sent it). Audio arriving behind queued audio is not "added"
 *   latency (it waits for what plays before it), so only arrivals to an idle playout are timed.
 * - **barge-in cut-off**: `speech_started` handled -> the first tick that sends none of the old
 *   response; and how many frames of the old response still left after `speech_started`.
 *
 * The process-wide histograms ({@link AudioLatency}) feed /metrics; a {@link LatencyProbe} per call
 * holds what is still waiting for a tick to settle. Everything is bounded: a few pending entries
 * per call, fixed buckets.
 */
import { Histogram } from '../util/Histogram';
import { monotonicUs } from '../util/clock';

/** Bucket bounds of the latency histograms, ms: 1 ms steps to 30 ms (the targets live there), then coarser. */
export const LATENCY_BOUNDS_MS: readonly number[] = [
  0.5, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30,
  35, 40, 45, 50, 60, 70, 80, 100, 125, 150, 200, 250, 300, 400, 500, 750, 1000, 2000, 5000,
];

/** Bucket bounds of the stale-frame histogram (frames of the old response sent after speech started). */
export const STALE_FRAME_BOUNDS: readonly number[] = [0, 1, 2, 3, 4, 5, 6, 8, 10, 15, 20, 50];

/** The process-wide audio latency histograms (one instance shared by every call of a manager). */
export class AudioLatency {
  /** Caller RTP packet in (jitter buffer included) -> its append written to the socket, ms. */
  readonly uplinkMs = new Histogram(LATENCY_BOUNDS_MS);
  /** Audio waiting in a call's jitter buffer, ms, once a second per call. */
  readonly jitterBufferMs = new Histogram(LATENCY_BOUNDS_MS);
  /** Model audio arrival (to an idle playout) -> its first sample sent, ms. */
  readonly downlinkMs = new Histogram(LATENCY_BOUNDS_MS);
  /** speech_started -> first tick sending none of the old response, ms. */
  readonly bargeInCutoffMs = new Histogram(LATENCY_BOUNDS_MS);
  /** Frames of the old response sent after speech_started. */
  readonly bargeInStaleFrames = new Histogram(STALE_FRAME_BOUNDS);
  /** Measurements given up because their tick fell out of the native history (the JS thread was very late). */
  readonly unmeasured = { uplink: 0, downlink: 0, bargeIn: 0 };
}

/** Pending entries kept per call and kind; older ones are given up (counted). */
const MAX_PENDING = 16;
/** Caller frames remembered until their batch is sent (10 s at 20 ms; batches are at most 200 ms). */
const MAX_UPLINK_FRAMES = 500;
/** A pending downlink or barge-in older than this is given up. */
const PENDING_TIMEOUT_US = 3_000_000;

interface Downlink {
  index: number;
  arrivalUs: number;
}

interface BargeIn {
  speechUs: number;
  stopAt: number;
}

/**
 * One call's measurements in flight. The bridge reports events as they happen; {@link tick} (once
 * per audio tick, cheap when nothing is pending) settles them against the native TX tick history.
 */
export class LatencyProbe {
  readonly #sink: AudioLatency;
  readonly #frameSamples: number;
  readonly #txTicks: () => Float64Array | null;
  // Uplink: end (stream sample count) and tick time of each caller frame not yet sent.
  #upEnd: number[] = [];
  #upUs: number[] = [];
  #upHead = 0;
  #downlinks: Downlink[] = [];
  #bargeIns: BargeIn[] = [];

  /**
   * @param sink the histograms to feed
   * @param frameSamples samples per 20 ms frame at the bridge rate
   * @param txTicks the call's TX tick history: flat [start, end, timeUs] per tick, oldest first
   */
  constructor(sink: AudioLatency, frameSamples: number, txTicks: () => Float64Array | null, jitterMs?: () => number) {
    this.#sink = sink;
    this.#frameSamples = frameSamples;
    this.#txTicks = txTicks;
    this.#jitterMs = jitterMs;
  }

  readonly #jitterMs: (() => number) | undefined;
  #jitter = 0;
  #jitterReadUs = -Infinity;

  // The native reading changes once a second: ask for it (and sample it) at most that often.
  #jitterNow(nowUs: number): number {
    if (this.#jitterMs && nowUs - this.#jitterReadUs >= 1_000_000) {
      this.#jitterReadUs = nowUs;
      const ms = this.#jitterMs();
      if (ms >= 0) {
        this.#jitter = ms;
        this.#sink.jitterBufferMs.observe(ms);
      }
    }
    return this.#jitter;
  }

  /** True while a downlink or barge-in measurement waits for ticks. */
  get pending(): boolean {
    return this.#downlinks.length > 0 || this.#bargeIns.length > 0;
  }

  /**
   * Caller audio of one drain: samples ending at stream position `end` (samples since the call's
   * start), whose first and last frames left the clock thread at `firstUs` and `lastUs`.
   */
  callerAudio(end: number, samples: number, firstUs: number, lastUs: number): void {
    if (samples <= 0) return;
    if (!Number.isFinite(firstUs) || !Number.isFinite(lastUs)) {
      this.#sink.unmeasured.uplink++;
      return;
    }
    const fs = this.#frameSamples;
    const frames = Math.max(1, Math.round(samples / fs));
    const start = end - samples;
    for (let k = 0; k < frames; k++) {
      const frameEnd = k === frames - 1 ? end : start + (k + 1) * fs;
      const us = frames === 1 ? lastUs : firstUs + ((lastUs - firstUs) * k) / (frames - 1);
      this.#upEnd.push(frameEnd);
      this.#upUs.push(us);
    }
    if (this.#upEnd.length - this.#upHead > MAX_UPLINK_FRAMES) {
      this.#sink.unmeasured.uplink += this.#upEnd.length - this.#upHead - MAX_UPLINK_FRAMES;
      this.#upHead = this.#upEnd.length - MAX_UPLINK_FRAMES;
    }
  }

  /** Caller audio up to stream position `end` was just written to the socket (observe it) or not sent (forget it). */
  callerAudioSent(end: number, sent: boolean): void {
    const now = sent ? monotonicUs() : 0;
    const jb = sent ? this.#jitterNow(now) : 0;
    let h = this.#upHead;
    while (h < this.#upEnd.length && this.#upEnd[h] <= end) {
      if (sent) this.#sink.uplinkMs.observe(jb + (now - this.#upUs[h]) / 1000);
      h++;
    }
    if (h >= this.#upEnd.length) {
      this.#upEnd.length = 0;
      this.#upUs.length = 0;
      this.#upHead = 0;
    } else if (h > 256) {
      this.#upEnd = this.#upEnd.slice(h);
      this.#upUs = this.#upUs.slice(h);
      this.#upHead = 0;
    } else {
      this.#upHead = h;
    }
  }

  /** Model audio that arrived at `arrivalUs` to an idle playout was written at TX ring index `index`. */
  modelAudio(index: number, arrivalUs: number): void {
    if (this.#downlinks.length >= MAX_PENDING) {
      this.#downlinks.shift();
      this.#sink.unmeasured.downlink++;
    }
    this.#downlinks.push({ index, arrivalUs });
  }

  /** speech_started was handled at `speechUs`; the flush stopped old audio at TX ring index `stopAt`. */
  bargeIn(speechUs: number, stopAt: number): void {
    if (this.#bargeIns.length >= MAX_PENDING) {
      this.#bargeIns.shift();
      this.#sink.unmeasured.bargeIn++;
    }
    this.#bargeIns.push({ speechUs, stopAt });
  }

  /** Settle what the ticks so far can settle. */
  tick(): void {
    if (!this.pending) return;
    const t = this.#txTicks();
    if (!t || t.length < 3) return;
    const now = monotonicUs();
    if (this.#downlinks.length > 0) this.#downlinks = this.#downlinks.filter((d) => !this.#settleDownlink(t, d, now));
    if (this.#bargeIns.length > 0) this.#bargeIns = this.#bargeIns.filter((b) => !this.#settleBargeIn(t, b, now));
  }

  /** Drop everything pending (the call ended). */
  close(): void {
    this.#downlinks = [];
    this.#bargeIns = [];
    this.#upEnd = [];
    this.#upUs = [];
    this.#upHead = 0;
  }

  /** True when settled (observed, flushed before playing, or given up). */
  #settleDownlink(t: Float64Array, d: Downlink, now: number): boolean {
    for (let i = 0; i < t.length; i += 3) {
      const start = t[i];
      const end = t[i + 1];
      if (d.index >= start && d.index < end) {
        this.#sink.downlinkMs.observe((t[i + 2] - d.arrivalUs) / 1000);
        return true;
      }
      // The read index moved past it without sending it: a flush discarded it first.
      if (start > d.index) return true;
    }
    if (now - d.arrivalUs > PENDING_TIMEOUT_US) {
      this.#sink.unmeasured.downlink++;
      return true;
    }
    return false;
  }

  #settleBargeIn(t: Float64Array, b: BargeIn, now: number): boolean {
    if (t[2] > b.speechUs) {
      // The history no longer reaches back to speech_started: the stale count would be short.
      this.#sink.unmeasured.bargeIn++;
      return true;
    }
    let stale = 0;
    for (let i = 0; i < t.length; i += 3) {
      const start = t[i];
      const end = t[i + 1];
      const us = t[i + 2];
      if (us <= b.speechUs) continue;
      if (start >= b.stopAt) {
        this.#sink.bargeInCutoffMs.observe((us - b.speechUs) / 1000);
        this.#sink.bargeInStaleFrames.observe(stale);
        return true;
      }
      if (end > start) stale++;
    }
    if (now - b.speechUs > PENDING_TIMEOUT_US) {
      this.#sink.unmeasured.bargeIn++;
      return true;
    }
    return false;
  }
}
