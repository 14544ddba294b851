/**
 * The offline `echo` AI backend (`ai.provider: echo`): no account, no network. Each caller utterance,
 * found by a small energy VAD on the appended audio, is played back as the assistant's audio through
 * the same events an OpenAI Realtime session emits (bursty `audio` chunks, `responseCreated` /
 * `audioDone` / `responseDone`, `speechStarted` / `speechStopped`, transcripts), so an operator can
 * prove the SIP and audio path, resampler included, before spending anything, and the demo runs
 * anywhere. A new utterance during an echo cancels it (barge-in, reason `turn_detected`), and
 * createResponse() (e.g. the opening line) plays two beeps.
 *
 * Threading: everything runs on the JS thread. appendAudio() only queues (bounded); analysis and
 * every event happen on a later turn of the event loop, as they would for a network backend.
 */
import { performance } from 'node:perf_hooks';
import type { Logger } from '../logging/logger';
import { InvalidStateError } from '../util/errors';
import type { AiBackend } from './AiBackend';
import { aiAudioFormatInfo, type AiAudioFormatInfo } from './audioFormat';
import { convertAiAudio, encodeAiAudio } from './echo/codec';
import { OPENING_BEEPS, synthesizeTones, type ToneSegment } from './echo/tones';
import { UtteranceDetector, type UtteranceDetectorOptions, type UtteranceEvent } from './echo/UtteranceDetector';
import type { WireUsage } from './events';
import { notSent, SessionLifecycle } from './SessionLifecycle';
import type {
  AiServerError,
  AiSession,
  AiSessionOptions,
  AiSessionStats,
  ResponseCreateOptions,
  ResponseOutcome,
  ResponseStatus,
  ToolRegistration,
} from './types';
import { emptySessionStats } from './types';
import { addUsage, emptyUsage, summarizeUsage, type UsageSummary } from './usage';

export { DEFAULT_UTTERANCE_DETECTOR_OPTIONS, type UtteranceDetectorOptions } from './echo/UtteranceDetector';
export { OPENING_BEEPS, type ToneSegment } from './echo/tones';

/** Settings of the echo backend; every field has a default. */
export interface EchoBackendOptions {
  /** Utterance detection (threshold -40 dBFS, 100 ms to start, 600 ms of silence to end, 10 s cap, 40 ms padding). */
  vad?: Partial<UtteranceDetectorOptions>;
  /** Audio per `audio` event, ms (default 100). */
  chunkMs?: number;
  /** Audio emitted at once when a response starts, ms; at least one chunk (default 300). */
  leadMs?: number;
  /** Emission speed after the lead, relative to real time, ≥ 1 (default 4; Infinity emits everything at once). */
  speedup?: number;
  /** Caller audio waiting for analysis, ms; beyond it appended chunks are dropped and counted (default 5000). */
  maxPendingInputMs?: number;
  /** What createResponse() plays (default {@link OPENING_BEEPS}: 600 Hz then 900 Hz, 150 ms each). */
  openingTones?: readonly ToneSegment[];
}

/** Counters of an echo session: the common ones plus what the echo adds. */
export interface EchoSessionStats extends AiSessionStats {
  /** Caller utterances detected (ended). */
  utterances: number;
  /** Utterances cut at the VAD's maxUtteranceMs. */
  utterancesCapped: number;
  /** Caller audio ignored after a capped utterance until the caller paused, ms. */
  ignoredInputMs: number;
  /** Assistant audio emitted (echoes and beeps), ms. */
  emittedMs: number;
  /** Responses cancelled because the caller started speaking. */
  bargeIns: number;
  /** Deferred events (transcripts of sendUserText(), truncate errors) dropped over their cap. */
  eventsDropped: number;
  /** The last truncate() received, as given (floored, ≥ 0). */
  lastTruncate?: { itemId: string; audioEndMs: number };
}

const DEFAULTS = {
  chunkMs: 100,
  leadMs: 300,
  speedup: 4,
  maxPendingInputMs: 5000,
  responseQueueMax: 8,
} as const;

/** Assistant items remembered for truncate() checks. */
const DELIVERED_ITEMS_CAP = 64;
/** Deferred events waiting for the next tick. */
const LATER_CAP = 256;
const TOOL_NAME_RE = /^[a-zA-Z0-9_-]{1,64}$/;
const ZERO_USAGE: Readonly<WireUsage> = Object.freeze({ total_tokens: 0, input_tokens: 0, output_tokens: 0 });

interface ResolvedEchoOptions {
  vad: Partial<UtteranceDetectorOptions>;
  chunkMs: number;
  leadMs: number;
  speedup: number;
  maxPendingInputMs: number;
  openingTones: readonly ToneSegment[];
}

/** The offline echo backend: sessions that play each caller utterance back. */
export class EchoBackend implements AiBackend {
  readonly name = 'echo';
  readonly #opts: ResolvedEchoOptions;

  /**
   * Check and keep the settings.
   * @throws RangeError when a setting is out of range.
   */
  constructor(opts: EchoBackendOptions = {}) {
    this.#opts = resolveOptions(opts);
  }

  /** A new EchoSession for one call. */
  createSession(opts: AiSessionOptions, logger: Logger): EchoSession {
    return new EchoSession(opts, logger.child({ component: 'ai', backend: this.name }), this.#opts);
  }
}

interface EchoResponse {
  id: string;
  itemId: string;
  /** Audio in the output format, one element per `audio` event. */
  chunks: Buffer[];
  next: number;
  emittedBytes: number;
  totalMs: number;
  kind: 'echo' | 'tones';
  requested: boolean;
  resolve: ((o: ResponseOutcome) => void) | undefined;
  /** Set by cancelResponse(): emission has stopped and the response ends on the next tick. */
  cancelReason?: string;
}

/**
 * One echo conversation (one per call). Responses run one at a time; requests and automatic echoes
 * wait in one bounded queue. `died` is never emitted: nothing here can fail on its own.
 */
export class EchoSession extends SessionLifecycle implements AiSession {
  /** Formats of appendAudio() input and `audio` output. */
  readonly audioFormat: { input: AiAudioFormatInfo; output: AiAudioFormatInfo };

  readonly #session: AiSessionOptions;
  readonly #opts: ResolvedEchoOptions;
  readonly #log: Logger;
  readonly #detector: UtteranceDetector;
  readonly #queueMax: number;
  readonly #chunkBytes: number;
  readonly #leadChunks: number;
  readonly #intervalMs: number;
  readonly #maxPendingBytes: number;
  readonly #autoRespond: boolean;
  readonly #interrupt: boolean;

  #t0 = performance.now();
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  #processing: NodeJS.Immediate | undefined;
  #dropping = false;
  #queue: EchoResponse[] = [];
  #active: EchoResponse | undefined;
  #timer: NodeJS.Timeout | undefined;
  #tick: NodeJS.Immediate | undefined;
  /** Events owed to calls made by the call layer, emitted on the next tick (never from inside its call). */
  #later: (() => void)[] = [];
  #userItem: string | undefined;
  #itemSeq = 0;
  #respSeq = 0;
  readonly #delivered = new Map<string, number>();
  readonly #tools = new Set<string>();
  #usage = emptyUsage();
  readonly #stats: EchoSessionStats = {
    ...emptySessionStats(),
    utterances: 0,
    utterancesCapped: 0,
    ignoredInputMs: 0,
    emittedMs: 0,
    bargeIns: 0,
    eventsDropped: 0,
  };

  /**
   * Create an idle session; nothing happens until start().
   * @throws RangeError when a setting is out of range.
   */
  constructor(session: AiSessionOptions, logger: Logger, opts: EchoBackendOptions = {}) {
    super(logger);
    this.#session = session;
    this.#opts = resolveOptions(opts);
    this.#log = logger;
    this.audioFormat = { input: aiAudioFormatInfo(session.inputFormat), output: aiAudioFormatInfo(session.outputFormat) };
    this.#detector = new UtteranceDetector(session.inputFormat, this.#opts.vad);
    this.#queueMax = Math.max(1, session.responseQueueMax ?? DEFAULTS.responseQueueMax);
    this.#chunkBytes = this.#opts.chunkMs * this.audioFormat.output.bytesPerMs;
    this.#leadChunks = Math.max(1, Math.ceil(this.#opts.leadMs / this.#opts.chunkMs));
    this.#intervalMs = this.#opts.chunkMs / this.#opts.speedup;
    this.#maxPendingBytes = this.#opts.maxPendingInputMs * this.audioFormat.input.bytesPerMs;
    // Manual turns (null) still echo: the echo has no other way to take a turn.
    const td = session.turnDetection;
    this.#autoRespond = td?.createResponse !== false;
    this.#interrupt = td?.interruptResponse !== false;
  }

  // -------------------------------------------------------------------------------------------------
  // Lifecycle

  /** Always zero tokens and zero cost; `responses` counts the responses done. */
  get usage(): UsageSummary {
    return summarizeUsage(this.#usage);
  }

  /** A snapshot of the counters. */
  get stats(): EchoSessionStats {
    const s: EchoSessionStats = { ...this.#stats, ignoredInputMs: this.#detector.ignoredMs };
    if (this.#stats.lastTruncate) s.lastTruncate = { ...this.#stats.lastTruncate };
    return s;
  }

  /** Names of the tools registered (they are never called). */
  get toolNames(): string[] {
    return [...this.#tools];
  }

  /** Become ready at once (there is nothing to connect to). Rejects with InvalidStateError unless idle. */
  async start(): Promise<void> {
    this.beginStart();
    this.#t0 = performance.now();
    this.setState({ name: 'ready' });
    const vad = this.#detector.options;
    this.#log.info(
      { input: this.audioFormat.input.format, output: this.audioFormat.output.format, thresholdDbfs: vad.thresholdDbfs, silenceMs: vad.silenceMs },
      'echo AI session ready',
    );
    this.#schedule();
  }

  /**
   * As the session closes: caller audio still queued is dropped, the active response fails, queued
   * ones resolve as not sent. Listeners of the last responseDone may call back in: `ending` is
   * already true, so nothing new starts.
   */
  protected release(): void {
    this.#later = [];
    this.#pending = [];
    this.#pendingBytes = 0;
    const queued = this.#queue.splice(0);
    const active = this.#active;
    if (active) this.#finish(active, 'failed', 'session_closed');
    for (const r of queued) r.resolve?.(notSent('session_closed'));
    // After #finish, which schedules a tick of its own.
    if (this.#processing) clearImmediate(this.#processing);
    if (this.#tick) clearImmediate(this.#tick);
    this.#processing = undefined;
    this.#tick = undefined;
  }

  // -------------------------------------------------------------------------------------------------
  // Audio in

  /**
   * Queue caller audio (input format) for analysis on a later turn of the event loop. While the
   * session is not ready, or the queue holds more than maxPendingInputMs, the chunk is dropped and
   * counted. Int16Array samples are taken in host order (little-endian on every supported host).
   */
  appendAudio(chunk: Buffer | Uint8Array | Int16Array): void {
    const bytes = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (bytes.length === 0) return;
    if (this.state.name !== 'ready' || this.ending) {
      this.#dropAudio(bytes.length, this.ending ? 'closing' : this.state.name);
      return;
    }
    if (this.#pendingBytes + bytes.length > this.#maxPendingBytes) {
      this.#dropAudio(bytes.length, 'pending_full');
      return;
    }
    if (this.#dropping) {
      this.#log.info('caller audio accepted again');
      this.#dropping = false;
    }
    // A copy: the caller may reuse its buffer as soon as this returns.
    this.#pending.push(Buffer.from(bytes));
    this.#pendingBytes += bytes.length;
    this.#stats.appendedChunks += 1;
    this.#stats.appendedBytes += bytes.length;
    this.#processing ??= setImmediate(() => this.#processInput());
  }

  #dropAudio(bytes: number, why: string): void {
    this.#stats.droppedAudioChunks += 1;
    this.#stats.droppedAudioBytes += bytes;
    if (!this.#dropping) {
      this.#dropping = true;
      // Once per streak: 50 lines a second would drown the journal.
      this.#log.debug({ why }, `dropping caller audio [why:${why}]`);
    }
  }

  #processInput(): void {
    this.#processing = undefined;
    const events: UtteranceEvent[] = [];
    while (this.#pending.length > 0 && !this.closed) {
      const chunk = this.#pending.shift() as Buffer;
      this.#pendingBytes -= chunk.length;
      this.#detector.push(chunk, events);
      // A listener may close the session: stop at once, the rest of the queue is moot.
      for (const ev of events.splice(0)) {
        if (this.closed) return;
        if (ev.type === 'start') this.#onSpeechStart(ev.audioStartMs);
        else this.#onSpeechEnd(ev);
      }
    }
  }

  #onSpeechStart(audioStartMs: number): void {
    const itemId = this.#newItemId();
    this.#userItem = itemId;
    this.emit('speechStarted', { itemId, audioStartMs });
    const active = this.#active;
    if (active && this.#interrupt && !this.closed) {
      if (active.cancelReason === undefined) this.#stats.bargeIns += 1;
      this.#finish(active, 'cancelled', active.cancelReason ?? 'turn_detected');
    }
  }

  #onSpeechEnd(ev: Extract<UtteranceEvent, { type: 'end' }>): void {
    const itemId = this.#userItem ?? this.#newItemId();
    this.#userItem = undefined;
    this.#stats.utterances += 1;
    if (ev.capped) this.#stats.utterancesCapped += 1;
    const ms = ev.audio.length / this.audioFormat.input.bytesPerMs;
    this.#log.debug({ itemId, audioStartMs: ev.audioStartMs, audioEndMs: ev.audioEndMs, capped: ev.capped }, 'caller utterance');
    this.emit('speechStopped', { itemId, audioEndMs: ev.audioEndMs });
    if (this.closed) return;
    this.#emitTranscript('user', itemId, `[caller audio ${seconds(ms)} s]`);
    if (this.closed || !this.#autoRespond) return;
    const out = convertAiAudio(ev.audio, this.#session.inputFormat, this.#session.outputFormat);
    this.#enqueue(this.#newResponse('echo', out, false, undefined));
  }

  // -------------------------------------------------------------------------------------------------
  // Responses

  /**
   * Play the opening beeps as a response (queued behind the active one). Instructions and other
   * options are accepted and ignored. Resolves once the beeps are emitted; never rejects.
   */
  createResponse(opts: ResponseCreateOptions = {}): Promise<ResponseOutcome> {
    if (this.ending) return Promise.resolve(notSent('session_closed'));
    if (this.#queue.length >= this.#queueMax) {
      this.#stats.responsesDropped += 1;
      this.#log.warn({ queued: this.#queue.length }, `response.create refused [reason:queue_full, queued:${this.#queue.length}]`);
      return Promise.resolve(notSent('queue_full'));
    }
    this.#log.debug({ instructionsChars: opts.instructions?.length ?? 0 }, 'echo response requested: playing the opening tones');
    return new Promise<ResponseOutcome>((resolve) => {
      const pcm = synthesizeTones(this.#opts.openingTones, this.audioFormat.output.sampleRate);
      this.#stats.responsesRequested += 1;
      this.#enqueue(this.#newResponse('tones', encodeAiAudio(pcm, this.#session.outputFormat), true, resolve));
    });
  }

  /**
   * Cancel the active response, if any: its audio stops at once and `responseDone` (cancelled,
   * reason `client_cancelled`) follows on the next tick.
   */
  cancelResponse(): void {
    if (this.state.name !== 'ready') return;
    const active = this.#active;
    if (!active) {
      this.#log.debug('cancelResponse(): nothing active');
      return;
    }
    active.cancelReason ??= 'client_cancelled';
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#schedule();
  }

  #newItemId(): string {
    return `item_echo_${++this.#itemSeq}`;
  }

  #newResponse(kind: EchoResponse['kind'], audio: Buffer, requested: boolean, resolve: EchoResponse['resolve']): EchoResponse {
    const chunks: Buffer[] = [];
    for (let i = 0; i < audio.length; i += this.#chunkBytes) chunks.push(audio.subarray(i, Math.min(audio.length, i + this.#chunkBytes)));
    return {
      id: `resp_echo_${++this.#respSeq}`,
      itemId: this.#newItemId(),
      chunks,
      next: 0,
      emittedBytes: 0,
      totalMs: audio.length / this.audioFormat.output.bytesPerMs,
      kind,
      requested,
      resolve,
    };
  }

  #enqueue(r: EchoResponse): void {
    if (!r.requested && this.#queue.length >= this.#queueMax) {
      this.#stats.responsesDropped += 1;
      this.#log.warn({ queued: this.#queue.length }, `echo dropped [reason:queue_full, queued:${this.#queue.length}]`);
      return;
    }
    this.#queue.push(r);
    this.#schedule();
  }

  /** Run #onTick on the next turn of the event loop (once, however often asked). */
  #schedule(): void {
    if (this.ending) return;
    this.#tick ??= setImmediate(() => this.#onTick());
  }

  #onTick(): void {
    this.#tick = undefined;
    for (const fn of this.#later.splice(0)) {
      if (this.closed) return;
      fn();
    }
    const a = this.#active;
    if (a?.cancelReason !== undefined) this.#finish(a, 'cancelled', a.cancelReason);
    this.#pump();
  }

  #pump(): void {
    if (this.state.name !== 'ready' || this.#active) return;
    const r = this.#queue.shift();
    if (!r) return;
    this.#active = r;
    this.emit('responseCreated', { responseId: r.id, requested: r.requested });
    for (let i = 0; i < this.#leadChunks && this.#emitChunk(r); i++);
    this.#continue(r);
  }

  /**
   * Emit the next chunk of `r` and finish `r` after its last one; false when `r` is no longer
   * emitting (done, cancelled, or a listener closed the session).
   */
  #emitChunk(r: EchoResponse): boolean {
    if (this.#active !== r || r.cancelReason !== undefined) return false;
    if (r.next < r.chunks.length) {
      const data = r.chunks[r.next++];
      r.emittedBytes += data.length;
      this.#stats.emittedMs += data.length / this.audioFormat.output.bytesPerMs;
      this.#remember(r.itemId, r.emittedBytes);
      this.emit('audio', { responseId: r.id, itemId: r.itemId, data });
      if (this.#active !== r || r.cancelReason !== undefined) return false;
    }
    if (r.next < r.chunks.length) return true;
    this.#finish(r, 'completed', undefined);
    return false;
  }

  #continue(r: EchoResponse): void {
    if (this.#active !== r || r.cancelReason !== undefined) return;
    if (!Number.isFinite(this.#intervalMs)) {
      while (this.#emitChunk(r));
      return;
    }
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (this.#emitChunk(r)) this.#continue(r);
    }, this.#intervalMs);
  }

  /** End `r` (the active response): events in the Realtime order, then the next queued response. */
  #finish(r: EchoResponse, status: ResponseStatus, reason: string | undefined): void {
    if (this.#active !== r) return;
    this.#active = undefined;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    let outcome: ResponseOutcome;
    if (status === 'failed') {
      const why = reason ?? 'failed';
      outcome = { responseId: r.id, status, reason: why, requested: r.requested, error: { code: why, message: `response lost [reason:${why}]` } };
    } else {
      this.emit('audioDone', { responseId: r.id, itemId: r.itemId });
      const emittedMs = r.emittedBytes / this.audioFormat.output.bytesPerMs;
      const text =
        r.kind === 'tones'
          ? '[echo test tones]'
          : status === 'completed'
            ? `[echo ${seconds(emittedMs)} s]`
            : `[echo ${seconds(emittedMs)} s of ${seconds(r.totalMs)} s, interrupted]`;
      this.#emitTranscript('assistant', r.itemId, text);
      addUsage(this.#usage, ZERO_USAGE);
      this.emit('usage', this.usage);
      outcome = { responseId: r.id, status, requested: r.requested, usage: { ...ZERO_USAGE }, ...(reason ? { reason } : {}) };
    }
    this.#log.debug({ responseId: r.id, status, reason }, 'response done');
    this.emit('responseDone', outcome);
    r.resolve?.(outcome);
    this.#schedule();
  }

  #remember(itemId: string, bytes: number): void {
    if (!this.#delivered.has(itemId) && this.#delivered.size >= DELIVERED_ITEMS_CAP) {
      this.#delivered.delete(this.#delivered.keys().next().value as string);
    }
    this.#delivered.set(itemId, bytes);
  }

  // -------------------------------------------------------------------------------------------------
  // Barge-in, text, tools

  /**
   * Record how much of an assistant item the caller heard (`stats.truncates`, `stats.lastTruncate`).
   * Checked as the Realtime server checks it: an unknown item, or more than was delivered, is counted
   * in `truncateErrors` and reported as a non-fatal `error` event.
   */
  truncate(itemId: string, audioEndMs: number): void {
    const ms = Number.isFinite(audioEndMs) ? Math.max(0, Math.floor(audioEndMs)) : 0;
    if (this.state.name !== 'ready') {
      this.#log.debug({ itemId, audioEndMs: ms }, 'truncate skipped: session not ready');
      return;
    }
    this.#stats.truncates += 1;
    this.#stats.lastTruncate = { itemId, audioEndMs: ms };
    const bytes = this.#delivered.get(itemId);
    let err: AiServerError | undefined;
    if (bytes === undefined) {
      err = { code: 'item_not_found', type: 'invalid_request_error', message: `no assistant item with audio [itemId:${itemId}]`, param: 'item_id' };
    } else {
      const deliveredMs = bytes / this.audioFormat.output.bytesPerMs;
      if (ms > Math.ceil(deliveredMs)) {
        err = {
          code: 'invalid_value',
          type: 'invalid_request_error',
          message: `Audio content of ${Math.floor(deliveredMs)}ms is already shorter than ${ms}ms`,
          param: 'audio_end_ms',
        };
      }
    }
    if (!err) return;
    this.#stats.truncateErrors += 1;
    this.#log.warn({ code: err.code, itemId, audioEndMs: ms }, `truncate failed [itemId:${itemId}, audioEndMs:${ms}, code:${err.code}]: ${err.message}`);
    const info: AiServerError = { ...err, causeType: 'conversation.item.truncate' };
    this.#defer(() => this.emit('error', info));
  }

  /** Add a user text item (e.g. DTMF digits): emitted as a final user transcript. */
  sendUserText(text: string): void {
    if (this.closed) throw new InvalidStateError(`sendUserText() on a ${this.state.name} AI session`);
    const itemId = this.#newItemId();
    this.#defer(() => this.#emitTranscript('user', itemId, text));
  }

  /** Accepted and ignored (the echo has no model to instruct). */
  sendSystemText(text: string): void {
    if (this.closed) throw new InvalidStateError(`sendSystemText() on a ${this.state.name} AI session`);
    this.#log.debug({ chars: text.length }, 'system text ignored by the echo backend');
  }

  /** Accepted with the same checks as the Realtime backend; the echo never calls a tool. */
  registerTool(tool: ToolRegistration): void {
    if (this.closed) throw new InvalidStateError(`registerTool() on a ${this.state.name} AI session [tool:${tool.name}]`);
    if (typeof tool.name !== 'string' || !TOOL_NAME_RE.test(tool.name)) {
      throw new TypeError(`invalid tool name [name:${String(tool.name)}] (letters, digits, _ and -, at most 64)`);
    }
    if (typeof tool.handler !== 'function') throw new TypeError(`registerTool() needs a handler [tool:${tool.name}]`);
    this.#tools.add(tool.name);
  }

  #defer(fn: () => void): void {
    if (this.#later.length >= LATER_CAP) {
      this.#later.shift();
      this.#stats.eventsDropped += 1;
    }
    this.#later.push(fn);
    this.#schedule();
  }

  #emitTranscript(role: 'user' | 'assistant', itemId: string, text: string): void {
    this.emit('transcript', { role, itemId, text, final: true, atMs: Math.round(performance.now() - this.#t0) });
  }
}

function resolveOptions(o: EchoBackendOptions): ResolvedEchoOptions {
  const r: ResolvedEchoOptions = {
    vad: { ...(o.vad ?? {}) },
    chunkMs: o.chunkMs ?? DEFAULTS.chunkMs,
    leadMs: o.leadMs ?? DEFAULTS.leadMs,
    speedup: o.speedup ?? DEFAULTS.speedup,
    maxPendingInputMs: o.maxPendingInputMs ?? DEFAULTS.maxPendingInputMs,
    openingTones: o.openingTones ?? OPENING_BEEPS,
  };
  checkRange('chunkMs', r.chunkMs, 10, 1000, true);
  checkRange('leadMs', r.leadMs, 0, 60_000, false);
  if (!(r.speedup >= 1)) throw new RangeError(`echo option out of range [option:speedup, value:${String(r.speedup)}, min:1]`);
  checkRange('maxPendingInputMs', r.maxPendingInputMs, 100, 60_000, false);
  let tonesMs = 0;
  for (const t of r.openingTones) {
    checkRange('openingTones.freqHz', t.freqHz, 0, 3900, false);
    checkRange('openingTones.durationMs', t.durationMs, 0, 10_000, false);
    tonesMs += t.durationMs;
  }
  checkRange('openingTones total durationMs', tonesMs, 0, 10_000, false);
  // Fails fast on bad VAD settings (the backend is built once, at startup).
  new UtteranceDetector('pcm', r.vad);
  return r;
}

function checkRange(name: string, v: number, min: number, max: number, integer: boolean): void {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max || (integer && !Number.isInteger(v))) {
    throw new RangeError(`echo option out of range [option:${name}, value:${String(v)}, min:${min}, max:${max}]`);
  }
}

/** Seconds with one decimal, for transcript labels. */
function seconds(ms: number): string {
  return (ms / 1000).toFixed(1);
}
