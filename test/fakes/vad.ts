/**
 * Energy-based voice activity detection for the fake Realtime server. It runs on the received
 * audio timeline (samples pushed), never on wall-clock time, so a test that appends audio faster
 * or slower than real time sees the same `audio_start_ms` / `audio_end_ms`.
 */
import { rmsDbfs } from './audio';

/** Analysis frame length. */
export const VAD_FRAME_MS = 10;

/** Settings of the energy VAD, mirroring GA `server_vad` (threshold 0..1, paddings in ms). */
export interface VadSettings {
  /** GA `threshold` 0..1; mapped to an energy level by {@link thresholdToDbfs}. */
  threshold: number;
  /** GA `prefix_padding_ms`: audio before the detected onset included in the turn. */
  prefixPaddingMs: number;
  /** GA `silence_duration_ms`: silence that ends a turn. */
  silenceDurationMs: number;
  /** Consecutive voiced audio needed before an onset counts (rejects clicks); default 30 ms. */
  minSpeechMs?: number;
}

/** What the VAD saw in a push, in received-timeline milliseconds. */
export type VadEvent =
  | { type: 'speech_started'; audioStartMs: number; onsetMs: number }
  | { type: 'speech_stopped'; audioEndMs: number };

/**
 * Energy level a frame must reach to count as voiced: threshold 0 -> -60 dBFS, 0.5 -> -35 dBFS,
 * 1 -> -10 dBFS (linear in dB). Telephony speech sits around -20 dBFS, line noise below -50 dBFS.
 */
export function thresholdToDbfs(threshold: number): number {
  return -60 + 50 * Math.max(0, Math.min(1, threshold));
}

/**
 * Streaming energy VAD. Push PCM at its native rate; get speech_started / speech_stopped events.
 * `audioStartMs` includes the prefix padding (floored at the end of the previous turn, as the
 * server never reaches back into audio it already committed); `audioEndMs` includes the silence.
 */
export class EnergyVad {
  private settings: Required<VadSettings>;
  private frame: Int16Array = new Int16Array(0);
  private frameFill = 0;
  private frameRate = 0;
  private frameStartMs = 0;
  private positionMsValue = 0;
  private speakingValue = false;
  private runStartMs = -1;
  private runMs = 0;
  private lastVoicedEndMs = 0;
  private floorMs = 0;
  /** Samples discarded because the sample rate changed mid-frame. */
  droppedSamples = 0;

  constructor(settings: VadSettings) {
    this.settings = { minSpeechMs: 30, ...settings };
  }

  /** Replace the settings (session.update); an ongoing turn keeps going under the new ones. */
  configure(settings: VadSettings): void {
    this.settings = { minSpeechMs: 30, ...settings };
  }

  /** Milliseconds of audio seen so far (complete frames plus the partial one). */
  get positionMs(): number {
    return this.positionMsValue;
  }

  /** True between speech_started and speech_stopped. */
  get speaking(): boolean {
    return this.speakingValue;
  }

  /** Forget the current turn (input_audio_buffer.clear / manual commit); nothing before `atMs` is reused. */
  reset(atMs: number = this.positionMsValue): void {
    this.speakingValue = false;
    this.runStartMs = -1;
    this.runMs = 0;
    this.floorMs = atMs;
  }

  /** Feed samples at `sampleRate`; returns the events they caused, in order. */
  push(samples: Int16Array, sampleRate: number): VadEvent[] {
    const events: VadEvent[] = [];
    if (sampleRate !== this.frameRate) {
      this.droppedSamples += this.frameFill;
      this.frameRate = sampleRate;
      this.frame = new Int16Array((sampleRate * VAD_FRAME_MS) / 1000);
      this.frameFill = 0;
      this.frameStartMs = this.positionMsValue;
    }
    let i = 0;
    while (i < samples.length) {
      const take = Math.min(samples.length - i, this.frame.length - this.frameFill);
      this.frame.set(samples.subarray(i, i + take), this.frameFill);
      this.frameFill += take;
      i += take;
      this.positionMsValue = this.frameStartMs + (this.frameFill * 1000) / sampleRate;
      if (this.frameFill === this.frame.length) {
        this.judgeFrame(events);
        this.frameFill = 0;
        this.frameStartMs = this.positionMsValue;
      }
    }
    return events;
  }

  private judgeFrame(events: VadEvent[]): void {
    const start = this.frameStartMs;
    const end = start + VAD_FRAME_MS;
    const voiced = rmsDbfs(this.frame) >= thresholdToDbfs(this.settings.threshold);
    if (!this.speakingValue) {
      if (!voiced) {
        this.runStartMs = -1;
        this.runMs = 0;
        return;
      }
      if (this.runStartMs < 0) this.runStartMs = start;
      this.runMs += VAD_FRAME_MS;
      if (this.runMs >= this.settings.minSpeechMs) {
        this.speakingValue = true;
        this.lastVoicedEndMs = end;
        const audioStartMs = Math.max(this.floorMs, this.runStartMs - this.settings.prefixPaddingMs, 0);
        events.push({ type: 'speech_started', audioStartMs: Math.round(audioStartMs), onsetMs: this.runStartMs });
      }
      return;
    }
    if (voiced) {
      this.lastVoicedEndMs = end;
      return;
    }
    if (end - this.lastVoicedEndMs >= this.settings.silenceDurationMs) {
      this.speakingValue = false;
      this.runStartMs = -1;
      this.runMs = 0;
      this.floorMs = end;
      events.push({ type: 'speech_stopped', audioEndMs: Math.round(end) });
    }
  }
}
