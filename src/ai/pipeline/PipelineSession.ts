/**
 * One call's conversation through a cascade (`ai.provider: pipeline`): a local VAD takes the
 * turns, the caller's turn is transcribed (speech-to-text), a chat model answers (streamed, with
 * the same tools as the Realtime backend), and each sentence of the answer is spoken (text-to-speech)
 * as soon as it is complete, so the caller hears the first sentence while the model still writes
 * the rest. It emits the events of an OpenAI Realtime session, so the call layer (greeting, barge-in,
 * tools, transcripts, records, fallback) is the same for every backend.
 *
 * Barge-in: when the caller starts speaking over the agent, the active response stops at once (its
 * chat and speech requests are aborted) and, once the call layer says how much was played
 * (truncate), the history keeps only what the caller heard: whole sentences played, and the heard
 * share of the cut one by played samples.
 *
 * Threading: everything runs on the JS thread; appendAudio() only queues (bounded) and analysis
 * happens on a later turn of the event loop.
 */
import { performance } from 'node:perf_hooks';
import { Resampler } from '../../audio/Resampler';
import type { Logger } from '../../logging/logger';
import { AiSessionError, InvalidStateError } from '../../util/errors';
import { aiAudioFormatInfo, type AiAudioFormatInfo } from '../audioFormat';
import { decodeAiAudio, encodeAiAudio } from '../echo/codec';
import { UtteranceDetector, type UtteranceDetectorOptions, type UtteranceEvent } from '../echo/UtteranceDetector';
import type { CallVad, SpeechEndEvent, SpeechStartEvent, Vad } from '../../audio/vad';
import { notSent, SessionLifecycle, type SessionEnd } from '../SessionLifecycle';
import { assertToolName } from '../realtime/ToolRunner';
import type {
  AiSession,
  AiSessionOptions,
  AiSessionStats,
  ResponseCreateOptions,
  ResponseOutcome,
  ResponseStatus,
  ToolCallRecord,
  ToolRegistration,
  ToolResult,
} from '../types';
import { emptySessionStats } from '../types';
import { addUsage, emptyUsage, summarizeUsage, type PriceTable, type UsageSummary } from '../usage';
import { SentenceSplitter } from './sentences';
import { ServiceError, chat, speak, transcribe, type ChatMessage, type ChatToolCall, type ServiceEndpoint } from './services';

/** Settings of the pipeline backend (from `ai.pipeline`). */
export interface PipelineOptions {
  stt: ServiceEndpoint & { model: string; language?: string; prompt?: string };
  chat: ServiceEndpoint & { model: string; temperature?: number; maxTokens?: number; historyMessages: number };
  tts: ServiceEndpoint & { model: string; voice: string; speed?: number; instructions?: string };
  /** Turn-taking by energy (when no neural VAD is given, or its silence/length settings for it). */
  vad: Partial<UtteranceDetectorOptions>;
  /** The process's neural VAD (Silero, energy fallback inside it); unset: energy turn-taking. */
  neuralVad?: Vad;
  /** ISO-639-1 language of the conversation (transcription, and the model is told to answer in it). */
  language?: string;
  /** Prices for the cost estimate, USD per 1M chat tokens. */
  prices: { input: number; output: number };
  /** Caller audio waiting for analysis, ms (default 5000). */
  maxPendingInputMs?: number;
}

/** Counters of a pipeline session: the common ones plus the cascade's. */
export interface PipelineSessionStats extends AiSessionStats {
  utterances: number;
  /** Utterances the speech-to-text service returned no text for. */
  emptyTranscripts: number;
  sttRequests: number;
  chatRequests: number;
  ttsRequests: number;
  /** Requests that failed, by service (after the one retry of a transient failure). */
  serviceErrors: number;
  bargeIns: number;
  emittedMs: number;
}

interface Sentence {
  text: string;
  /** Output bytes of this sentence's audio: [start, end). */
  start: number;
  end: number;
}

interface Turn {
  id: string;
  itemId: string;
  requested: boolean;
  instructions?: string;
  resolve?: (o: ResponseOutcome) => void;
  controller: AbortController;
  sentences: Sentence[];
  emittedBytes: number;
  text: string;
  /** This turn's assistant message in the history (set once the reply is known). */
  message?: Extract<ChatMessage, { role: 'assistant' }>;
  cancelReason?: string;
  usage?: { prompt_tokens?: number; completion_tokens?: number; total_tokens?: number };
}

/** Tool calls of one reply that are run (more are not answered, so the model cannot loop wide). */
const MAX_TOOLS_PER_REPLY = 8;
/** Cancelled turns remembered for the truncate that says what was heard. */
const HEARD_CAP = 16;
/** Messages kept; the oldest go first (the model sees at most chat.historyMessages of them anyway). */
const HISTORY_CAP = 400;

export class PipelineSession extends SessionLifecycle implements AiSession {
  readonly audioFormat: { input: AiAudioFormatInfo; output: AiAudioFormatInfo };
  readonly #o: PipelineOptions;
  readonly #session: AiSessionOptions;
  readonly #log: Logger;
  readonly #detector: UtteranceDetector | undefined;
  readonly #callVad: CallVad | undefined;
  /** The caller's turn as the neural VAD hands it out: pre-roll, then what is pushed while speaking. */
  #turn: { parts: Int16Array[]; held: number; samples: number } | undefined;
  #turnStart = 0;
  readonly #prices: PriceTable;
  readonly #tools = new Map<string, ToolRegistration>();
  readonly #history: ChatMessage[] = [];
  readonly #queue: Turn[] = [];
  readonly #recent = new Map<string, Turn>();
  /** Resolves each tool call's `followUp` promise. */
  readonly #settlers = new WeakMap<ToolCallRecord, (o: ResponseOutcome | undefined) => void>();
  readonly #maxPendingBytes: number;
  #t0 = performance.now();
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  #processing: NodeJS.Immediate | undefined;
  #active: Turn | undefined;
  #callerSpeaking = false;
  #userItem: string | undefined;
  #seq = 0;
  #transcribing: Promise<void> = Promise.resolve();
  #usage = emptyUsage();
  readonly #stats: PipelineSessionStats = {
    ...emptySessionStats(),
    utterances: 0,
    emptyTranscripts: 0,
    sttRequests: 0,
    chatRequests: 0,
    ttsRequests: 0,
    serviceErrors: 0,
    bargeIns: 0,
    emittedMs: 0,
  };

  constructor(session: AiSessionOptions, logger: Logger, o: PipelineOptions) {
    super(logger);
    this.#session = session;
    this.#o = o;
    this.#log = logger;
    this.audioFormat = { input: aiAudioFormatInfo(session.inputFormat), output: aiAudioFormatInfo(session.outputFormat) };
    if (o.neuralVad) {
      this.#callVad = o.neuralVad.forCall(this.audioFormat.input.sampleRate);
      this.#callVad.on('speechStart', (ev) => this.#vadStart(ev));
      this.#callVad.on('speechEnd', (ev) => this.#vadEnd(ev));
    } else {
      this.#detector = new UtteranceDetector(session.inputFormat, o.vad);
    }
    this.#maxPendingBytes = (o.maxPendingInputMs ?? 5000) * this.audioFormat.input.bytesPerMs;
    this.#prices = { audioInput: 0, audioCachedInput: 0, audioOutput: 0, textInput: o.prices.input, textCachedInput: o.prices.input, textOutput: o.prices.output, imageInput: 0, imageCachedInput: 0 };
    for (const t of session.tools ?? []) this.#declare(t.name);
  }

  get usage(): UsageSummary {
    return summarizeUsage(this.#usage, this.#prices);
  }

  get stats(): PipelineSessionStats {
    return { ...this.#stats };
  }

  /** The conversation as the chat model sees it (for tests and records). */
  get history(): readonly ChatMessage[] {
    return this.#history;
  }

  /** Ready at once: the services are reached per turn. */
  async start(): Promise<void> {
    this.beginStart();
    this.#t0 = performance.now();
    this.#stats.startMs = 0;
    this.setState({ name: 'ready' });
    this.#log.info({ stt: this.#o.stt.model, chat: this.#o.chat.model, tts: this.#o.tts.model, language: this.#o.language }, 'pipeline AI session ready');
  }

  /** Stop what runs: the active reply fails, queued ones are not sent, queued caller audio goes. */
  protected release(end: SessionEnd, error?: AiSessionError): void {
    const active = this.#active;
    this.#active = undefined;
    active?.controller.abort();
    const closed = end === 'closed';
    if (active) this.#done(active, 'failed', closed ? 'session_closed' : (error?.aiCode ?? 'pipeline_failed'));
    for (const t of this.#queue.splice(0)) t.resolve?.(notSent(closed ? 'session_closed' : 'session_lost'));
    if (this.#processing) clearImmediate(this.#processing);
    this.#processing = undefined;
    this.#pending = [];
    const vad = this.#callVad;
    if (vad && !vad.closed) {
      const st = vad.stats;
      this.#log.info({ vad: vad.backend, windows: st.windows, inferred: st.inferred, gated: st.gated, dropped: st.dropped, turns: this.#stats.utterances }, 'turn-taking of the call');
    }
    vad?.close();
    this.#turn = undefined;
  }

  #fail(err: ServiceError | Error): void {
    if (this.ending) return;
    const code = err instanceof ServiceError ? `${err.service}_${err.code}` : 'pipeline_failed';
    this.#log.warn({ code, status: err instanceof ServiceError ? err.status : undefined }, `pipeline failed: ${err.message}`);
    this.die(new AiSessionError(err.message, code, { cause: err }));
  }

  // -------------------------------------------------------------------------------------------------
  // Caller audio and turns

  appendAudio(chunk: Buffer | Uint8Array | Int16Array): void {
    const bytes = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (bytes.length === 0) return;
    if (this.state.name !== 'ready' || this.#pendingBytes + bytes.length > this.#maxPendingBytes) {
      this.#stats.droppedAudioChunks++;
      this.#stats.droppedAudioBytes += bytes.length;
      return;
    }
    this.#pending.push(Buffer.from(bytes));
    this.#pendingBytes += bytes.length;
    this.#stats.appendedChunks++;
    this.#stats.appendedBytes += bytes.length;
    this.#processing ??= setImmediate(() => this.#processInput());
  }

  #processInput(): void {
    this.#processing = undefined;
    const events: UtteranceEvent[] = [];
    while (this.#pending.length > 0 && !this.closed) {
      const chunk = this.#pending.shift()!;
      this.#pendingBytes -= chunk.length;
      if (this.#callVad) {
        this.#pushToVad(this.#callVad, decodeAiAudio(chunk, this.#session.inputFormat));
        continue;
      }
      this.#detector!.push(chunk, events);
      for (const ev of events.splice(0)) {
        if (this.closed) return;
        if (ev.type === 'start') this.#onSpeechStart(ev.audioStartMs);
        else this.#onSpeechEnd(ev);
      }
    }
  }

  #onSpeechStart(audioStartMs: number): void {
    this.#callerSpeaking = true;
    const itemId = (this.#userItem = this.#newId('item'));
    this.emit('speechStarted', { itemId, audioStartMs });
    const active = this.#active;
    if (active && this.#session.turnDetection?.interruptResponse !== false) {
      this.#stats.bargeIns++;
      this.#cancel(active, 'turn_detected');
    }
  }

  #onSpeechEnd(ev: Extract<UtteranceEvent, { type: 'end' }>): void {
    this.#endTurn(ev.audioEndMs, decodeAiAudio(ev.audio, this.#session.inputFormat));
  }

  #endTurn(audioEndMs: number, pcm: Int16Array): void {
    this.#callerSpeaking = false;
    const itemId = this.#userItem ?? this.#newId('item');
    this.#userItem = undefined;
    this.#stats.utterances++;
    this.emit('speechStopped', { itemId, audioEndMs });
    const rate = this.audioFormat.input.sampleRate;
    // Turns are transcribed in order; a reply starts once the caller's turn is text.
    this.#transcribing = this.#transcribing.then(() => this.#userTurn(itemId, pcm, rate));
  }

  /** Push to the neural VAD, and add what it pushed past the turn held so far (bounded by maxUtteranceMs). */
  #pushToVad(vad: CallVad, pcm: Int16Array): void {
    const before = vad.pushedSamples;
    vad.push(pcm);
    const t = this.#turn;
    const after = before + pcm.length;
    if (!t || after <= t.held) return;
    const cap = ((this.#o.vad.maxUtteranceMs ?? 30_000) * vad.sampleRate) / 1000;
    const from = Math.max(0, t.held - before);
    const take = Math.min(pcm.length - from, Math.max(0, cap - t.samples));
    const add = pcm.subarray(from, from + take);
    if (add.length > 0) {
      // `pcm` is this chunk's own decoded copy: kept as it is.
      t.parts.push(add);
      t.samples += add.length;
    }
    t.held = after;
  }

  #vadStart(ev: SpeechStartEvent): void {
    this.#turn = { parts: [ev.audio], held: ev.endSample, samples: ev.audio.length };
    this.#turnStart = ev.audioStartSample;
    this.#onSpeechStart(Math.round((ev.atSample * 1000) / this.audioFormat.input.sampleRate));
  }

  #vadEnd(ev: SpeechEndEvent): void {
    const t = this.#turn;
    this.#turn = undefined;
    if (!t || this.closed) return;
    const rate = this.audioFormat.input.sampleRate;
    // The turn ends where the non-speech began, plus a little of it.
    const keep = Math.min(t.samples, ev.atSample + Math.round((rate * (this.#o.vad.paddingMs ?? 200)) / 1000) - this.#turnStart);
    const pcm = new Int16Array(Math.max(0, keep));
    let o = 0;
    for (const p of t.parts) {
      if (o >= pcm.length) break;
      const n = Math.min(p.length, pcm.length - o);
      pcm.set(p.subarray(0, n), o);
      o += n;
    }
    this.#endTurn(Math.round((ev.atSample * 1000) / rate), pcm);
  }

  async #userTurn(itemId: string, pcm: Int16Array, rate: number): Promise<void> {
    if (this.closed) return;
    let text: string;
    try {
      text = (await this.#retry('stt', () => {
        this.#stats.sttRequests++;
        return transcribe(this.#o.stt, pcm, rate, { model: this.#o.stt.model, language: this.#o.language ?? this.#o.stt.language, prompt: this.#o.stt.prompt }, new AbortController().signal);
      })).trim();
    } catch (err) {
      this.#fail(err as Error);
      return;
    }
    if (this.closed) return;
    if (!text) {
      this.#stats.emptyTranscripts++;
      return;
    }
    this.emit('transcript', { role: 'user', itemId, text, final: true, atMs: this.#now() });
    this.#remember({ role: 'user', content: text });
    const auto = this.#session.turnDetection?.createResponse !== false;
    // The caller is talking again: answer once that turn is done too.
    if (auto && !this.#callerSpeaking) this.#enqueue(this.#newTurn(false));
  }

  // -------------------------------------------------------------------------------------------------
  // Responses

  createResponse(opts: ResponseCreateOptions = {}): Promise<ResponseOutcome> {
    if (this.closed) return Promise.resolve(notSent('session_closed'));
    if (this.#queue.length >= (this.#session.responseQueueMax ?? 8)) {
      this.#stats.responsesDropped++;
      return Promise.resolve(notSent('queue_full'));
    }
    this.#stats.responsesRequested++;
    return new Promise((resolve) => {
      const t = this.#newTurn(true, opts.instructions);
      t.resolve = resolve;
      this.#enqueue(t);
    });
  }

  cancelResponse(): void {
    if (this.#active) this.#cancel(this.#active, 'client_cancelled');
  }

  #newTurn(requested: boolean, instructions?: string): Turn {
    return { id: this.#newId('resp'), itemId: this.#newId('item'), requested, instructions, controller: new AbortController(), sentences: [], emittedBytes: 0, text: '' };
  }

  #enqueue(t: Turn): void {
    this.#queue.push(t);
    if (!this.#active) void this.#next();
  }

  async #next(): Promise<void> {
    const t = this.#queue.shift();
    if (!t || this.closed) return;
    this.#active = t;
    this.emit('responseCreated', { responseId: t.id, requested: t.requested });
    let followUps: ToolCallRecord[] = [];
    try {
      followUps = await this.#reply(t);
    } catch (err) {
      if (t.controller.signal.aborted) {
        // Cancelled (barge-in) or closed: already finished by whoever aborted it.
      } else {
        this.#stats.serviceErrors++;
        this.emit('error', { code: err instanceof ServiceError ? `${err.service}_${err.code}` : 'pipeline_error', message: (err as Error).message });
        this.#fail(err as Error);
        return;
      }
    }
    if (this.#active === t) this.#done(t, 'completed', undefined);
    // Tool results ask for a follow-up reply (a new response, as the Realtime API makes one); not
    // after the caller interrupted (their turn comes next).
    if (followUps.length > 0 && !this.closed) {
      if (t.cancelReason) this.#settle(followUps, undefined);
      else this.#followUp(followUps);
    }
    if (!this.#active && this.#queue.length > 0) void this.#next();
  }

  /** One reply: chat (with tool rounds) and speech; returns tool calls that want a follow-up. */
  async #reply(t: Turn): Promise<ToolCallRecord[]> {
    const signal = t.controller.signal;
    const splitter = new SentenceSplitter();
    const out = this.#outputConverter();
    let speaking: Promise<void> = Promise.resolve();
    const say = (sentence: string): void => {
      speaking = speaking.then(() => this.#say(t, sentence, out, signal));
      // Awaited after the chat stream ends; a failure before then must not count as unhandled.
      speaking.catch(() => undefined);
    };
    const messages = this.#messages(t.instructions);
    this.#stats.chatRequests++;
    const res = await this.#retry('chat', () =>
      chat(this.#o.chat, { model: this.#o.chat.model, messages, temperature: this.#o.chat.temperature, maxTokens: this.#o.chat.maxTokens, tools: [...this.#tools.values()].map(({ name, description, parameters }) => ({ name, description, parameters })) }, signal, (delta) => {
        for (const s of splitter.push(delta)) say(s);
      }),
    );
    const rest = splitter.flush();
    if (rest) say(rest);
    await speaking;
    t.text = res.text;
    t.usage = res.usage;
    if (res.usage) addUsage(this.#usage, { input_tokens: res.usage.prompt_tokens ?? 0, output_tokens: res.usage.completion_tokens ?? 0, total_tokens: res.usage.total_tokens ?? 0, input_token_details: { text_tokens: res.usage.prompt_tokens ?? 0 }, output_token_details: { text_tokens: res.usage.completion_tokens ?? 0 } });
    if (res.toolCalls.length === 0) {
      t.message = this.#remember({ role: 'assistant', content: res.text });
      return [];
    }
    const calls = res.toolCalls.slice(0, MAX_TOOLS_PER_REPLY);
    t.message = this.#remember({ role: 'assistant', content: res.text || null, tool_calls: calls });
    const records = await Promise.all(calls.map((c) => this.#runTool(c, t)));
    for (const r of records) this.#remember({ role: 'tool', tool_call_id: r.callId, content: r.result.output });
    return records;
  }

  /** Speak one sentence; its audio goes out as it arrives. */
  async #say(t: Turn, sentence: string, out: (pcm24: Buffer) => Buffer, signal: AbortSignal): Promise<void> {
    if (signal.aborted) return;
    const s: Sentence = { text: sentence, start: t.emittedBytes, end: t.emittedBytes };
    t.sentences.push(s);
    this.#stats.ttsRequests++;
    await this.#retry(
      'tts',
      () =>
        speak(this.#o.tts, sentence, { model: this.#o.tts.model, voice: this.#o.tts.voice || this.#session.voice, speed: this.#o.tts.speed ?? this.#session.speed, instructions: this.#o.tts.instructions }, signal, (pcm) => {
          if (this.#active !== t || t.cancelReason) return;
          const data = out(pcm);
          if (data.length === 0) return;
          t.emittedBytes += data.length;
          s.end = t.emittedBytes;
          this.#stats.emittedMs += data.length / this.audioFormat.output.bytesPerMs;
          this.emit('audio', { responseId: t.id, itemId: t.itemId, data });
        }),
      () => s.end === s.start,
    );
  }

  /** 24 kHz PCM16 from the speech service -> the session's output format (one resampler per reply). */
  #outputConverter(): (pcm24: Buffer) => Buffer {
    const f = this.#session.outputFormat;
    if (f === 'pcm') return (b) => b;
    const rs = Resampler.create(24000, this.audioFormat.output.sampleRate);
    return (b) => encodeAiAudio(rs.process(decodeAiAudio(b, 'pcm')), f);
  }

  #messages(instructions: string | undefined): ChatMessage[] {
    let system = this.#session.instructions;
    const lang = this.#o.language;
    if (lang) system += `\n\nSpeak ${languageName(lang)} (${lang}) with the caller.`;
    system += '\n\nYour replies are spoken on a phone call: plain sentences, no lists, no markup.';
    const msgs: ChatMessage[] = [{ role: 'system', content: system }];
    // The window starts at a user message, so no tool result is cut from its call.
    let from = Math.max(0, this.#history.length - this.#o.chat.historyMessages);
    while (from > 0 && from < this.#history.length && this.#history[from]!.role !== 'user') from++;
    msgs.push(...this.#history.slice(from));
    if (instructions) msgs.push({ role: 'system', content: instructions });
    return msgs;
  }

  async #runTool(c: ChatToolCall, t: Turn): Promise<ToolCallRecord> {
    const started = performance.now();
    const tool = this.#tools.get(c.function.name) as ToolRegistration | undefined;
    let args: unknown;
    let result: ToolResult;
    let error: string | undefined;
    this.#stats.toolCalls++;
    try {
      args = JSON.parse(c.function.arguments || '{}');
    } catch {
      args = undefined;
    }
    let settleFollowUp: (o: ResponseOutcome | undefined) => void = () => undefined;
    const followUp = new Promise<ResponseOutcome | undefined>((r) => (settleFollowUp = r));
    if (!tool?.handler) {
      error = `unknown tool ${c.function.name}`;
      result = { output: JSON.stringify({ error }) };
    } else if (args === undefined) {
      error = 'arguments are not valid JSON';
      result = { output: JSON.stringify({ error }) };
    } else {
      const ac = new AbortController();
      const timer = setTimeout(() => ac.abort(new Error('tool timed out')), this.#session.toolTimeoutMs ?? 20_000);
      const onAbort = (): void => ac.abort(new Error('response cancelled'));
      t.controller.signal.addEventListener('abort', onAbort, { once: true });
      try {
        result = await tool.handler(args, { callId: c.id, signal: ac.signal, followUp });
      } catch (err) {
        error = (err as Error).message;
        result = { output: JSON.stringify({ error }) };
      } finally {
        clearTimeout(timer);
        t.controller.signal.removeEventListener('abort', onAbort);
      }
    }
    if (error) this.#stats.toolErrors++;
    const rec: ToolCallRecord = { name: c.function.name, callId: c.id, args, result, durationMs: Math.round(performance.now() - started), ...(error ? { error } : {}) };
    this.#settlers.set(rec, settleFollowUp);
    this.emit('toolCall', rec);
    return rec;
  }

  #followUp(records: ToolCallRecord[]): void {
    const settle = (o: ResponseOutcome | undefined): void => this.#settle(records, o);
    if (records.every((r) => r.result.followUp === 'none')) {
      settle(undefined);
      return;
    }
    const withInstructions = records.map((r) => r.result.followUp).find((f): f is { instructions: string } => typeof f === 'object');
    const t = this.#newTurn(false, withInstructions?.instructions);
    t.resolve = settle;
    this.#enqueue(t);
  }

  /** Resolve the `followUp` promises of these tool calls' contexts. */
  #settle(records: ToolCallRecord[], o: ResponseOutcome | undefined): void {
    for (const r of records) this.#settlers.get(r)?.(o);
  }

  #cancel(t: Turn, reason: string): void {
    if (t.cancelReason) return;
    t.cancelReason = reason;
    t.controller.abort();
    this.#done(t, 'cancelled', reason);
    if (this.#queue.length > 0) void this.#next();
  }

  #done(t: Turn, status: ResponseStatus, reason: string | undefined): void {
    if (this.#active === t) this.#active = undefined;
    const spoken = t.sentences.filter((s) => s.end > s.start).map((s) => s.text).join(' ');
    if (status !== 'failed') {
      this.emit('audioDone', { responseId: t.id, itemId: t.itemId });
      const text = status === 'completed' ? t.text || spoken : spoken;
      if (text) this.emit('transcript', { role: 'assistant', itemId: t.itemId, text, final: true, atMs: this.#now() });
    }
    this.#recent.set(t.itemId, t);
    while (this.#recent.size > HEARD_CAP) this.#recent.delete(this.#recent.keys().next().value as string);
    const outcome: ResponseOutcome = {
      responseId: t.id,
      status,
      requested: t.requested,
      ...(reason ? { reason } : {}),
      ...(t.usage ? { usage: { input_tokens: t.usage.prompt_tokens, output_tokens: t.usage.completion_tokens, total_tokens: t.usage.total_tokens } } : {}),
      ...(status === 'failed' ? { error: { code: reason ?? 'failed', message: `response failed [reason:${reason ?? 'failed'}]` } } : {}),
    };
    if (t.usage) this.emit('usage', this.usage);
    this.emit('responseDone', outcome);
    t.resolve?.(outcome);
  }

  /** Add a message to the (bounded) history; returns it. */
  #remember<M extends ChatMessage>(m: M): M {
    this.#history.push(m);
    if (this.#history.length > HISTORY_CAP) {
      this.#history.splice(0, this.#history.length - HISTORY_CAP);
      this.#stats.historyEvicted++;
    }
    return m;
  }

  // -------------------------------------------------------------------------------------------------
  // What the caller heard, text, tools

  /**
   * The caller heard `audioEndMs` of this item: the history keeps the sentences played in full and
   * the heard share of the cut one (by played samples), so the model knows what was said.
   */
  truncate(itemId: string, audioEndMs: number): void {
    const t = this.#recent.get(itemId);
    this.#stats.truncates++;
    if (!t) return;
    const heardBytes = Math.max(0, Math.floor(audioEndMs)) * this.audioFormat.output.bytesPerMs;
    const parts: string[] = [];
    for (const s of t.sentences) {
      if (heardBytes >= s.end) parts.push(s.text);
      else if (heardBytes > s.start) {
        const share = (heardBytes - s.start) / Math.max(1, s.end - s.start);
        const cut = s.text.slice(0, Math.floor(s.text.length * share)).replace(/\s+\S*$/, '');
        if (cut) parts.push(`${cut}…`);
        break;
      } else break;
    }
    const heard = parts.join(' ');
    if (t.message) {
      t.message.content = heard || (t.message.tool_calls ? null : '…');
    } else if (heard) {
      // Cut before the reply was complete: what was heard is all the model said.
      t.message = this.#remember({ role: 'assistant', content: heard });
    }
    this.#log.debug({ itemId, audioEndMs, heardChars: heard.length }, 'reply cut: the history keeps what was heard');
  }

  sendUserText(text: string): void {
    if (this.closed) throw new InvalidStateError(`sendUserText() on a ${this.state.name} AI session`);
    const itemId = this.#newId('item');
    this.#remember({ role: 'user', content: text });
    setImmediate(() => this.emit('transcript', { role: 'user', itemId, text, final: true, atMs: this.#now() }));
  }

  sendSystemText(text: string): void {
    if (this.closed) throw new InvalidStateError(`sendSystemText() on a ${this.state.name} AI session`);
    this.#remember({ role: 'system', content: text });
  }

  registerTool(tool: ToolRegistration): void {
    if (this.closed) throw new InvalidStateError(`registerTool() on a ${this.state.name} AI session [tool:${tool.name}]`);
    if (typeof tool.handler !== 'function') throw new TypeError(`registerTool() needs a handler [tool:${tool.name}]`);
    this.#declare(tool.name);
    this.#tools.set(tool.name, tool);
  }

  #declare(name: string): void {
    assertToolName(name);
  }

  /** One retry of a transient failure (429, 5xx, timeout), after Retry-After capped at 2 s; only while `fresh()`. */
  async #retry<T>(service: 'stt' | 'chat' | 'tts', fn: () => Promise<T>, fresh: () => boolean = () => true): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (!(err instanceof ServiceError) || !err.transient || !fresh() || this.closed) throw err;
      this.#log.warn({ service, status: err.status, code: err.code }, `${service} failed, retrying once: ${err.message}`);
      await new Promise((r) => setTimeout(r, Math.min(2000, err.retryAfterMs ?? 250)));
      if (this.closed) throw err;
      return fn();
    }
  }

  #newId(kind: 'item' | 'resp'): string {
    return `${kind}_pipe_${++this.#seq}`;
  }

  #now(): number {
    return Math.round(performance.now() - this.#t0);
  }
}

/** `tr` -> `Turkish` (the code itself when the runtime does not know it). */
function languageName(code: string): string {
  try {
    return new Intl.DisplayNames(['en'], { type: 'language' }).of(code) ?? code;
  } catch {
    return code;
  }
}
