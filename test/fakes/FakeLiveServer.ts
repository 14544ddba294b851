/**
 * A fake OpenAI GPT-Live server (primary WebSocket) for tests and benchmarks, written from the
 * published Live reference (summary in live-schema.ts), not from our client. Strict like the
 * service: session.start first, unknown fields rejected, no query parameters, auth on the
 * handshake (Bearer or Azure `api-key`). Its "model" is a full-duplex script: it hears caller turns
 * by energy, answers with tones and transcripts sent faster than real time, stops when talked
 * over, and delegates work to the client or to an emulated Responses backend. It records what a
 * test needs to check: interruptions, input stalls, delegations, errors. Listens on 127.0.0.1.
 *
 * ```ts
 * const server = new FakeLiveServer({ apiKey: 'sk-test' });
 * const { url } = await server.listen();   // ws://127.0.0.1:PORT/v1/live/sessions
 * ...
 * await server.close();
 * ```
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { FakeWsServer, jsonError, type FakeWsServerOptions } from './FakeWsServer';
import {
  LiveFakeSession,
  hearToneCheaply,
  liveSpeakTone,
  liveToneReply,
  type LiveLoggedEvent,
  type LiveRespondScript,
  type LiveSessionTuning,
  type LiveSpeakScript,
} from './LiveFakeSession';

export * from './LiveFakeSession';
export { validateLiveClientEvent, LIVE_VOICES } from './live-schema';

/** Paths the fake upgrades on: OpenAI's and Azure's. */
export const LIVE_PATHS = ['/v1/live/sessions', '/openai/v1/live/sessions'] as const;

/** Options of {@link FakeLiveServer}; every field has a default. */
export interface FakeLiveServerOptions extends FakeWsServerOptions {
  /** Audio delivery speed as a multiple of real time; default 4. Infinity sends back to back. */
  burstFactor?: number;
  /** Audio per session.output_audio.delta, ms; default 100. */
  chunkMs?: number;
  /** Reply to each caller turn; default {@link liveToneReply}() (1 kHz, 1.5 s). */
  respond?: LiveRespondScript;
  /** Speech for commentary and Responses results; default {@link liveSpeakTone}() (1.2 kHz, 1 s). */
  speak?: LiveSpeakScript;
  /** VAD threshold 0..1 (0.5 ≈ -35 dBFS); default 0.5. */
  vadThreshold?: number;
  /** Silence that ends a caller turn, ms; default 500. */
  vadSilenceMs?: number;
  /** Audio before the onset included in a turn, ms; default 300. */
  vadPrefixMs?: number;
  /** Voiced audio needed before an onset counts, ms; default 30. */
  vadMinSpeechMs?: number;
  /** Input behind real time by more than this is recorded as a gap, ms; default 200. */
  gapThresholdMs?: number;
  /** session.usage.updated every this much input audio, ms; default 15000. */
  usageEveryMs?: number;
  /** Largest decoded append accepted, bytes; default 15 MiB. */
  maxAppendBytes?: number;
  /** Input audio kept per session, ms; default 600000. */
  maxReceivedAudioMs?: number;
  /** Events kept per session log; default 20000. */
  maxLoggedEvents?: number;
  /** Records kept per list (utterances, gaps, ...); default 1000. */
  maxRecords?: number;
  /** Audio streaming pauses while more than this is queued on the socket, bytes; default 4 MiB. */
  maxSendBufferBytes?: number;
  /** Caller audio per transcript fragment while the caller speaks, ms; default 400. */
  transcriptChunkMs?: number;
  /** What a chunk of caller audio says; default {@link hearToneCheaply} (`tone <Hz>`, '' for silence). */
  transcribe?: LiveSessionTuning['transcribe'];
  /** Session lifetime advertised in expires_at, s; default 3600. */
  expiresInSec?: number;
}

/** A logged event with its session. */
export interface LiveObservation extends LiveLoggedEvent {
  session: LiveFakeSession;
}

/** The fake GPT-Live server. See the module comment. */
export class FakeLiveServer extends FakeWsServer<LiveFakeSession, LiveLoggedEvent> {
  /** Reply script for new sessions. */
  respond: LiveRespondScript;
  /** Speech for new sessions. */
  speak: LiveSpeakScript;

  private readonly opts: FakeLiveServerOptions;

  constructor(opts: FakeLiveServerOptions = {}) {
    super(opts);
    this.opts = opts;
    this.respond = opts.respond ?? liveToneReply();
    this.speak = opts.speak ?? liveSpeakTone();
  }

  /** `ws://host:port/v1/live/sessions`. */
  get url(): string {
    return `${this.baseUrl}${LIVE_PATHS[0]}`;
  }

  /** `ws://host:port/openai/v1/live/sessions` (the Azure path). */
  get azureUrl(): string {
    return `${this.baseUrl}${LIVE_PATHS[1]}`;
  }

  /** Sessions whose socket is still open. */
  get openSessions(): number {
    return this.sessions.filter((s) => !s.closed).length;
  }

  protected onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = this.checkCommon(req, socket, LIVE_PATHS);
    if (!url) return;
    const rawUrl = req.url ?? '/';
    // "Connect without query parameters": the model goes in session.start.
    const firstParam = [...url.searchParams.keys()][0];
    if (firstParam !== undefined) {
      this.refuse(
        socket,
        rawUrl,
        400,
        jsonError('invalid_request_error', 'unknown_parameter', `Unknown query parameter: '${firstParam}'. Live takes no query parameters; put the model in session.start.`, firstParam),
        'unknown_parameter',
      );
      return;
    }
    const o = this.opts;
    this.accept(
      req,
      socket,
      head,
      (ws) =>
        new LiveFakeSession(ws, rawUrl, req.headers, {
          respond: this.respond,
          speak: this.speak,
          burstFactor: o.burstFactor ?? 4,
          chunkMs: o.chunkMs ?? 100,
          vadThreshold: o.vadThreshold ?? 0.5,
          vadSilenceMs: o.vadSilenceMs ?? 500,
          vadPrefixMs: o.vadPrefixMs ?? 300,
          vadMinSpeechMs: o.vadMinSpeechMs ?? 30,
          gapThresholdMs: o.gapThresholdMs ?? 200,
          usageEveryMs: o.usageEveryMs ?? 15_000,
          maxAppendBytes: o.maxAppendBytes ?? 15 * 1024 * 1024,
          maxReceivedAudioMs: o.maxReceivedAudioMs ?? 600_000,
          maxLoggedEvents: o.maxLoggedEvents ?? 20_000,
          maxRecords: o.maxRecords ?? 1000,
          maxSendBufferBytes: o.maxSendBufferBytes ?? 4 * 1024 * 1024,
          transcriptChunkMs: o.transcriptChunkMs ?? 400,
          transcribe: o.transcribe ?? hearToneCheaply,
          expiresInSec: o.expiresInSec ?? 3600,
        }),
    );
  }
}
