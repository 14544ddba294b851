/**
 * The uplink gate over a {@link CallVad}: forwards a call's audio only while the caller speaks,
 * starting with the pre-roll, each sample once and in order. A cascaded pipeline collects a turn
 * the same way (from `speechStart` to `speechEnd`).
 */
import type { CallVad, SpeechStartEvent } from './types';

/** Forwards speech (and its pre-roll) of one call; everything else is held back. */
export class SpeechGate {
  readonly #vad: CallVad;
  readonly #forward: (pcm: Int16Array) => void;
  /** End of the last forwarded audio: nothing before it is forwarded again. */
  #sent = 0;
  #forwarded = 0;

  /** Gate `vad`'s audio into `forward` (the array passed is a view or a copy: send or copy it at once). */
  constructor(vad: CallVad, forward: (pcm: Int16Array) => void) {
    this.#vad = vad;
    this.#forward = forward;
    vad.on('speechStart', this.#onStart);
  }

  /** Samples forwarded so far. */
  get forwardedSamples(): number {
    return this.#forwarded;
  }

  /** Push the next PCM of the call through the detector, and forward it while speech is heard. */
  push(pcm: Int16Array): void {
    const start = this.#vad.pushedSamples;
    this.#vad.push(pcm);
    const end = start + pcm.length;
    if (!this.#vad.speaking || end <= this.#sent) return;
    this.#send(pcm.subarray(Math.max(0, this.#sent - start)));
    this.#sent = end;
  }

  /** Stop listening to the detector (it stays open). */
  close(): void {
    this.#vad.off('speechStart', this.#onStart);
  }

  #onStart = (e: SpeechStartEvent): void => {
    if (e.endSample <= this.#sent) return;
    this.#send(e.audio.subarray(Math.max(0, this.#sent - e.audioStartSample)));
    this.#sent = e.endSample;
  };

  #send(pcm: Int16Array): void {
    if (pcm.length === 0) return;
    this.#forwarded += pcm.length;
    this.#forward(pcm);
  }
}
