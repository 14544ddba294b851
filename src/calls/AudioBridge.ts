/**
 * AudioBridge: the per-call pump between the SIP call's PCM rings and the AI session.
 *
 * Caller side: frames at the bridge rate are gathered into batches of `batchMs`, then resampled to
 * 24 kHz (`pcm`) or G.711-encoded (`pcmu`/`pcma`, bridge at 8 kHz, no resampling) once per batch
 * and appended to the AI session. While the session is not ready (starting, reconnecting) batches
 * wait in a bounded queue and go out as soon as it is.
 *
 * Agent side: model audio arrives in bursts faster than real time; it is decoded, resampled to the
 * bridge rate by one resampler kept for the whole call, and queued per item in a
 * {@link PlayoutBuffer} over the call's TX ring. {@link AudioBridge.tick} pumps it once per audio
 * tick of the user agent. The playout buffer is the TX ring's only writer and owns its write index.
 *
 * Recording: a {@link RecorderTap} on the playout pairs every caller batch with the agent audio the
 * caller heard meanwhile, for the call's recorder.
 *
 * Barge-in: on `speechStarted` the playout is flushed synchronously in the listener, before
 * anything else, and every interrupted assistant item is truncated at min(played, received) ms
 * (integer, never negative; items that had finished playing are not touched). A greeting marked
 * non-interruptible is not flushed.
 *
 * Threading: JS thread only. The TX ring's indices are the only state shared with the clock thread.
 */
import { performance } from 'node:perf_hooks';
import { TypedEmitter } from '../util/TypedEmitter';
import type { Logger } from '../logging/logger';
import { PlayoutBuffer, type PcmSink, type PlayoutFlushReport } from '../audio/PlayoutBuffer';
import { Resampler, type ResamplerKernelFactory } from '../audio/Resampler';
import { decodeALaw, decodeMuLaw, encodeALaw, encodeMuLaw } from '../audio/g711';
import { bytesLEToInt16 } from '../audio/pcm';
import { AI_SAMPLE_RATE, G711_SAMPLE_RATE } from '../audio/format';
import type { AiSession } from '../ai/types';
import type { CallLeg, CallRecorderSink } from './types';
import type { CallVad, SpeechStartEvent } from '../audio/vad';
import { LatencyProbe, type AudioLatency } from './latency';
import { RecorderTap } from './RecorderTap';
import { monotonicUs } from '../util/clock';

/** The part of a call the bridge touches. */
export type BridgeCall = Pick<CallLeg, 'sampleRate' | 'writeAudio' | 'clearAudio' | 'txIndex' | 'on' | 'off'> &
  Partial<Pick<CallLeg, 'txTicks' | 'jitterDelayMs' | 'audioStats'>>;

/** Tunables of an {@link AudioBridge}. */
export interface AudioBridgeOptions {
  /** Caller audio per append, ms: 10-200 (default 20: each frame goes out as it arrives). */
  batchMs?: number;
  /** Agent audio held beyond the TX ring, ms; must cover the longest prompt (default 60000). */
  maxBacklogMs?: number;
  /**
   * Jitter tolerance for model audio paced near real time, ms (default 0): a reply starting into an
   * empty ring, or resuming after an underrun, waits until this much is queued, at most this long
   * (PlayoutBuffer `prebufferMs`). Audio that comes in bursts waits for nothing.
   */
  prebufferMs?: number;
  /** Caller audio kept while the AI session is not ready, ms (default 3000; oldest dropped, counted). */
  preReadyMs?: number;
  /** The greeting stops when the caller starts speaking (default false). */
  greetingInterruptible?: boolean;
  /** Heard agent audio waiting to be paired with caller audio for the recorder, ms (default 2000). */
  recorderQueueMs?: number;
  /** The resampler's engine (the addon's native kernel in the daemon); default the JS reference kernel. */
  resamplerKernel?: ResamplerKernelFactory;
  /** Where to record added latency (uplink, downlink, barge-in cut-off); unset: not measured. */
  latency?: AudioLatency;
  /**
   * The uplink gate (ai.inputGate: vad): a detector for this call. Caller audio reaches the model
   * only while it hears speech (with the pre-roll before the onset); otherwise silence, so noise
   * neither wakes the server's VAD nor cuts the agent off.
   */
  inputGate?: (sampleRate: number) => CallVad;
}

/** What one barge-in did. */
export interface BargeInReport {
  /** True when the greeting was playing and is not interruptible: nothing was flushed. */
  ignored: boolean;
  /** The item that was playing (or next to play), when one was. */
  itemId?: string;
  /** True when that item was a prompt (greeting), not model audio. */
  prompt: boolean;
  /** Of that item: audio played and received, ms. */
  playedMs: number;
  receivedMs: number;
  /** Truncations made (assistant items interrupted), in order. */
  truncated: { itemId: string; audioEndMs: number }[];
}

/** Events of an {@link AudioBridge}. */
export type AudioBridgeEvents = {
  /** The caller spoke over the agent (or over a non-interruptible greeting: `ignored`). */
  bargeIn: [BargeInReport];
  /** First model audio queued after the caller stopped speaking: the turn latency. */
  turnLatency: [{ itemId: string; latencyMs: number }];
};

/** Counters of a bridge (samples at the bridge rate). */
export interface AudioBridgeStats {
  inputBatches: number;
  inputSamples: number;
  /** Caller samples dropped: pre-ready queue over its cap, or the AI session closed or dead while attached. */
  inputDroppedSamples: number;
  /** Caller samples not sent because the AI was detached on purpose (the call is ending). Not drops. */
  inputDetachedSamples: number;
  /** Caller samples waiting for the AI session now. */
  pendingInputSamples: number;
  /** Caller samples the uplink gate sent as silence (no speech heard). */
  gatedSamples: number;
  bargeIns: number;
  bargeInsIgnored: number;
  truncates: number;
  /** Model audio chunks received, and those arriving after the AI was detached. */
  outputChunks: number;
  outputIgnoredChunks: number;
  /** Playout counters (see PlayoutBuffer). */
  playedSamples: number;
  flushedSamples: number;
  underruns: number;
  playoutDroppedSamples: number;
  playoutDiscardedSamples: number;
  lateRefills: number;
  /** Reply starts that waited for prebufferMs, waits again after an underrun, waits cut short by the time bound. */
  prebuffers: number;
  rebuffers: number;
  prebufferTimeouts: number;
  /** Heard agent samples dropped because the recorder queue was full. */
  recorderDroppedSamples: number;
}

const DEFAULTS = { batchMs: 20, maxBacklogMs: 60_000, preReadyMs: 3000, recorderQueueMs: 2000 } as const;

interface PendingPrompt {
  resolve: () => void;
  promise: Promise<void>;
}

/** The per-call audio pump. */
export class AudioBridge extends TypedEmitter<AudioBridgeEvents> {
  /** Bridge rate of the call, Hz. */
  readonly sampleRate: number;
  /** Format exchanged with the AI session. */
  readonly aiFormat: 'pcm' | 'pcmu' | 'pcma';

  readonly #call: BridgeCall;
  readonly #log: Logger;
  readonly #playout: PlayoutBuffer;
  readonly #batchSamples: number;
  readonly #preReadySamples: number;
  readonly #greetingInterruptible: boolean;

  #session: AiSession | undefined;
  #unsubscribeSession: (() => void) | undefined;
  readonly #onCallAudio = (pcm: Int16Array, firstUs?: number, lastUs?: number): void => this.#onCallerAudio(pcm, firstUs, lastUs);
  readonly #probe: LatencyProbe | undefined;

  // Caller side.
  readonly #inBuf: Int16Array;
  // Uplink gate: its detector, where the real audio sent so far ends (call samples), a silence buffer.
  readonly #gate: CallVad | undefined;
  #gateSent = 0;
  #silence = new Int16Array(0);
  #inFill = 0;
  /** Caller samples received since the start (the stream position latency stamps refer to). */
  #inTotal = 0;
  readonly #inResampler: Resampler | undefined;
  #inScratch: Int16Array;
  #g711Scratch: Uint8Array;
  #pending: { data: Int16Array | Uint8Array; samples: number }[] = [];
  #pendingSamples = 0;

  // Agent side.
  readonly #outResampler: Resampler | undefined;
  #outScratch = new Int16Array(0);
  #greetingId: string | undefined;
  readonly #prompts = new Map<string, PendingPrompt>();
  #turnT0: number | undefined;
  /** Model audio that arrived into an idle ring and is held by the prebuffer: its ring index and arrival, for the latency probe. */
  #heldArrival: { index: number; us: number } | undefined;

  readonly #recorder: RecorderTap | undefined;

  #closed = false;
  readonly #stats = {
    inputBatches: 0,
    inputSamples: 0,
    inputDroppedSamples: 0,
    inputDetachedSamples: 0,
    gatedSamples: 0,
    bargeIns: 0,
    bargeInsIgnored: 0,
    truncates: 0,
    outputChunks: 0,
    outputIgnoredChunks: 0,
  };

  /**
   * @throws RangeError when `aiFormat` is G.711 and the bridge does not run at 8 kHz, or on a bad batch size.
   */
  constructor(init: {
    call: BridgeCall;
    session: AiSession;
    aiFormat: 'pcm' | 'pcmu' | 'pcma';
    logger: Logger;
    recorder?: CallRecorderSink;
    options?: AudioBridgeOptions;
  }) {
    super();
    const o = init.options ?? {};
    this.#call = init.call;
    this.#log = init.logger;
    this.sampleRate = init.call.sampleRate;
    this.aiFormat = init.aiFormat;
    if (this.aiFormat !== 'pcm' && this.sampleRate !== G711_SAMPLE_RATE) {
      throw new RangeError(`G.711 passthrough needs an 8 kHz bridge [aiFormat:${this.aiFormat}, sampleRate:${this.sampleRate}]`);
    }
    const batchMs = o.batchMs ?? DEFAULTS.batchMs;
    if (!(batchMs >= 10 && batchMs <= 200)) throw new RangeError(`batchMs out of range [batchMs:${batchMs}]`);
    this.#batchSamples = Math.round((this.sampleRate * batchMs) / 1000);
    this.#preReadySamples = Math.floor((this.sampleRate * (o.preReadyMs ?? DEFAULTS.preReadyMs)) / 1000);
    this.#greetingInterruptible = o.greetingInterruptible ?? false;
    this.#inBuf = new Int16Array(this.#batchSamples);
    if (this.aiFormat === 'pcm') {
      this.#inResampler = Resampler.create(this.sampleRate, AI_SAMPLE_RATE, { kernel: o.resamplerKernel });
      this.#outResampler = Resampler.create(AI_SAMPLE_RATE, this.sampleRate, { kernel: o.resamplerKernel });
      this.#inScratch = new Int16Array(this.#inResampler.maxOutputLength(this.#inBuf.length));
      this.#g711Scratch = new Uint8Array(0);
    } else {
      this.#inScratch = new Int16Array(0);
      this.#g711Scratch = new Uint8Array(this.#inBuf.length);
    }

    if (init.recorder) {
      this.#recorder = new RecorderTap(init.recorder, {
        sampleRate: this.sampleRate,
        queueMs: o.recorderQueueMs ?? DEFAULTS.recorderQueueMs,
        logger: this.#log,
      });
    }

    const call = this.#call;
    const sink: PcmSink = {
      write: (pcm) => call.writeAudio(pcm),
      clear: () => call.clearAudio(),
      readIndex: () => call.txIndex()[0],
      writeIndex: () => call.txIndex()[1],
      ...(call.audioStats ? { silentFrames: () => silentTicks(call.audioStats!()) } : {}),
    };
    this.#playout = new PlayoutBuffer(sink, {
      sampleRate: this.sampleRate,
      maxBacklogMs: o.maxBacklogMs ?? DEFAULTS.maxBacklogMs,
      prebufferMs: o.prebufferMs ?? 0,
      tap: this.#recorder,
    });
    this.#playout.on('itemPlayed', (r) => {
      if (r.prompt) this.#settlePrompt(r.itemId);
    });
    const txTicks = call.txTicks?.bind(call);
    if (o.latency && txTicks) {
      this.#probe = new LatencyProbe(o.latency, Math.round(this.sampleRate / 50), txTicks, call.jitterDelayMs?.bind(call));
    }
    if (o.inputGate) {
      this.#gate = o.inputGate(this.sampleRate);
      this.#gate.on('speechStart', (e) => this.#gateOpen(e));
    }
    call.on('audio', this.#onCallAudio);
    this.#attach(init.session);
  }

  /** True after close(). */
  get closed(): boolean {
    return this.#closed;
  }

  /** True while the greeting prompt still has audio to play. */
  get greetingPlaying(): boolean {
    if (this.#greetingId === undefined || this.#closed) return false;
    const r = this.#playout.item(this.#greetingId);
    return r !== undefined && !r.flushed && r.playedSamples < r.receivedSamples;
  }

  /** Agent audio queued and not yet played (ring and backlog), ms. */
  get pendingPlayoutMs(): number {
    if (this.#closed) return 0;
    const [read] = this.#call.txIndex();
    const backlog = this.#playout.stats.backlogSamples;
    return (Math.max(0, this.#playout.writeIndex - read) + backlog) * 1000 / this.sampleRate;
  }

  /** A snapshot of the counters. */
  get stats(): AudioBridgeStats {
    const p = this.#playout.stats;
    return {
      ...this.#stats,
      pendingInputSamples: this.#pendingSamples,
      playedSamples: p.playedSamples,
      flushedSamples: p.flushedSamples,
      underruns: p.underruns,
      playoutDroppedSamples: p.droppedSamples,
      playoutDiscardedSamples: p.discardedSamples,
      lateRefills: p.lateRefills,
      prebuffers: p.prebuffers,
      rebuffers: p.rebuffers,
      prebufferTimeouts: p.prebufferTimeouts,
      recorderDroppedSamples: this.#recorder?.droppedSamples ?? 0,
    };
  }

  /** Accounting of one queued item (model item id or prompt id). */
  item(itemId: string): ReturnType<PlayoutBuffer['item']> {
    return this.#playout.item(itemId);
  }

  /**
   * Queue the greeting; it is the prompt `greeting`, interruptible only if so configured.
   * Resolves once it has played, was flushed, or the bridge closed.
   */
  playGreeting(pcm: Int16Array): Promise<void> {
    return this.playPrompt(pcm, 'greeting');
  }

  /** Queue a prompt after whatever is queued; resolves once it has played, was flushed, or the bridge closed. */
  playPrompt(pcm: Int16Array, promptId?: string): Promise<void> {
    if (this.#closed) return Promise.resolve();
    const id = this.#playout.appendPrompt(pcm, promptId ? `${promptId}_${this.#prompts.size + 1}` : undefined);
    if (promptId === 'greeting') this.#greetingId = id;
    let resolve!: () => void;
    const promise = new Promise<void>((r) => (resolve = r));
    this.#prompts.set(id, { resolve, promise });
    if (pcm.length === 0) this.#settlePrompt(id);
    return promise;
  }

  /** Resolves once everything queued so far has played or been flushed (needs ticks; resolves at close). */
  whenDrained(): Promise<void> {
    return this.#playout.whenDrained();
  }

  /** Drop all queued agent audio now, without truncating anything (the call is ending). */
  flush(): PlayoutFlushReport | null {
    if (this.#closed) return null;
    const report = this.#playout.flush();
    this.#heldArrival = undefined;
    this.#outResampler?.reset();
    if (report) this.#settleFlushedPrompts(report);
    return report;
  }

  /**
   * Stop exchanging audio with the AI session (it is closing or dead): caller audio goes only to the
   * recorder, model audio is ignored, barge-in is off. Queued agent audio keeps playing.
   */
  detachAi(): void {
    this.#unsubscribeSession?.();
    this.#unsubscribeSession = undefined;
    this.#session = undefined;
    this.#pending = [];
    this.#pendingSamples = 0;
  }

  /** Once per user-agent audio tick: refill the TX ring and settle played accounting (the recorder's too). */
  tick(): void {
    if (this.#closed) return;
    this.#playout.pump();
    if (this.#heldArrival) this.#stampHeldArrival();
    this.#probe?.tick();
  }

  /** Stop: flush pending caller audio to the recorder, release listeners and the playout. Idempotent. */
  close(): void {
    if (this.#closed) return;
    if (this.#inFill > 0) this.#sendBatch();
    this.detachAi();
    this.#closed = true;
    this.#probe?.close();
    this.#call.off('audio', this.#onCallAudio);
    this.#playout.close();
    for (const p of this.#prompts.values()) p.resolve();
    this.#prompts.clear();
    this.#recorder?.close();
    this.#gate?.close();
    this.removeAllListeners();
  }

  // ---------------------------------------------------------------------------------------------
  // AI session wiring

  #attach(session: AiSession): void {
    this.#session = session;
    const onAudio = (ev: { itemId: string; data: Buffer }): void => this.#onModelAudio(ev.itemId, ev.data);
    const onAudioDone = (ev: { itemId: string }): void => this.#onModelAudioDone(ev.itemId);
    const onSpeechStarted = (): void => this.#onSpeechStarted();
    const onSpeechStopped = (): void => {
      this.#turnT0 = performance.now();
    };
    const onState = (): void => {
      if (session.state.name === 'ready') this.#sendPending();
    };
    session.on('audio', onAudio);
    session.on('audioDone', onAudioDone);
    session.on('speechStarted', onSpeechStarted);
    session.on('speechStopped', onSpeechStopped);
    session.on('stateChange', onState);
    this.#unsubscribeSession = () => {
      session.off('audio', onAudio);
      session.off('audioDone', onAudioDone);
      session.off('speechStarted', onSpeechStarted);
      session.off('speechStopped', onSpeechStopped);
      session.off('stateChange', onState);
    };
  }

  // ---------------------------------------------------------------------------------------------
  // Caller -> AI

  #onCallerAudio(pcm: Int16Array, firstUs = Number.NaN, lastUs = Number.NaN): void {
    if (this.#closed) return;
    this.#inTotal += pcm.length;
    this.#probe?.callerAudio(this.#inTotal, pcm.length, firstUs, lastUs);
    let off = 0;
    while (off < pcm.length) {
      const n = Math.min(pcm.length - off, this.#inBuf.length - this.#inFill);
      this.#inBuf.set(pcm.subarray(off, off + n), this.#inFill);
      this.#inFill += n;
      off += n;
      // Exactly one batch per append, however many frames a wake delivered.
      if (this.#inFill >= this.#batchSamples) this.#sendBatch(this.#inTotal - (pcm.length - off));
    }
  }

  /** Send what is batched; `end` is the stream position just past it (for latency stamps). */
  #sendBatch(end = this.#inTotal): void {
    const n = this.#inFill;
    this.#inFill = 0;
    this.#stats.inputSamples += n;
    this.#recorder?.caller(this.#inBuf.subarray(0, n));
    const batch = this.#gate ? this.#gated(this.#gate, this.#inBuf.subarray(0, n)) : this.#inBuf.subarray(0, n);
    this.#forward(batch, end);
  }

  /**
   * What the gate lets through of a batch: the batch while speech is heard (less what its pre-roll
   * already carried), silence of the same length otherwise.
   */
  #gated(gate: CallVad, batch: Int16Array): Int16Array {
    const before = gate.pushedSamples;
    gate.push(batch);
    const after = before + batch.length;
    if (gate.speaking) {
      const from = Math.max(0, Math.min(batch.length, this.#gateSent - before));
      this.#gateSent = Math.max(this.#gateSent, after);
      return batch.subarray(from);
    }
    this.#stats.gatedSamples += batch.length;
    if (this.#silence.length < batch.length) this.#silence = new Int16Array(batch.length);
    return this.#silence.subarray(0, batch.length);
  }

  /** Speech began: send its pre-roll (what was held back as silence) at once. */
  #gateOpen(e: SpeechStartEvent): void {
    if (this.#closed || e.endSample <= this.#gateSent) return;
    const pre = e.audio.subarray(Math.max(0, this.#gateSent - e.audioStartSample));
    this.#gateSent = e.endSample;
    // Its frames' latency is measured as their batches are (the probe counts each position once).
    if (pre.length > 0) this.#forward(pre, undefined);
  }

  /**
   * Send caller audio (call rate) to the session, or keep it while the session comes up. `end`: the
   * stream position just past it, for the latency probe (undefined: not measured).
   */
  #forward(batch: Int16Array, end: number | undefined): void {
    const n = batch.length;
    const probe = end === undefined ? undefined : this.#probe;
    if (n === 0) {
      probe?.callerAudioSent(end!, true);
      return;
    }
    const session = this.#session;
    if (!session) {
      this.#stats.inputDetachedSamples += n;
      probe?.callerAudioSent(end!, false);
      return;
    }
    const state = session.state.name;
    if (state === 'closed' || state === 'died') {
      this.#stats.inputDroppedSamples += n;
      probe?.callerAudioSent(end!, false);
      return;
    }
    const payload = this.#encode(batch);
    if (state === 'ready' && this.#pending.length === 0) {
      session.appendAudio(payload);
      this.#stats.inputBatches++;
      probe?.callerAudioSent(end!, true);
      return;
    }
    // Held back while the session comes up: that wait is set-up, not bridge latency.
    probe?.callerAudioSent(end!, false);
    // Not ready yet (starting, reconnecting): keep the most recent audio so what the caller says
    // while the session comes up still reaches the model.
    this.#pending.push({ data: payload.slice(), samples: n });
    this.#pendingSamples += n;
    while (this.#pendingSamples > this.#preReadySamples && this.#pending.length > 0) {
      const old = this.#pending.shift()!;
      this.#pendingSamples -= old.samples;
      this.#stats.inputDroppedSamples += old.samples;
    }
    if (state === 'ready') this.#sendPending();
  }

  #encode(batch: Int16Array): Int16Array | Uint8Array {
    if (this.#inResampler) {
      if (this.#inScratch.length < this.#inResampler.maxOutputLength(batch.length)) {
        this.#inScratch = new Int16Array(this.#inResampler.maxOutputLength(batch.length));
      }
      return this.#inResampler.process(batch, this.#inScratch);
    }
    if (this.#g711Scratch.length < batch.length) this.#g711Scratch = new Uint8Array(batch.length);
    const out = this.#g711Scratch.subarray(0, batch.length);
    return this.aiFormat === 'pcmu' ? encodeMuLaw(batch, out) : encodeALaw(batch, out);
  }

  #sendPending(): void {
    const session = this.#session;
    if (!session || this.#pending.length === 0 || session.state.name !== 'ready') return;
    const chunks = this.#pending;
    this.#pending = [];
    this.#pendingSamples = 0;
    // One append for the whole backlog: it is at most preReadyMs long.
    session.appendAudio(concatChunks(chunks.map((c) => c.data)));
    this.#stats.inputBatches++;
  }

  // ---------------------------------------------------------------------------------------------
  // AI -> caller

  #onModelAudio(itemId: string, data: Buffer): void {
    const arrivalUs = this.#probe ? monotonicUs() : 0;
    this.#stats.outputChunks++;
    if (this.#closed) {
      this.#stats.outputIgnoredChunks++;
      return;
    }
    let pcm: Int16Array;
    if (this.#outResampler) {
      const samples = bytesLEToInt16(data.length % 2 === 0 ? data : data.subarray(0, data.length - 1));
      const need = this.#outResampler.maxOutputLength(samples.length);
      if (this.#outScratch.length < need) this.#outScratch = new Int16Array(need);
      pcm = this.#outResampler.process(samples, this.#outScratch);
    } else {
      if (this.#outScratch.length < data.length) this.#outScratch = new Int16Array(data.length);
      const out = this.#outScratch.subarray(0, data.length);
      pcm = this.aiFormat === 'pcmu' ? decodeMuLaw(data, out) : decodeALaw(data, out);
    }
    const before = this.#playout.writeIndex;
    const idle = this.#probe !== undefined && this.#playout.stats.backlogSamples === 0 && this.#call.txIndex()[0] >= before;
    this.#playout.append(itemId, pcm);
    if (idle && this.#playout.writeIndex > before) this.#probe!.modelAudio(before, arrivalUs);
    // Held by the prebuffer: its downlink latency runs from this arrival to when it plays.
    else if (idle && this.#playout.stats.backlogSamples > 0) this.#heldArrival = { index: before, us: arrivalUs };
    else if (this.#heldArrival) this.#stampHeldArrival();
    if (this.#turnT0 !== undefined && pcm.length > 0) {
      const item = this.#playout.item(itemId);
      if (item && !item.flushed) {
        const latencyMs = performance.now() - this.#turnT0;
        this.#turnT0 = undefined;
        this.emit('turnLatency', { itemId, latencyMs });
      }
    }
  }

  #stampHeldArrival(): void {
    const held = this.#heldArrival!;
    if (this.#playout.writeIndex <= held.index) return;
    this.#heldArrival = undefined;
    this.#probe?.modelAudio(held.index, held.us);
  }

  #onModelAudioDone(itemId: string): void {
    if (this.#closed) return;
    // The resampler's filter still owes the item's last few samples; the next item starts from a clean state.
    this.#playout.markItemDone(itemId, this.#outResampler?.flush());
    if (this.#heldArrival) this.#stampHeldArrival();
  }

  #onSpeechStarted(): void {
    const speechUs = this.#probe ? monotonicUs() : 0;
    this.#turnT0 = undefined;
    if (this.#closed) return;
    if (this.greetingPlaying && !this.#greetingInterruptible) {
      this.#stats.bargeInsIgnored++;
      this.emit('bargeIn', { ignored: true, itemId: this.#greetingId, prompt: true, playedMs: 0, receivedMs: 0, truncated: [] });
      return;
    }
    // Flush first: every further millisecond of queued audio is audio the caller talks over.
    const report = this.#playout.flush();
    this.#heldArrival = undefined;
    this.#outResampler?.reset();
    if (!report) return;
    // Timed only when old audio was still in the ring, i.e. the caller was hearing it.
    if (report.ringDiscardedSamples > 0) this.#probe?.bargeIn(speechUs, report.stoppedAt);
    this.#stats.bargeIns++;
    this.#settleFlushedPrompts(report);
    const truncated: { itemId: string; audioEndMs: number }[] = [];
    const session = this.#session;
    for (const id of report.flushedItemIds) {
      const item = this.#playout.item(id);
      const prompt = id === report.itemId ? report.prompt : item?.prompt ?? false;
      if (prompt) continue;
      const played = id === report.itemId ? report.playedMs : item?.playedMs ?? 0;
      const received = id === report.itemId ? report.receivedMs : item?.receivedMs ?? 0;
      const audioEndMs = Math.max(0, Math.floor(Math.min(played, received)));
      session?.truncate(id, audioEndMs);
      this.#stats.truncates++;
      truncated.push({ itemId: id, audioEndMs });
    }
    this.#log.debug({ itemId: report.itemId, playedMs: report.playedMs, receivedMs: report.receivedMs, truncated }, 'barge-in: playout flushed');
    this.emit('bargeIn', {
      ignored: false,
      itemId: report.itemId,
      prompt: report.prompt,
      playedMs: report.playedMs,
      receivedMs: report.receivedMs,
      truncated,
    });
  }

  #settleFlushedPrompts(report: PlayoutFlushReport): void {
    for (const id of report.flushedItemIds) this.#settlePrompt(id);
  }

  #settlePrompt(id: string): void {
    const p = this.#prompts.get(id);
    if (!p) return;
    this.#prompts.delete(id);
    p.resolve();
  }
}

function concatChunks(chunks: (Int16Array | Uint8Array)[]): Int16Array | Uint8Array {
  const total = chunks.reduce((s, c) => s + c.length, 0);
  if (chunks[0] instanceof Int16Array) {
    const out = new Int16Array(total);
    let o = 0;
    for (const c of chunks as Int16Array[]) {
      out.set(c, o);
      o += c.length;
    }
    return out;
  }
  const out = new Uint8Array(total);
  let o = 0;
  for (const c of chunks as Uint8Array[]) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

/** Clock-thread ticks that played silence in whole or in part (the native port's counters). */
function silentTicks(s: { txSilentFrames: number; txUnderruns: number } | null): number {
  return s ? s.txSilentFrames + s.txUnderruns : 0;
}
