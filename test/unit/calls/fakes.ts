/**
 * Hand-written fakes of the call layer's collaborators: a SIP call with a simulated TX ring and
 * clock, the user agent, and an AI session/backend whose every move the test drives.
 */
import { TypedEmitter } from '../../../src/util/TypedEmitter';
import { InvalidStateError } from '../../../src/util/errors';
import { monotonicUs } from '../../../src/util/clock';
import type { SipCallEvents } from '../../../src/sip/SipCall';
import type { SipCallEnd, SipCallInfo, SipCallState, TransferResult } from '../../../src/sip/types';
import type { SipAccount } from '../../../src/sip/SipAccount';
import type { Logger } from '../../../src/logging/logger';
import type { AiBackend } from '../../../src/ai/AiBackend';
import { aiAudioFormatInfo } from '../../../src/ai/audioFormat';
import type {
  AiSession,
  AiSessionEvents,
  AiSessionOptions,
  AiSessionState,
  AiSessionStats,
  ResponseCreateOptions,
  ResponseOutcome,
  ToolContext,
  ToolRegistration,
  ToolResult,
} from '../../../src/ai/types';
import { emptyUsage, summarizeUsage, type UsageSummary } from '../../../src/ai/usage';
import type { CallAgent, CallLeg } from '../../../src/calls/types';
import type { AiSessionError } from '../../../src/util/errors';
import { sine } from '../../helpers/tone';

let nextHandle = 1;

/** A SIP call whose TX ring is consumed by {@link FakeCall.play} (the test's clock). */
export class FakeCall extends TypedEmitter<SipCallEvents> {
  readonly handle = nextHandle++;
  readonly account = { uri: 'sip:agent@127.0.0.1' } as unknown as SipAccount;
  readonly info: SipCallInfo;
  readonly sampleRate: number;
  /** Every SIP action, in order: `ringing`, `answer`, `reject 486`, `hangup`, `transfer <uri>`. */
  readonly actions: string[] = [];
  /** Everything the clock consumed from the ring (what the caller heard), in order. */
  readonly heard: Int16Array[] = [];
  /** Outcome transfer() resolves with. */
  transferResult: TransferResult = { ok: true, sipCode: 200, reason: 'OK' };
  ringCapacity = 1_000_000;
  #state: SipCallState;
  #end: SipCallEnd | null = null;
  #read = 0;
  #write = 0;
  #queue: Int16Array[] = [];
  #queueOffset = 0;
  #ticks: [number, number, number][] = [];

  constructor(opts: { direction?: 'inbound' | 'outbound'; sampleRate?: number; remoteUri?: string; srcAddress?: string; headers?: [string, string][] } = {}) {
    super();
    const direction = opts.direction ?? 'inbound';
    this.sampleRate = opts.sampleRate ?? 8000;
    this.#state = direction === 'inbound' ? 'incoming' : 'calling';
    this.info = {
      direction,
      remoteUri: opts.remoteUri ?? '"Ann Caller" <sip:ann@pbx.example.com>',
      localUri: 'sip:agent@127.0.0.1',
      requestUri: 'sip:agent@127.0.0.1',
      sipCallId: `call-${this.handle}@test`,
      srcAddress: opts.srcAddress ?? '192.0.2.10:5060',
      rawHeaders: opts.headers ?? [['X-Customer-Id', 'C-42']],
    };
  }

  get ended(): boolean {
    return this.#end !== null;
  }

  get end(): SipCallEnd | null {
    return this.#end;
  }

  get state(): SipCallState {
    return this.#state;
  }

  header(name: string): string | undefined {
    return this.info.rawHeaders.find(([k]) => k.toLowerCase() === name.toLowerCase())?.[1];
  }

  async ringing(): Promise<void> {
    this.#live('ringing()');
    this.actions.push('ringing');
  }

  async answer(): Promise<void> {
    this.#live('answer()');
    this.actions.push('answer');
    this.#setState('confirmed');
  }

  async reject(code = 486): Promise<void> {
    this.#live('reject()');
    this.actions.push(`reject ${code}`);
    this.#finish(code, 'rejected', 'local');
  }

  async hangup(): Promise<void> {
    if (this.#end) return;
    this.actions.push('hangup');
    this.#finish(200, 'Normal call clearing', 'local');
  }

  async transfer(uri: string): Promise<TransferResult> {
    this.#live('transfer()');
    this.actions.push(`transfer ${uri}`);
    return this.transferResult;
  }

  writeAudio(pcm: Int16Array): number {
    if (this.#end) return 0;
    const n = Math.min(pcm.length, this.ringCapacity - (this.#write - this.#read));
    if (n <= 0) return 0;
    this.#queue.push(pcm.slice(0, n));
    this.#write += n;
    return n;
  }

  clearAudio(): number {
    const at = this.#read;
    this.#queue = [];
    this.#queueOffset = 0;
    this.#read = this.#write;
    return at;
  }

  txIndex(): [number, number] {
    return [this.#read, this.#write];
  }

  audioStats(): null {
    return null;
  }

  async waitForState(state: SipCallState, timeoutMs = 10000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.#state !== state) {
      if (this.#end) throw new InvalidStateError(`call ended before ${state}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new InvalidStateError(`timed out waiting for ${state}`);
      await this.waitFor('state', left).catch(() => undefined);
    }
  }

  // ---- test controls ----

  /** The clock consumes up to `samples` from the ring (silence when empty); returns what played. */
  play(samples: number): Int16Array {
    const out = new Int16Array(samples);
    let o = 0;
    const start = this.#read;
    while (o < samples && this.#queue.length > 0) {
      const c = this.#queue[0];
      const n = Math.min(samples - o, c.length - this.#queueOffset);
      out.set(c.subarray(this.#queueOffset, this.#queueOffset + n), o);
      o += n;
      this.#queueOffset += n;
      this.#read += n;
      if (this.#queueOffset >= c.length) {
        this.#queue.shift();
        this.#queueOffset = 0;
      }
    }
    this.heard.push(out.subarray(0, o));
    this.#ticks.push([start, this.#read, monotonicUs()]);
    if (this.#ticks.length > 64) this.#ticks.shift();
    return out;
  }

  /** The clock's last 64 ticks, as the addon reports them: flat [start, end, timeUs]. */
  txTicks(): Float64Array | null {
    return Float64Array.from(this.#ticks.flat());
  }

  /** The jitter buffer's delay the native layer would report (tests set it). */
  jitterMs = -1;
  jitterDelayMs(): number {
    return this.jitterMs;
  }

  /** Caller audio arriving (one or more frames). */
  speak(pcm: Int16Array, leftClockUs = Number.NaN): void {
    this.emit('audio', pcm, leftClockUs, leftClockUs);
  }

  /** The far end answers (outbound). */
  remoteAnswer(): void {
    this.#setState('confirmed');
  }

  /** The far end hangs up (BYE) or cancels. */
  remoteHangup(code = 200, reason = 'Normal call clearing'): void {
    this.#finish(code, reason, 'remote');
  }

  dtmf(digit: string): void {
    this.emit('dtmf', { digit, method: 'rfc2833' });
  }

  /** Samples of agent audio heard so far (consumed by the clock). */
  heardSamples(): number {
    return this.heard.reduce((s, c) => s + c.length, 0);
  }

  #setState(s: SipCallState): void {
    this.#state = s;
    this.emit('state', s, { sipCode: 200, reason: 'OK' });
  }

  #finish(sipCode: number, reason: string, by: 'local' | 'remote'): void {
    if (this.#end) return;
    this.#state = 'disconnected';
    this.#end = { sipCode, reason, by, connectDurationMs: 0 };
    this.emit('state', 'disconnected', { sipCode, reason });
    this.emit('ended', this.#end);
  }

  #live(what: string): void {
    if (this.#end) throw new InvalidStateError(`${what} failed: the call has ended`);
  }
}

/** The user agent: the test emits incoming calls and ticks. */
export class FakeAgent extends TypedEmitter<{ incomingCall: [CallLeg]; tick: [] }> implements CallAgent {
  readonly placed: { uri: string; headers?: Record<string, string>; call: FakeCall }[] = [];
  /** Every setCallRefusal() code, in order. */
  readonly refusals: number[] = [];
  setCallRefusal(code: 0 | 486 | 503): void {
    this.refusals.push(code);
  }
  ring(call: FakeCall): void {
    this.emit('incomingCall', call);
  }
  tick(): void {
    this.emit('tick');
  }
  async call(_account: SipAccount, uri: string, options: { headers?: Record<string, string> } = {}): Promise<CallLeg> {
    const call = new FakeCall({ direction: 'outbound', remoteUri: uri });
    this.placed.push({ uri, headers: options.headers, call });
    return call;
  }
}

interface Deferred<T> {
  promise: Promise<T>;
  resolve: (v: T) => void;
  reject: (e: unknown) => void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** An AI session driven by the test. start() waits for {@link FakeAiSession.ready} or {@link FakeAiSession.failStart}. */
export class FakeAiSession extends TypedEmitter<AiSessionEvents> implements AiSession {
  readonly audioFormat: AiSession['audioFormat'];
  readonly options: AiSessionOptions;
  readonly appended: Buffer[] = [];
  readonly truncates: { itemId: string; audioEndMs: number }[] = [];
  readonly userTexts: string[] = [];
  readonly systemTexts: string[] = [];
  readonly responses: ResponseCreateOptions[] = [];
  readonly tools = new Map<string, ToolRegistration>();
  startCalls = 0;
  closeCalls = 0;
  repliesToEveryTurn = true;
  usageValue: UsageSummary = zeroUsage();
  #state: AiSessionState = { name: 'idle' };
  #start = deferred<void>();

  constructor(opts: AiSessionOptions) {
    super();
    this.options = opts;
    this.audioFormat = { input: aiAudioFormatInfo(opts.inputFormat), output: aiAudioFormatInfo(opts.outputFormat) };
  }

  get state(): AiSessionState {
    return this.#state;
  }
  get closed(): boolean {
    return this.#state.name === 'closed' || this.#state.name === 'died';
  }
  get usage(): UsageSummary {
    return this.usageValue;
  }
  get stats(): AiSessionStats {
    return {
      appendedChunks: this.appended.length,
      appendedBytes: this.appended.reduce((s, b) => s + b.length, 0),
      droppedAudioChunks: 0,
      droppedAudioBytes: 0,
      responsesRequested: this.responses.length,
      responsesDropped: 0,
      truncates: this.truncates.length,
      truncatesSkipped: 0,
      truncateErrors: 0,
      toolCalls: 0,
      toolErrors: 0,
      reconnects: 0,
      rotations: 0,
      historyEvicted: 0,
      connectMs: 12,
      startMs: 34,
    };
  }

  start(): Promise<void> {
    this.startCalls++;
    this.#setState({ name: 'starting' });
    return this.#start.promise;
  }
  appendAudio(chunk: Buffer | Uint8Array | Int16Array): void {
    this.appended.push(Buffer.from(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength)));
  }
  createResponse(opts: ResponseCreateOptions = {}): Promise<ResponseOutcome> {
    this.responses.push(opts);
    return Promise.resolve({ responseId: `resp_${this.responses.length}`, status: 'completed', requested: true });
  }
  cancelResponse(): void {}
  truncate(itemId: string, audioEndMs: number): void {
    this.truncates.push({ itemId, audioEndMs });
  }
  sendUserText(text: string): void {
    this.userTexts.push(text);
  }
  sendSystemText(text: string): void {
    this.systemTexts.push(text);
  }
  registerTool(tool: ToolRegistration): void {
    this.tools.set(tool.name, tool);
  }
  close(): void {
    this.closeCalls++;
    if (this.closed) return;
    this.#start.reject(new Error('closed'));
    this.#setState({ name: 'closed' });
    this.emit('close');
  }

  // ---- test controls ----

  /** start() resolves; the session is ready. */
  ready(): void {
    this.#setState({ name: 'ready' });
    this.#start.resolve();
  }
  /** start() rejects (bad key, unreachable...). */
  failStart(err: AiSessionError): void {
    this.#setState({ name: 'died', reason: err.aiCode ?? 'x', error: err });
    this.#start.reject(err);
  }
  /** The session dies mid-call (after its own reconnect failed). */
  die(err: AiSessionError): void {
    this.#setState({ name: 'died', reason: err.aiCode ?? 'x', error: err });
    this.emit('died', err);
  }
  /** Lose the server session for a while. */
  reconnecting(): void {
    this.#setState({ name: 'reconnecting', reason: 'connection_lost' });
  }
  /** Model audio: 16-bit PCM samples in the output format (24 kHz for pcm), or G.711 codes. */
  audio(itemId: string, data: Int16Array | Uint8Array, responseId = 'resp_1'): void {
    this.emit('audio', { responseId, itemId, data: Buffer.from(new Uint8Array(data.buffer, data.byteOffset, data.byteLength)) });
  }
  audioDone(itemId: string, responseId = 'resp_1'): void {
    this.emit('audioDone', { responseId, itemId });
  }
  speechStarted(itemId = 'user_1'): void {
    this.emit('speechStarted', { itemId, audioStartMs: 0 });
  }
  responseCreated(responseId = 'resp_1', requested = false): void {
    this.emit('responseCreated', { responseId, requested });
  }
  speechStopped(itemId = 'user_1'): void {
    this.emit('speechStopped', { itemId, audioEndMs: 0 });
  }
  transcript(role: 'user' | 'assistant', itemId: string, text: string): void {
    this.emit('transcript', { role, itemId, text, final: true, atMs: 0 });
  }
  serverError(code: string): void {
    this.emit('error', { code, message: `server error ${code}` });
  }
  /** Run a registered tool as the model would; `followUp` resolves when the test says so. */
  async callTool(name: string, args: unknown): Promise<{ result: ToolResult; followUp: Deferred<ResponseOutcome | undefined> }> {
    const tool = this.tools.get(name);
    if (!tool) throw new Error(`no tool ${name}`);
    const followUp = deferred<ResponseOutcome | undefined>();
    const ctx: ToolContext = { callId: 'call_1', signal: new AbortController().signal, followUp: followUp.promise };
    const result = await tool.handler(args, ctx);
    return { result, followUp };
  }

  #setState(next: AiSessionState): void {
    const prev = this.#state;
    this.#state = next;
    this.emit('stateChange', next, prev);
  }
}

/** A backend handing out {@link FakeAiSession}s. */
export class FakeBackend implements AiBackend {
  readonly name = 'fake';
  readonly sessions: FakeAiSession[] = [];
  createSession(opts: AiSessionOptions, _logger: Logger): FakeAiSession {
    const s = new FakeAiSession(opts);
    this.sessions.push(s);
    return s;
  }
  get last(): FakeAiSession {
    const s = this.sessions[this.sessions.length - 1];
    if (!s) throw new Error('no session created');
    return s;
  }
}

/** A sine tone, at 0.3 of full scale unless told. */
export function tone(freq: number, ms: number, sampleRate: number, amplitude = 0.3): Int16Array {
  return sine(freq, ms, sampleRate, amplitude);
}

/**
 * Fake timers and clocks for the tests of this block: time passes only through {@link flush} and
 * the media clock. Loop turns (setImmediate) stay real: they are not time.
 */
export function useFakeClock(): void {
  beforeEach(() => jest.useFakeTimers({ doNotFake: ['nextTick', 'queueMicrotask', 'setImmediate'] }));
  afterEach(() => jest.useRealTimers());
}

/** Let `ms` pass on the fake clock (timers due meanwhile fire in order), then let queued work run. */
export async function flush(ms = 0): Promise<void> {
  await jest.advanceTimersByTimeAsync(ms);
  // Work queued one item per loop turn (incoming call set-up) gets those turns too.
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
}

/**
 * Run the simulated media clock: `ms` in 20 ms ticks; each tick every call plays one frame and
 * sends one silent frame of caller audio, then the agent ticks and 20 ms pass on the fake clock.
 */
export async function runClock(agent: FakeAgent, calls: FakeCall[], ms: number, callerAudio = false): Promise<void> {
  for (let t = 0; t < ms; t += 20) {
    for (const c of calls) {
      if (c.ended) continue;
      c.play(c.sampleRate / 50);
      if (callerAudio) c.speak(new Int16Array(c.sampleRate / 50));
    }
    agent.tick();
    await flush(20);
  }
}

function zeroUsage(): UsageSummary {
  return summarizeUsage(emptyUsage());
}
