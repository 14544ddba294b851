/**
 * A fake OpenAI Realtime server (GA protocol over WebSocket) for tests and benchmarks, written from
 * docs/realtime-protocol.md only. It is strict like the real service: GA shapes only, unknown
 * parameters rejected, `session.type` required, truncate beyond delivered audio is an error, audio
 * deltas come in bursts faster than real time, server VAD works by energy, function calls, and
 * `session_expired`. Listens on 127.0.0.1, port 0 by default.
 *
 * ```ts
 * const server = new FakeRealtimeServer({ apiKey: 'sk-test' });
 * const { url } = await server.listen();   // ws://127.0.0.1:PORT/v1/realtime?model=gpt-realtime
 * ...
 * await server.close();
 * ```
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { FakeWsServer, jsonError, type FakeWsServerOptions } from './FakeWsServer';
import { FakeSession, type LoggedEvent, type RespondScript, type SessionTuning, type Step } from './FakeSession';
import type { ToneSpec } from './audio';

// One import site for tests: the session types, audio helpers and VAD mapping.
export * from './FakeSession';
export { type ToneSpec, type WireFormat, synthTone, decodeWire, encodeWire, rmsDbfs } from './audio';
export { thresholdToDbfs } from './vad';
export type { HandshakeRecord } from './FakeWsServer';

/** Paths the fake upgrades on: OpenAI's and Azure's GA endpoint. */
export const REALTIME_PATHS = ['/v1/realtime', '/openai/v1/realtime'] as const;

/** Options of {@link FakeRealtimeServer}; every field has a default. */
export interface FakeRealtimeServerOptions extends FakeWsServerOptions {
  /** Refuse every handshake with HTTP 429; default false. */
  rateLimited?: boolean;
  /** Audio delivery speed as a multiple of real time; default 4. Infinity sends every chunk back to back. */
  burstFactor?: number;
  /** Audio per output_audio.delta, ms of 24 kHz audio; default 100. */
  chunkMs?: number;
  /** Model "think time" between response.created and the first output item, ms; default 0. */
  responseLatencyMs?: number;
  /** What responses say; default {@link toneReply}() (a 1 kHz tone of 1.5 s per response). */
  respond?: RespondScript;
  /** End-of-turn silence used for semantic_vad, ms; default 800. */
  semanticVadSilenceMs?: number;
  /** Voiced audio needed before speech_started counts, ms; default 30. */
  vadMinSpeechMs?: number;
  /** Send session_expired and close after this long (wall clock), ms; default none. */
  sessionMaxMs?: number;
  /** Input audio kept per session for inspection, ms; default 600000 (oldest evicted, counted). */
  maxReceivedAudioMs?: number;
  /** Events kept in each session's log; default 20000 (oldest evicted, counted). */
  maxLoggedEvents?: number;
  /** Conversation items kept per session; default 2000 (oldest evicted, counted). */
  maxConversationItems?: number;
  /** Audio streaming pauses while the socket has more than this queued, bytes; default 4 MiB. */
  maxSendBufferBytes?: number;
  /** Transcript for input audio transcription (when enabled); default `[user audio N ms]`. */
  transcribe?: SessionTuning['transcribe'];
}

/** A logged event together with the session it belongs to. */
export interface Observation extends LoggedEvent {
  session: FakeSession;
}

/** Matches an observation by event type or predicate. */
export type ObservationMatcher = string | ((o: Observation) => boolean);

/**
 * The default script: every response is one spoken message, a tone (1 kHz, 1.5 s, amplitude 0.3
 * unless overridden) with a transcript naming the response number.
 */
export function toneReply(tone: Partial<ToneSpec> = {}): RespondScript {
  const spec: ToneSpec = { toneHz: tone.toneHz ?? 1000, ms: tone.ms ?? 1500, amplitude: tone.amplitude ?? 0.3 };
  return (ctx): Step[] => [
    { audio: spec, transcript: `Reply ${ctx.index + 1}: this is a ${spec.toneHz} hertz test tone.` },
  ];
}

/** The fake Realtime server. See the module comment for an example. */
export class FakeRealtimeServer extends FakeWsServer<FakeSession, LoggedEvent> {
  /** Response script for new sessions; may be changed while running. */
  respond: RespondScript;

  private readonly opts: FakeRealtimeServerOptions;

  constructor(opts: FakeRealtimeServerOptions = {}) {
    super(opts);
    this.opts = opts;
    this.rateLimited = opts.rateLimited ?? false;
    this.respond = opts.respond ?? toneReply();
  }

  /** Default session URL: `ws://host:port/v1/realtime?model=gpt-realtime`. */
  get url(): string {
    return `${this.baseUrl}/v1/realtime?model=gpt-realtime`;
  }

  /** Kill one session's TCP connection abruptly. Returns false if it is unknown or already closed. */
  dropSession(id: string): boolean {
    const s = this.session(id);
    if (!s || s.closed) return false;
    s.drop();
    return true;
  }

  /** Send `session_expired` then close the session. Returns false if it is unknown or already closed. */
  expireSession(id: string): boolean {
    const s = this.session(id);
    if (!s || s.closed) return false;
    s.expire();
    return true;
  }

  protected onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = this.checkCommon(req, socket, REALTIME_PATHS);
    if (!url) return;
    const rawUrl = req.url ?? '/';
    const model = url.searchParams.get('model');
    if (!model) {
      this.refuse(
        socket,
        rawUrl,
        400,
        jsonError('invalid_request_error', 'missing_required_parameter', "Missing required parameter: 'model'.", 'model'),
        'missing_required_parameter',
      );
      return;
    }
    const o = this.opts;
    this.accept(
      req,
      socket,
      head,
      (ws) =>
        new FakeSession(ws, rawUrl, model, req.headers, {
          respond: this.respond,
          burstFactor: o.burstFactor ?? 4,
          chunkMs: o.chunkMs ?? 100,
          responseLatencyMs: o.responseLatencyMs ?? 0,
          semanticVadSilenceMs: o.semanticVadSilenceMs ?? 800,
          vadMinSpeechMs: o.vadMinSpeechMs ?? 30,
          maxReceivedAudioMs: o.maxReceivedAudioMs ?? 600_000,
          maxLoggedEvents: o.maxLoggedEvents ?? 20_000,
          maxConversationItems: o.maxConversationItems ?? 2000,
          maxSendBufferBytes: o.maxSendBufferBytes ?? 4 * 1024 * 1024,
          ...(o.transcribe ? { transcribe: o.transcribe } : {}),
        }),
      (session) => {
        const beta = req.headers['openai-beta'];
        if (typeof beta === 'string' && /realtime\s*=\s*v1/i.test(beta)) {
          session.rejectBeta();
          return;
        }
        session.start();
        if (o.sessionMaxMs !== undefined) {
          const timer = setTimeout(() => session.expire(), o.sessionMaxMs);
          session.onClosed(() => clearTimeout(timer));
        }
      },
    );
  }
}
