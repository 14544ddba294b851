/**
 * One WebSocket session of the fake GPT-Live server (protocol summary in live-schema.ts). It owns
 * the session config, the input audio timeline with its energy VAD and its record of stalls, the
 * scripted full-duplex "model" (speaks tones with transcripts, stops when talked over, delegates
 * work to the client or to an emulated Responses backend), and the bounded logs tests inspect.
 */
import { EventEmitter } from 'node:events';
import type { IncomingHttpHeaders } from 'node:http';
import type { RawData, WebSocket } from 'ws';
import { AI_SAMPLE_RATE } from '../../src/audio/format';
import { Decimator24to8, concatPcm, decodeWire, encodeWire, synthTone, type ToneSpec, type WireFormat } from './audio';
import { newId, type Json } from './FakeSession';
import { validateLiveClientEvent, type SchemaProblem } from './live-schema';
import { EnergyVad } from './vad';

/** A spoken message of the model: audio (24 kHz PCM, or a tone synthesized at the wire rate) and its transcript. */
export interface LiveSayStep {
  audio?: Int16Array | ToneSpec;
  transcript?: string;
}

/**
 * The model delegates work. Under client delegation this is a `session.delegation.created`
 * (target client; `name`/`arguments` are only recorded, the wire carries no task). Under Responses
 * delegation a `name` makes the emulated backend call that function tool (which must be in the
 * session's tools); without one the backend answers in text by itself.
 */
export interface LiveDelegateStep {
  delegate: { name?: string; arguments?: unknown };
}

/** A pause before the next step. */
export interface LiveDelayStep {
  delayMs: number;
}

/** One step of a scripted reply. */
export type LiveStep = LiveSayStep | LiveDelegateStep | LiveDelayStep;

/** A finished caller turn, as the fake's VAD cut it. */
export interface LiveUserTurn {
  /** PCM at `sampleRate` (the session's wire rate). */
  audio: Int16Array;
  sampleRate: number;
  /** Input audio timeline (ms of audio received), onset including the prefix padding, and end. */
  startMs: number;
  endMs: number;
}

/** What a reply script sees. */
export interface LiveRespondContext {
  session: LiveFakeSession;
  /** 0-based number of this caller turn. */
  index: number;
  turn: LiveUserTurn;
  delegation: 'client' | 'responses';
}

/** Decides what the model answers to a caller turn. */
export type LiveRespondScript = (ctx: LiveRespondContext) => LiveStep[] | Promise<LiveStep[]>;

/** What the model says when given speakable context (commentary, or a tool result via Responses). */
export type LiveSpeakScript = (text: string, delegation: LiveDelegation | null) => LiveSayStep;

/** A delegation the model created. */
export interface LiveDelegation {
  id: string;
  target: 'client' | 'responses';
  /** Session timeline position, ms. */
  offsetMs: number;
  /** Scripted intent (client: recorded only; responses: the function called). */
  name?: string;
  arguments?: string;
  responseId?: string;
  callId?: string;
  /** Client answers (appends with this delegation_id), or the function output received. */
  answers: Array<{ kind: 'commentary' | 'thinking' | 'instructions' | 'function_call_output'; content: string }>;
  /** True once the Responses backend finished its follow-up (responses target only). */
  completed: boolean;
}

/** One utterance of the model, with what was delivered of it. */
export interface LiveUtterance {
  id: string;
  transcript: string;
  /** Audio generated for it, ms. */
  totalMs: number;
  /** Audio sent to the client, ms. */
  deliveredMs: number;
  /** Wall clock of the first delta (ms since the epoch), null before. */
  firstDeltaAt: number | null;
  status: 'queued' | 'speaking' | 'done' | 'interrupted' | 'cancelled';
  /** Why it was queued: a caller turn, commentary, or a Responses result. */
  cause: 'turn' | 'commentary' | 'responses';
}

/** The caller talked over the model. */
export interface LiveInterruption {
  utteranceId: string;
  /** Input audio timeline position of the caller's onset, ms. */
  onsetMs: number;
  /** Audio of the utterance sent so far / generated in all, ms. */
  deliveredMs: number;
  totalMs: number;
  /** Real-time play position had the client played from the first delta without a pause, ms (≤ deliveredMs). */
  realTimePlayedMs: number;
  /** True when the model was still sending audio (it stopped at once). */
  wasSending: boolean;
}

/** A stretch where input audio fell behind real time (the continuous-stream expectation broken). */
export interface LiveInputGap {
  /** Input audio timeline position where the stall was noticed, ms. */
  atAudioMs: number;
  /** How far behind real time the stream was, ms. */
  lagMs: number;
}

/** One logged event; `dir` 'in' = client → server. Audio payloads are summarized. */
export interface LiveLoggedEvent {
  seq: number;
  dir: 'in' | 'out';
  /** Wall clock, ms since the epoch. */
  at: number;
  event: Json;
}

/** Matches a logged event by type or predicate. */
export type LiveEventMatcher = string | ((e: LiveLoggedEvent) => boolean);

/** Tunables a session inherits from the server. */
export interface LiveSessionTuning {
  respond: LiveRespondScript;
  speak: LiveSpeakScript;
  burstFactor: number;
  chunkMs: number;
  vadThreshold: number;
  vadSilenceMs: number;
  vadPrefixMs: number;
  vadMinSpeechMs: number;
  /** Input falling behind real time by more than this counts as a gap, ms. */
  gapThresholdMs: number;
  /** `session.usage.updated` cadence in input-audio ms. */
  usageEveryMs: number;
  maxAppendBytes: number;
  maxReceivedAudioMs: number;
  maxLoggedEvents: number;
  maxRecords: number;
  maxSendBufferBytes: number;
  /** Caller audio per transcript fragment while the caller speaks, ms. */
  transcriptChunkMs: number;
  /** What one chunk of caller audio "says" ('' for nothing); a fragment is sent when it changes. */
  transcribe: (chunk: LiveUserTurn) => string;
  /** Session lifetime advertised in `expires_at`, s. */
  expiresInSec: number;
}

const BASE64_RE = /^[A-Za-z0-9+/]*={0,2}$/;

function isObj(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Linear 24 kHz → 16 kHz (2 out per 3 in); scripted audio only, quality is irrelevant. */
function resample24to16(pcm: Int16Array): Int16Array {
  const n = Math.floor((pcm.length * 2) / 3);
  const out = new Int16Array(n);
  for (let i = 0; i < n; i++) {
    const x = i * 1.5;
    const k = Math.floor(x);
    const f = x - k;
    const a = pcm[k] ?? 0;
    const b = pcm[Math.min(pcm.length - 1, k + 1)] ?? a;
    out[i] = Math.round(a + (b - a) * f);
  }
  return out;
}

/**
 * The fake's default caller transcription of one chunk: `tone <Hz rounded to 50>`, the tone most of
 * its 100 ms blocks carry (zero crossings, with hysteresis, of the loud 10 ms frames: within 20 dB
 * of the chunk's loudest, above -50 dBFS; a tie goes to the later tone), '' for silence. Exact for the tones
 * tests speak, and cheap enough for a hundred callers in one process.
 */
export function hearToneCheaply(chunk: LiveUserTurn): string {
  const pcm = chunk.audio;
  const frame = Math.max(1, Math.round(chunk.sampleRate / 100));
  const energy: number[] = [];
  let loudest = 0;
  for (let start = 0; start < pcm.length; start += frame) {
    let acc = 0;
    const end = Math.min(pcm.length, start + frame);
    for (let i = start; i < end; i++) acc += pcm[i]! * pcm[i]!;
    const ms = acc / Math.max(1, end - start);
    energy.push(ms);
    if (ms > loudest) loudest = ms;
  }
  // -50 dBFS as a mean square of 16-bit samples.
  if (loudest < (32768 * 10 ** (-50 / 20)) ** 2) return '';
  // Crossings with hysteresis (a fifth of the loudest RMS), so codec noise near zero adds none; the
  // frequency comes from the span between the first and the last crossing of a block.
  const hysteresis = 0.2 * Math.sqrt(loudest);
  const votes = new Map<number, number>();
  let best = 0;
  for (let b = 0; b < energy.length; b += 10) {
    let crossings = 0;
    let first = -1;
    let last = -1;
    let positive: boolean | null = null;
    for (let f = b; f < Math.min(energy.length, b + 10); f++) {
      if (energy[f]! < loudest / 100) continue;
      const end = Math.min(pcm.length, (f + 1) * frame);
      for (let i = f * frame; i < end; i++) {
        const x = pcm[i]!;
        if (positive === null) {
          if (Math.abs(x) > hysteresis) positive = x > 0;
        } else if (positive ? x < -hysteresis : x > hysteresis) {
          positive = !positive;
          crossings++;
          if (first < 0) first = i;
          last = i;
        }
      }
    }
    if (crossings < 3) continue;
    const hz = Math.round(((crossings - 1) * chunk.sampleRate) / (2 * (last - first)) / 50) * 50;
    const n = (votes.get(hz) ?? 0) + 1;
    votes.set(hz, n);
    if (n >= (votes.get(best) ?? 0)) best = hz;
  }
  return best > 0 ? `tone ${best}` : '';
}

/** The fake's default reply: a 1 kHz tone of 1.5 s with a transcript naming the turn. */
export function liveToneReply(tone: Partial<ToneSpec> = {}): LiveRespondScript {
  const spec: ToneSpec = { toneHz: tone.toneHz ?? 1000, ms: tone.ms ?? 1500, amplitude: tone.amplitude ?? 0.3 };
  return (ctx) => [{ audio: spec, transcript: `Reply ${ctx.index + 1}: this is a ${spec.toneHz} hertz test tone.` }];
}

/** The fake's default speech for speakable context: a 1.2 kHz tone of 1 s, the text as transcript. */
export function liveSpeakTone(tone: Partial<ToneSpec> = {}): LiveSpeakScript {
  const spec: ToneSpec = { toneHz: tone.toneHz ?? 1200, ms: tone.ms ?? 1000, amplitude: tone.amplitude ?? 0.3 };
  return (text) => ({ audio: spec, transcript: text });
}

/**
 * Server side of one GPT-Live WebSocket. Created by {@link FakeLiveServer}; tests read its state
 * and use its controls (`drop`, `endSession`, `injectError`, `send`, `waitFor`).
 */
export class LiveFakeSession {
  /** `sess_...` id (sent in session.started). */
  readonly id = newId('sess');
  /** Request path of the upgrade. */
  readonly url: string;
  /** Upgrade request headers as received. */
  readonly headers: IncomingHttpHeaders;
  /** `error` bodies sent, in order (bounded). */
  readonly errors: Json[] = [];
  /** Delegations the model created (bounded). */
  readonly delegations: LiveDelegation[] = [];
  /** Utterances of the model (bounded). */
  readonly utterances: LiveUtterance[] = [];
  /** Times the caller talked over the model (bounded). */
  readonly interruptions: LiveInterruption[] = [];
  /** Stalls of the input stream (bounded). */
  readonly inputGaps: LiveInputGap[] = [];
  /** Caller turns cut by the VAD (bounded; audio not kept here, see receivedAudio()); `endedAt` is the wall clock of the decision. */
  readonly turns: Array<Omit<LiveUserTurn, 'audio'> & { transcript: string; endedAt: number }> = [];
  /** Instructions appended after startup, in order (bounded). */
  readonly appendedInstructions: string[] = [];
  /** Items added to the Responses backend with response.item.create (bounded). */
  readonly responseItems: Json[] = [];
  /** Problems of the reply script (e.g. a function not in the session's tools). */
  readonly scriptProblems: string[] = [];
  /** Everything dropped or skipped because a bound was hit. */
  readonly dropped = { loggedEvents: 0, receivedSamples: 0, records: 0, unsentEvents: 0, backpressureWaits: 0, mutedMs: 0 };
  /** Per-session reply script (defaults to the server's). */
  respond: LiveRespondScript;
  /** Per-session speech for commentary and Responses results. */
  speak: LiveSpeakScript;

  private readonly ws: WebSocket;
  private readonly tuning: LiveSessionTuning;
  private readonly ee = new EventEmitter();
  private readonly log: LiveLoggedEvent[] = [];
  private seq = 0;
  private configValue: Json | null = null;
  private startedAt = 0;
  private closedValue = false;
  private closeInfo: { code: number; reason: string } | null = null;
  private finalized = false;
  private muted = false;
  private readonly segments: Array<{ startMs: number; samples: Int16Array }> = [];
  private storedMs = 0;
  private receivedMsValue = 0;
  private firstAppendAt: number | null = null;
  private anchorWall = 0;
  private anchorAudioMs = 0;
  private maxLeadMsValue = 0;
  private nextUsageMs: number;
  private vad: EnergyVad | null = null;
  private turnStartMs = 0;
  private turnCount = 0;
  /** The caller turn's transcript so far: chunked from `chunkFromMs`, last word heard, text. */
  private heard = { chunkFromMs: 0, lastWord: '', text: '' };
  private readonly queue: Array<{ step: LiveSayStep; utterance: LiveUtterance }> = [];
  private speaking: { utterance: LiveUtterance; stop: () => void } | null = null;
  private readonly timers = new Set<NodeJS.Timeout>();
  private pendingOutputs: LiveDelegation[] = [];

  constructor(ws: WebSocket, url: string, headers: IncomingHttpHeaders, tuning: LiveSessionTuning) {
    this.ws = ws;
    this.url = url;
    this.headers = headers;
    this.tuning = tuning;
    this.respond = tuning.respond;
    this.speak = tuning.speak;
    this.nextUsageMs = tuning.usageEveryMs;
    this.ee.setMaxListeners(0);
    ws.on('message', (data, isBinary) => this.onMessage(data, isBinary));
    ws.on('close', (code, reason) => this.onClose(code, reason.toString()));
    ws.on('error', () => {
      // Always followed by 'close', which cleans up.
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Inspection

  /** The resolved session resource (null before a successful session.start). */
  get config(): Json | null {
    return this.configValue;
  }

  /** True once session.started was sent. */
  get started(): boolean {
    return this.configValue !== null;
  }

  /** True once the socket closed. */
  get closed(): boolean {
    return this.closedValue;
  }

  /** Close code and reason once closed. */
  get closeStatus(): { code: number; reason: string } | null {
    return this.closeInfo;
  }

  /** True once session.closed was sent. */
  get sessionClosedSent(): boolean {
    return this.finalized;
  }

  /** Input audio received, ms (the input timeline). */
  get receivedMs(): number {
    return this.receivedMsValue;
  }

  /** Largest lead of the input stream over real time seen, ms (a client sending in bursts). */
  get maxLeadMs(): number {
    return this.maxLeadMsValue;
  }

  /** True while the caller is speaking, per the fake's VAD. */
  get callerSpeaking(): boolean {
    return this.vad?.speaking ?? false;
  }

  /** True while the input is muted (session.input_audio.mute). */
  get inputMuted(): boolean {
    return this.muted;
  }

  /** Session wire format (after start) as `{type, rate}`. */
  get format(): { type: WireFormat; rate: number } {
    const f = (this.configValue?.['audio'] as Json | undefined)?.['format'] as { type: WireFormat; rate: number } | undefined;
    return f ?? { type: 'audio/pcm', rate: AI_SAMPLE_RATE };
  }

  /** Received input audio kept (bounded), at the wire rate, from `startMs` on the input timeline. */
  receivedAudio(): { sampleRate: number; startMs: number; samples: Int16Array } {
    return {
      sampleRate: this.format.rate,
      startMs: this.segments[0]?.startMs ?? this.receivedMsValue,
      samples: concatPcm(this.segments.map((s) => s.samples)),
    };
  }

  /** Every logged event (bounded). */
  get events(): readonly LiveLoggedEvent[] {
    return this.log;
  }

  /** Client events received (bounded). */
  get receivedEvents(): Json[] {
    return this.log.filter((e) => e.dir === 'in').map((e) => e.event);
  }

  /** Server events sent (bounded). */
  get sentEvents(): Json[] {
    return this.log.filter((e) => e.dir === 'out').map((e) => e.event);
  }

  /** Sequence number of the next logged event; pass to waitFor to include events from here on. */
  mark(): number {
    return this.seq;
  }

  /** Resolve with the first logged event matching `matcher` (from `since` if given, else future only). */
  waitFor(matcher: LiveEventMatcher, timeoutMs = 5000, since?: number): Promise<LiveLoggedEvent> {
    const test = typeof matcher === 'string' ? (e: LiveLoggedEvent) => e.event['type'] === matcher : matcher;
    if (since !== undefined) {
      const hit = this.log.find((e) => e.seq >= since && test(e));
      if (hit) return Promise.resolve(hit);
    }
    return new Promise((resolve, reject) => {
      const onLog = (e: LiveLoggedEvent): void => {
        if (!test(e)) return;
        cleanup();
        resolve(e);
      };
      const onClose = (): void => {
        cleanup();
        reject(new Error(`waitFor failed: session closed [session:${this.id}, matcher:${String(matcher)}]`));
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`waitFor timed out [session:${this.id}, matcher:${String(matcher)}, timeoutMs:${timeoutMs}]`));
      }, timeoutMs);
      const cleanup = (): void => {
        clearTimeout(timer);
        this.ee.off('log', onLog);
        this.ee.off('close', onClose);
      };
      this.ee.on('log', onLog);
      if (this.closedValue) onClose();
      else this.ee.on('close', onClose);
    });
  }

  /** Subscribe to logged events. */
  onLog(listener: (e: LiveLoggedEvent) => void): void {
    this.ee.on('log', listener);
  }

  /** Subscribe to the socket close. */
  onClosed(listener: (code: number, reason: string) => void): void {
    this.ee.on('close', listener);
  }

  /** Resolves once the socket has closed. */
  waitClosed(): Promise<{ code: number; reason: string }> {
    if (this.closeInfo) return Promise.resolve(this.closeInfo);
    return new Promise((resolve) => this.ee.once('close', (code: number, reason: string) => resolve({ code, reason })));
  }

  // ---------------------------------------------------------------------------------------------
  // Controls

  /** Send any server event (an event_id is added when missing). */
  send(event: Json): void {
    this.sendEvent(event);
  }

  /** Send an `error` event as the service would (default type server_error). */
  injectError(code: string, message: string, type = 'server_error'): void {
    this.sendError(code, message, null, null, type);
  }

  /** Kill the TCP connection: no session.closed, no close frame. */
  drop(): void {
    this.ws.terminate();
  }

  /** End the session from the service side: session.closed with `reason`, then a normal close. */
  endSession(reason: 'expired' | 'content' | 'remote_hangup' | 'connection_lost' | 'close_requested', clientEventId: string | null = null): void {
    if (this.closedValue) return;
    this.stopOutput('cancelled');
    if (this.started && !this.finalized) {
      this.finalized = true;
      this.sendEvent({
        type: 'session.closed',
        reason,
        session: this.configValue,
        usage: this.usage(),
        ...(clientEventId !== null ? { client_event_id: clientEventId } : {}),
      });
    }
    this.ws.close(1000, reason);
  }

  /** Close the socket with a close frame and no session.closed. */
  close(code = 1000, reason = ''): void {
    if (!this.closedValue) this.ws.close(code, reason);
  }

  // ---------------------------------------------------------------------------------------------
  // Transport

  private onClose(code: number, reason: string): void {
    if (this.closedValue) return;
    this.closedValue = true;
    this.closeInfo = { code, reason };
    this.stopOutput('cancelled');
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.ee.emit('close', code, reason);
  }

  private pushLog(dir: 'in' | 'out', event: Json): void {
    const entry: LiveLoggedEvent = { seq: this.seq++, dir, at: Date.now(), event };
    this.log.push(entry);
    if (this.log.length > this.tuning.maxLoggedEvents) {
      const n = Math.max(1, Math.ceil(this.tuning.maxLoggedEvents / 10));
      this.log.splice(0, n);
      this.dropped.loggedEvents += n;
    }
    this.ee.emit('log', entry);
  }

  private keep<T>(list: T[], item: T): void {
    list.push(item);
    if (list.length > this.tuning.maxRecords) {
      list.shift();
      this.dropped.records++;
    }
  }

  private sendEvent(event: Json): void {
    // The reference gives output audio deltas no event_id on the primary socket.
    const full: Json = event['type'] === 'session.output_audio.delta' || 'event_id' in event ? event : { event_id: newId('event'), ...event };
    if (this.closedValue || this.ws.readyState !== this.ws.OPEN) {
      this.dropped.unsentEvents++;
      return;
    }
    this.ws.send(JSON.stringify(full));
    if (full['type'] === 'session.output_audio.delta') {
      this.pushLog('out', { type: full['type'], delta: `[${String(full['delta']).length} base64 chars]` });
    } else {
      this.pushLog('out', full);
    }
  }

  private sendError(code: string, message: string, param: string | null, clientEventId: string | null, type = 'invalid_request_error'): void {
    const error: Json = { type, code, message };
    if (param !== null) error['param'] = param;
    if (clientEventId !== null) error['client_event_id'] = clientEventId;
    this.keep(this.errors, error);
    this.sendEvent({ type: 'error', error, ...(clientEventId !== null ? { client_event_id: clientEventId } : {}) });
  }

  private problem(p: SchemaProblem, eid: string | null): void {
    this.sendError(p.code, p.message, p.param, eid);
  }

  private onMessage(data: RawData, isBinary: boolean): void {
    if (this.closedValue) return;
    if (isBinary) {
      this.pushLog('in', { type: '[binary frame]' });
      this.sendError('invalid_type', 'Binary frames are not supported; send JSON text events.', null, null);
      return;
    }
    const text = Array.isArray(data) ? Buffer.concat(data).toString('utf8') : Buffer.isBuffer(data) ? data.toString('utf8') : Buffer.from(new Uint8Array(data)).toString('utf8');
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      this.pushLog('in', { type: '[invalid json]', length: text.length });
      this.sendError('invalid_json', `The event is not valid JSON [length:${text.length}].`, null, null);
      return;
    }
    const ev = isObj(parsed) ? parsed : null;
    if (ev && ev['type'] === 'session.input_audio.append' && typeof ev['audio'] === 'string') {
      this.pushLog('in', { ...ev, audio: `[${(ev['audio'] as string).length} base64 chars]` });
    } else {
      this.pushLog('in', ev ?? { type: '[non-object]' });
    }
    const eid = ev && typeof ev['event_id'] === 'string' ? (ev['event_id'] as string) : null;
    if (this.finalized) {
      this.sendError('session_closed', 'The session is closing; no further commands are accepted.', null, eid);
      return;
    }
    const p = validateLiveClientEvent(parsed);
    if (p) return this.problem(p, eid);
    const e = ev as Json;
    const type = e['type'] as string;
    if (type === 'session.start') return this.onStart(e['session'] as Json, eid);
    if (!this.started) {
      this.sendError('session_not_started', `'${type}' was sent before session.start; send session.start first and wait for session.started.`, 'type', eid);
      return;
    }
    switch (type) {
      case 'session.input_audio.append':
        return this.onAppend(e['audio'] as string, eid);
      case 'session.input_audio.mute':
        this.muted = true;
        return this.sendEvent({ type: 'session.input_audio.muted', ...this.ack(eid) });
      case 'session.input_audio.unmute':
        this.muted = false;
        return this.sendEvent({ type: 'session.input_audio.unmuted', ...this.ack(eid) });
      case 'session.instructions.append':
      case 'session.thinking.append':
      case 'session.commentary.append':
        return this.onContextAppend(type, e['content'] as string, e['delegation_id'] as string | null, eid);
      case 'session.update':
        return this.onUpdate(e['session'] as Json, eid);
      case 'response.item.create':
        return this.onResponseItem(e['item'] as Json, eid);
      case 'response.create':
        return this.onResponseCreate(eid);
      case 'session.close':
        return this.endSession('close_requested', eid);
    }
  }

  private ack(eid: string | null): Json {
    return eid !== null ? { client_event_id: eid } : {};
  }

  /** Session timeline: wall-clock ms since session.started. */
  private nowMs(): number {
    return this.started ? Date.now() - this.startedAt : 0;
  }

  private usage(): Json {
    return { seconds: Math.round(this.receivedMsValue / 1000) };
  }

  // ---------------------------------------------------------------------------------------------
  // Session config

  private delegationType(): 'client' | 'responses' {
    const d = this.configValue?.['delegation'] as Json | null | undefined;
    return d && d['type'] === 'responses' ? 'responses' : 'client';
  }

  private responsesConfig(): Json {
    return ((this.configValue?.['delegation'] as Json | undefined)?.['responses'] as Json | undefined) ?? {};
  }

  private onStart(session: Json, eid: string | null): void {
    if (this.started) {
      this.sendError('session_already_started', 'session.start may be sent only once per connection.', 'type', eid);
      return;
    }
    const audio = (session['audio'] as Json | undefined) ?? {};
    const output = (audio['output'] as Json | undefined) ?? {};
    const format = (audio['format'] as Json | undefined) ?? { type: 'audio/pcm', rate: AI_SAMPLE_RATE };
    const voice = output['voice'] ?? 'marin';
    if (typeof voice === 'string' && voice.trim() === '') {
      this.sendError('invalid_value', "Invalid value for 'session.audio.output.voice': empty.", 'session.audio.output.voice', eid);
      return;
    }
    this.startedAt = Date.now();
    this.configValue = {
      id: this.id,
      model: session['model'],
      status: 'active',
      expires_at: Math.floor(this.startedAt / 1000) + this.tuning.expiresInSec,
      instructions: session['instructions'] ?? null,
      audio: { format, output: { voice } },
      delegation: session['delegation'] ?? { type: 'client' },
      input: session['input'] ?? [],
      store: session['store'] ?? false,
      ...(session['client'] !== undefined ? { client: session['client'] } : {}),
    };
    this.vad = new EnergyVad({
      threshold: this.tuning.vadThreshold,
      prefixPaddingMs: this.tuning.vadPrefixMs,
      silenceDurationMs: this.tuning.vadSilenceMs,
      minSpeechMs: this.tuning.vadMinSpeechMs,
    });
    this.sendEvent({ type: 'session.started', session: this.configValue, ...this.ack(eid) });
  }

  private onUpdate(session: Json, eid: string | null): void {
    if (!('delegation' in session)) {
      this.sendEvent({ type: 'session.updated', session: this.configValue, ...this.ack(eid) });
      return;
    }
    const d = session['delegation'] as Json | null;
    const current = this.delegationType();
    const wanted = d === null ? 'client' : (d['type'] as string);
    if (wanted !== current || (d === null && current === 'responses')) {
      this.sendError('invalid_value', `The delegation type cannot change during a session [current:${current}, requested:${d === null ? 'null' : wanted}].`, 'session.delegation.type', eid);
      return;
    }
    if (current === 'responses' && d && isObj(d['responses'])) {
      const merged = { ...this.responsesConfig(), ...(d['responses'] as Json) };
      (this.configValue as Json)['delegation'] = { type: 'responses', responses: merged };
    }
    this.sendEvent({ type: 'session.updated', session: this.configValue, ...this.ack(eid) });
  }

  // ---------------------------------------------------------------------------------------------
  // Input audio, VAD, stalls

  private onAppend(audio: string, eid: string | null): void {
    if (!BASE64_RE.test(audio) || audio.length % 4 === 1) {
      this.sendError('invalid_value', 'Invalid audio: not valid base64.', 'audio', eid);
      return;
    }
    const byteLen = Math.floor((audio.length * 3) / 4) - (audio.endsWith('==') ? 2 : audio.endsWith('=') ? 1 : 0);
    if (byteLen > this.tuning.maxAppendBytes) {
      this.sendError('invalid_value', `Audio chunk too large [bytes:${byteLen}, max:${this.tuning.maxAppendBytes}].`, 'audio', eid);
      return;
    }
    const { type, rate } = this.format;
    if (type === 'audio/pcm' && byteLen % 2 !== 0) {
      this.sendError('invalid_value', `Invalid audio: audio/pcm needs whole 16-bit samples [bytes:${byteLen}].`, 'audio', eid);
      return;
    }
    const samples = decodeWire(audio, type);
    if (samples.length === 0) return;
    const chunkMs = (samples.length * 1000) / rate;
    this.trackPace(chunkMs);
    this.segments.push({ startMs: this.receivedMsValue, samples });
    this.receivedMsValue += chunkMs;
    this.storedMs += chunkMs;
    if (this.storedMs > this.tuning.maxReceivedAudioMs) {
      let n = 0;
      while (n < this.segments.length - 1 && this.storedMs > this.tuning.maxReceivedAudioMs * 0.9) {
        const first = this.segments[n++]!;
        this.storedMs -= (first.samples.length * 1000) / rate;
        this.dropped.receivedSamples += first.samples.length;
      }
      this.segments.splice(0, n);
    }
    if (this.receivedMsValue >= this.nextUsageMs) {
      this.nextUsageMs += this.tuning.usageEveryMs;
      this.sendEvent({ type: 'session.usage.updated', usage: this.usage() });
    }
    if (this.muted) {
      this.dropped.mutedMs += chunkMs;
      return;
    }
    for (const ev of this.vad!.push(samples, rate)) {
      if (ev.type === 'speech_started') this.onCallerOnset(ev.audioStartMs, ev.onsetMs);
      else this.onCallerTurnEnd(ev.audioEndMs);
    }
    if (this.vad!.speaking) this.streamTranscript(false);
  }

  /** Compare the input timeline with the wall clock: a stream behind real time is a gap. */
  private trackPace(chunkMs: number): void {
    const now = Date.now();
    if (this.firstAppendAt === null) {
      this.firstAppendAt = now;
      this.anchorWall = now;
      this.anchorAudioMs = 0;
      return;
    }
    // Where the stream should be by now had it kept real time since the anchor.
    const lead = this.receivedMsValue - this.anchorAudioMs - (now - this.anchorWall);
    if (lead < -this.tuning.gapThresholdMs) {
      this.keep(this.inputGaps, { atAudioMs: Math.round(this.receivedMsValue), lagMs: Math.round(-lead) });
      this.anchorWall = now;
      this.anchorAudioMs = this.receivedMsValue;
    } else if (lead > this.maxLeadMsValue) {
      this.maxLeadMsValue = lead;
    }
    void chunkMs;
  }

  /** Input timeline (ms of audio) → session timeline (ms since start), assuming the stream keeps real time. */
  private inputToSession(audioMs: number): number {
    const offset = this.firstAppendAt !== null ? this.firstAppendAt - this.startedAt : 0;
    return Math.max(0, Math.round(offset + audioMs));
  }

  private onCallerOnset(audioStartMs: number, onsetMs: number): void {
    this.turnStartMs = audioStartMs;
    this.heard = { chunkFromMs: audioStartMs, lastWord: '', text: '' };
    const s = this.speaking;
    if (s) {
      // Full duplex: talked over, the model stops at once.
      const u = s.utterance;
      const played = u.firstDeltaAt === null ? 0 : Math.min(u.deliveredMs, Date.now() - u.firstDeltaAt);
      this.keep(this.interruptions, {
        utteranceId: u.id,
        onsetMs: Math.round(onsetMs),
        deliveredMs: Math.round(u.deliveredMs),
        totalMs: Math.round(u.totalMs),
        realTimePlayedMs: Math.round(played),
        wasSending: true,
      });
      this.stopOutput('interrupted');
      return;
    }
    const last = this.utterances[this.utterances.length - 1];
    if (last && last.status === 'done' && last.firstDeltaAt !== null && Date.now() - last.firstDeltaAt < last.deliveredMs) {
      // All sent, but a real-time client would still be playing it.
      this.keep(this.interruptions, {
        utteranceId: last.id,
        onsetMs: Math.round(onsetMs),
        deliveredMs: Math.round(last.deliveredMs),
        totalMs: Math.round(last.totalMs),
        realTimePlayedMs: Math.round(Date.now() - last.firstDeltaAt),
        wasSending: false,
      });
      last.status = 'interrupted';
    }
  }

  /** Received input audio between two input-timeline positions, at the wire rate. */
  private slice(startMs: number, endMs: number): LiveUserTurn {
    const rate = this.format.rate;
    const parts: Int16Array[] = [];
    // Newest first: what is asked for is nearly always the last second or so.
    for (let k = this.segments.length - 1; k >= 0; k--) {
      const s = this.segments[k]!;
      const segEnd = s.startMs + (s.samples.length * 1000) / rate;
      if (segEnd <= startMs) break;
      if (s.startMs >= endMs) continue;
      const from = Math.max(0, Math.round(((startMs - s.startMs) * rate) / 1000));
      const to = Math.min(s.samples.length, Math.round(((endMs - s.startMs) * rate) / 1000));
      if (to > from) parts.push(s.samples.subarray(from, to));
    }
    return { audio: concatPcm(parts.reverse()), sampleRate: rate, startMs, endMs };
  }

  /**
   * Transcribe the caller while it speaks, one chunk at a time (the reference's fragments stream
   * and define no turns): a fragment goes out when a chunk says something new. `final` flushes the
   * last partial chunk at the end of the turn.
   */
  private streamTranscript(final: boolean, upToMs: number = this.receivedMsValue): void {
    const step = this.tuning.transcriptChunkMs;
    const h = this.heard;
    while (upToMs - h.chunkFromMs >= step || (final && upToMs - h.chunkFromMs >= Math.min(step, 100))) {
      const endMs = Math.min(upToMs, h.chunkFromMs + step);
      const word = this.tuning.transcribe(this.slice(h.chunkFromMs, endMs)).trim();
      if (word !== '' && word !== h.lastWord) {
        const delta = h.text === '' ? word : ` ${word}`;
        h.text += delta;
        this.sendEvent({ type: 'session.input_transcript.delta', delta, start_ms: this.inputToSession(h.chunkFromMs), end_ms: this.inputToSession(endMs) });
      }
      if (word !== '') h.lastWord = word;
      h.chunkFromMs = endMs;
      if (endMs >= upToMs) break;
    }
  }

  private onCallerTurnEnd(audioEndMs: number): void {
    const startMs = this.turnStartMs;
    this.streamTranscript(true, audioEndMs);
    const turn = this.slice(startMs, audioEndMs);
    this.keep(this.turns, { sampleRate: turn.sampleRate, startMs, endMs: audioEndMs, transcript: this.heard.text, endedAt: Date.now() });
    const index = this.turnCount++;
    void this.runScript(index, turn);
  }

  // ---------------------------------------------------------------------------------------------
  // The scripted model

  private async runScript(index: number, turn: LiveUserTurn): Promise<void> {
    let steps: LiveStep[];
    try {
      steps = await this.respond({ session: this, index, turn, delegation: this.delegationType() });
    } catch (err) {
      this.scriptProblems.push(`respond threw: ${err instanceof Error ? err.message : String(err)}`);
      return;
    }
    for (const step of steps) {
      if (this.closedValue || this.finalized) return;
      if ('delayMs' in step) await this.sleep(step.delayMs);
      else if ('delegate' in step) this.delegate(step.delegate);
      else this.enqueueSpeech(step, 'turn');
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.timers.delete(t);
        resolve();
      }, Math.max(0, ms));
      this.timers.add(t);
    });
  }

  private enqueueSpeech(step: LiveSayStep, cause: LiveUtterance['cause']): void {
    const utterance: LiveUtterance = {
      id: newId('utt'),
      transcript: step.transcript ?? '',
      totalMs: 0,
      deliveredMs: 0,
      firstDeltaAt: null,
      status: 'queued',
      cause,
    };
    this.keep(this.utterances, utterance);
    this.queue.push({ step, utterance });
    if (!this.speaking) void this.speakNext();
  }

  private wireAudio(step: LiveSayStep): Int16Array {
    const { type, rate } = this.format;
    const src = step.audio ?? { toneHz: 1000, ms: 1500 };
    if (!(src instanceof Int16Array)) return synthTone(src, rate);
    if (rate === AI_SAMPLE_RATE) return src;
    if (rate === 16000) return resample24to16(src);
    void type;
    return new Decimator24to8().process(src);
  }

  private async speakNext(): Promise<void> {
    const next = this.queue.shift();
    if (!next || this.closedValue) return;
    const { step, utterance } = next;
    const { type, rate } = this.format;
    const pcm = this.wireAudio(step);
    utterance.totalMs = (pcm.length * 1000) / rate;
    utterance.status = 'speaking';
    let stopped = false;
    let wake: (() => void) | null = null;
    this.speaking = {
      utterance,
      stop: () => {
        stopped = true;
        wake?.();
      },
    };
    const chunk = Math.max(1, Math.round((this.tuning.chunkMs * rate) / 1000));
    const chunks = Math.max(1, Math.ceil(pcm.length / chunk));
    const words = utterance.transcript.match(/\S+\s*/g) ?? [];
    const interval = Number.isFinite(this.tuning.burstFactor) && this.tuning.burstFactor > 0 ? this.tuning.chunkMs / this.tuning.burstFactor : 0;
    const pause = (ms: number): Promise<void> =>
      new Promise((resolve) => {
        const t = setTimeout(() => {
          this.timers.delete(t);
          wake = null;
          resolve();
        }, ms);
        this.timers.add(t);
        wake = () => {
          clearTimeout(t);
          this.timers.delete(t);
          wake = null;
          resolve();
        };
      });
    let wordsSent = 0;
    const startMs = this.nowMs();
    // Delta k is due at paceFrom + k * interval: a timer that fires late (a busy process) is caught
    // up by the next ones, so the stream keeps its pace on average instead of drifting behind it.
    let paceFrom = performance.now();
    for (let k = 0; k < chunks && !stopped; k++) {
      let waitedFrom = -1;
      while (this.ws.bufferedAmount > this.tuning.maxSendBufferBytes && !stopped && !this.closedValue) {
        this.dropped.backpressureWaits++;
        if (waitedFrom < 0) waitedFrom = performance.now();
        await pause(5);
      }
      // Time spent held back by the socket is not made up for afterwards.
      if (waitedFrom >= 0) paceFrom += performance.now() - waitedFrom;
      if (stopped || this.closedValue) break;
      const slice = pcm.subarray(k * chunk, Math.min(pcm.length, (k + 1) * chunk));
      this.sendEvent({ type: 'session.output_audio.delta', delta: encodeWire(slice, type) });
      utterance.firstDeltaAt ??= Date.now();
      utterance.deliveredMs += (slice.length * 1000) / rate;
      const due = Math.ceil(((k + 1) / chunks) * words.length);
      if (due > wordsSent) {
        const a = Math.round(startMs + (utterance.totalMs * wordsSent) / Math.max(1, words.length));
        const b = Math.round(startMs + (utterance.totalMs * due) / Math.max(1, words.length));
        this.sendEvent({ type: 'session.output_transcript.delta', delta: words.slice(wordsSent, due).join(''), start_ms: a, end_ms: b });
        wordsSent = due;
      }
      if (k < chunks - 1) await pause(Math.max(0, paceFrom + (k + 1) * interval - performance.now()));
    }
    if (utterance.status === 'speaking') utterance.status = 'done';
    this.speaking = null;
    if (!this.closedValue && this.queue.length > 0) void this.speakNext();
  }

  /** Stop the current utterance and drop queued ones. */
  private stopOutput(status: 'interrupted' | 'cancelled'): void {
    for (const q of this.queue) q.utterance.status = 'cancelled';
    this.queue.length = 0;
    const s = this.speaking;
    if (!s) return;
    s.utterance.status = status;
    s.stop();
  }

  // ---------------------------------------------------------------------------------------------
  // Delegation

  private delegate(intent: { name?: string; arguments?: unknown }): void {
    const args = intent.arguments === undefined ? undefined : typeof intent.arguments === 'string' ? intent.arguments : JSON.stringify(intent.arguments);
    if (this.delegationType() === 'client') {
      const d: LiveDelegation = { id: newId('deleg'), target: 'client', offsetMs: this.nowMs(), answers: [], completed: false };
      if (intent.name !== undefined) d.name = intent.name;
      if (args !== undefined) d.arguments = args;
      this.keep(this.delegations, d);
      this.sendEvent({ type: 'session.delegation.created', delegation: { id: d.id, type: 'delegation', target: 'client' }, offset_ms: d.offsetMs });
      return;
    }
    const tools = (this.responsesConfig()['tools'] as Json[] | undefined) ?? [];
    let name = intent.name;
    if (name !== undefined && !tools.some((t) => t['type'] === 'function' && t['name'] === name)) {
      this.scriptProblems.push(`function '${name}' is not among the session's Responses tools`);
      name = undefined;
    }
    const d: LiveDelegation = { id: newId('deleg'), target: 'responses', offsetMs: this.nowMs(), responseId: newId('resp'), answers: [], completed: false };
    this.keep(this.delegations, d);
    this.sendEvent({
      type: 'session.delegation.created',
      delegation: { id: d.id, type: 'delegation', target: 'responses', response_id: d.responseId },
      offset_ms: d.offsetMs,
    });
    if (name === undefined) {
      this.respondText(d, 'Here is what I found.');
      return;
    }
    d.name = name;
    d.arguments = args ?? '{}';
    d.callId = newId('call');
    const model = String(this.responsesConfig()['model']);
    const item = { type: 'function_call', id: newId('fc'), call_id: d.callId, name, arguments: '', status: 'in_progress' };
    this.responseEvent(d, { type: 'response.created', response: { id: d.responseId, object: 'response', status: 'in_progress', model, output: [] } });
    this.responseEvent(d, { type: 'response.output_item.added', output_index: 0, item });
    this.responseEvent(d, { type: 'response.function_call_arguments.delta', item_id: item.id, output_index: 0, delta: d.arguments });
    this.responseEvent(d, { type: 'response.function_call_arguments.done', item_id: item.id, output_index: 0, name, arguments: d.arguments });
    const done = { ...item, arguments: d.arguments, status: 'completed' };
    this.responseEvent(d, { type: 'response.output_item.done', output_index: 0, item: done });
    this.responseEvent(d, { type: 'response.completed', response: { id: d.responseId, object: 'response', status: 'completed', model, output: [] } });
  }

  private responseEvent(d: LiveDelegation, event: Json): void {
    this.sendEvent({ type: 'response.event', delegation_id: d.id, event });
  }

  /** The emulated Responses backend answers in text; the live model then speaks it. */
  private respondText(d: LiveDelegation, text: string): void {
    const model = String(this.responsesConfig()['model']);
    const id = newId('resp');
    const msg = { type: 'message', id: newId('msg'), role: 'assistant', status: 'completed', content: [{ type: 'output_text', text }] };
    this.responseEvent(d, { type: 'response.created', response: { id, object: 'response', status: 'in_progress', model, output: [] } });
    this.responseEvent(d, { type: 'response.output_text.delta', item_id: msg.id, output_index: 0, content_index: 0, delta: text });
    this.responseEvent(d, { type: 'response.output_text.done', item_id: msg.id, output_index: 0, content_index: 0, text });
    this.responseEvent(d, { type: 'response.output_item.done', output_index: 0, item: msg });
    this.responseEvent(d, { type: 'response.completed', response: { id, object: 'response', status: 'completed', model, output: [] } });
    d.completed = true;
    this.enqueueSpeech(this.speak(text, d), 'responses');
  }

  private onContextAppend(type: string, content: string, delegationId: string | null, eid: string | null): void {
    let d: LiveDelegation | null = null;
    if (delegationId !== null) {
      if (this.delegationType() === 'responses') {
        this.sendError('invalid_value', 'A non-null delegation_id is not accepted with Responses delegation.', 'delegation_id', eid);
        return;
      }
      d = this.delegations.find((x) => x.id === delegationId) ?? null;
      if (!d) {
        this.sendError('unknown_delegation', `No client delegation with id '${delegationId}' exists in this session.`, 'delegation_id', eid);
        return;
      }
    }
    const kind = type === 'session.commentary.append' ? 'commentary' : type === 'session.thinking.append' ? 'thinking' : 'instructions';
    if (d) d.answers.push({ kind, content });
    if (kind === 'instructions') this.keep(this.appendedInstructions, content);
    const at = this.nowMs();
    this.sendEvent({ type: type.replace(/\.append$/, '.appended'), start_ms: at, end_ms: at, ...this.ack(eid) });
    if (kind === 'commentary') this.enqueueSpeech(this.speak(content, d), 'commentary');
  }

  private onResponseItem(item: Json, eid: string | null): void {
    if (this.delegationType() !== 'responses') {
      this.sendError('invalid_request_error', 'response.item.create requires Responses delegation.', 'type', eid);
      return;
    }
    if (item['type'] === 'function_call_output') {
      const callId = item['call_id'] as string;
      const d = this.delegations.find((x) => x.callId === callId);
      if (!d) {
        this.sendError('unknown_call_id', `No pending function call with call_id '${callId}'.`, 'item.call_id', eid);
        return;
      }
      if (d.answers.some((a) => a.kind === 'function_call_output')) {
        this.sendError('invalid_value', `The function call '${callId}' already has an output.`, 'item.call_id', eid);
        return;
      }
      const out = item['output'];
      const text = typeof out === 'string' ? out : (out as Json[]).map((p) => (typeof p['text'] === 'string' ? p['text'] : '')).join('');
      d.answers.push({ kind: 'function_call_output', content: text });
      this.pendingOutputs.push(d);
    }
    this.keep(this.responseItems, item);
  }

  private onResponseCreate(eid: string | null): void {
    if (this.delegationType() !== 'responses') {
      this.sendError('invalid_request_error', 'response.create requires Responses delegation.', 'type', eid);
      return;
    }
    const waiting = this.pendingOutputs.splice(0);
    if (waiting.length === 0) {
      // A fresh request to the backend: a delegation of its own.
      const d: LiveDelegation = { id: newId('deleg'), target: 'responses', offsetMs: this.nowMs(), responseId: newId('resp'), answers: [], completed: false };
      this.keep(this.delegations, d);
      this.sendEvent({ type: 'session.delegation.created', delegation: { id: d.id, type: 'delegation', target: 'responses', response_id: d.responseId }, offset_ms: d.offsetMs, ...this.ack(eid) });
      this.respondText(d, 'Here is what I found.');
      return;
    }
    for (const d of waiting) {
      const output = d.answers.find((a) => a.kind === 'function_call_output')?.content ?? '';
      this.respondText(d, `The ${d.name ?? 'function'} result is: ${output}`);
    }
  }
}
