/**
 * The responses of one Realtime conversation, one at a time (the server allows one active response
 * per conversation): response.create requests wait in a bounded queue until nothing is active, one
 * at most is in flight between its response.create and the `response.created` that answers it, and
 * each request resolves with its outcome at its `response.done`, or as failed or not sent when the
 * server session is lost or the session ends. A request is tied to its response by a metadata tag;
 * a response the server started by itself (VAD) carries none and runs unowned.
 *
 * Threading: JS thread only. The session decides when a response may be created at all (mayCreate)
 * and announces what happens (onCreated, onUsage, onDone); this queue keeps the books.
 */
import type { Logger } from '../../logging/logger';
import type { ResponseCreatedEvent, ResponseDoneEvent, WireResponseCreateBody, WireUsage } from '../events';
import { notSent } from '../SessionLifecycle';
import type { AiSessionStats, ResponseCreateOptions, ResponseOutcome } from '../types';
import { omitUndefined, wireToolChoice, type ServerLink } from './wire';

/** Metadata key that ties a `response.created` to the response.create that asked for it. */
const REQUEST_TAG = 'sip_ai_request';
/** Retries of a response.create that lost a race with a server (VAD) response. */
const MAX_CREATE_RETRIES = 3;

interface ResponseRequest {
  id: string;
  opts: ResponseCreateOptions;
  resolve: (o: ResponseOutcome) => void;
  eventId?: string;
  retries: number;
  cancelOnCreate: boolean;
}

interface ActiveResponse {
  id: string;
  req: ResponseRequest | undefined;
}

/** What a ResponseQueue needs from its session. */
export interface ResponseQueueOptions {
  /** Requests allowed to wait; createResponse() beyond it is refused (not_sent, queue_full). */
  maxQueued: number;
  /** Where response.create and response.cancel go. */
  link: ServerLink;
  /** Whether a response may be created now (the session is ready and nothing else must go first). */
  mayCreate(): boolean;
  /** A response was created (the session emits `responseCreated`). */
  onCreated(info: { responseId: string; requested: boolean }): void;
  /** A `response.done` carried usage: called before its outcome is announced. */
  onUsage(usage: WireUsage): void;
  /** A response ended (the session emits `responseDone`); the request's promise resolves right after. */
  onDone(outcome: ResponseOutcome): void;
}

/** The response queue of one Realtime conversation (see the file header). */
export class ResponseQueue {
  readonly #opts: ResponseQueueOptions;
  readonly #stats: AiSessionStats;
  readonly #log: Logger;
  #waiting: ResponseRequest[] = [];
  #inFlight: ResponseRequest | undefined;
  readonly #active = new Map<string, ActiveResponse>();
  #seq = 0;

  /** An empty queue; `responsesRequested` and `responsesDropped` are counted in `stats`. */
  constructor(opts: ResponseQueueOptions, stats: AiSessionStats, log: Logger) {
    this.#opts = opts;
    this.#stats = stats;
    this.#log = log;
  }

  /** True while a response.create is in flight or a response is active: nothing else may be created. */
  get busy(): boolean {
    return this.#inFlight !== undefined || this.#active.size > 0;
  }

  /**
   * Queue a request behind the waiting ones and send it when its turn comes. Resolves with its
   * outcome; never rejects. Refused at once (not_sent, queue_full, counted) when the queue is full.
   */
  request(opts: ResponseCreateOptions): Promise<ResponseOutcome> {
    if (this.#waiting.length >= this.#opts.maxQueued) {
      this.#stats.responsesDropped += 1;
      this.#log.warn({ queued: this.#waiting.length }, `response.create refused [reason:queue_full, queued:${this.#waiting.length}]`);
      return Promise.resolve(notSent('queue_full'));
    }
    return this.#enqueue(opts, false);
  }

  /** Queue a request ahead of the waiting ones, whatever their number (the follow-up of tool outputs). */
  requestFirst(opts: ResponseCreateOptions): Promise<ResponseOutcome> {
    return this.#enqueue(opts, true);
  }

  #enqueue(opts: ResponseCreateOptions, front: boolean): Promise<ResponseOutcome> {
    return new Promise<ResponseOutcome>((resolve) => {
      const req: ResponseRequest = { id: `req_${++this.#seq}`, opts, resolve, retries: 0, cancelOnCreate: false };
      if (front) this.#waiting.unshift(req);
      else this.#waiting.push(req);
      this.pump();
    });
  }

  /** Send the first waiting request, if a response may be created now and none is in flight or active. */
  pump(): void {
    if (!this.#opts.mayCreate() || this.busy) return;
    const req = this.#waiting.shift();
    if (!req) return;
    const body: WireResponseCreateBody = omitUndefined({
      instructions: req.opts.instructions,
      conversation: req.opts.conversation,
      tool_choice: req.opts.toolChoice === undefined ? undefined : wireToolChoice(req.opts.toolChoice),
      max_output_tokens: req.opts.maxOutputTokens,
      metadata: { ...(req.opts.metadata ?? {}), [REQUEST_TAG]: req.id },
    });
    const eventId = this.#opts.link.send({ type: 'response.create', response: body });
    if (eventId === undefined) {
      this.#waiting.unshift(req);
      return;
    }
    req.eventId = eventId;
    this.#inFlight = req;
    this.#stats.responsesRequested += 1;
  }

  /** Cancel the active responses (`response.cancel`); a request in flight is cancelled once created. */
  cancel(): void {
    const active = [...this.#active.keys()];
    if (active.length === 0) {
      if (this.#inFlight) this.#inFlight.cancelOnCreate = true;
      else this.#log.debug('cancelResponse(): nothing active');
      return;
    }
    for (const id of active) this.#opts.link.send({ type: 'response.cancel', response_id: id });
  }

  /** A `response.created`: the response becomes active, owned by the request in flight when it is that request's. */
  created(ev: ResponseCreatedEvent): void {
    const id = ev.response.id;
    const tag = ev.response.metadata?.[REQUEST_TAG];
    let req: ResponseRequest | undefined;
    // Without the metadata echo, the next creation after our request is taken to be ours.
    if (this.#inFlight && (tag === this.#inFlight.id || tag === undefined)) {
      req = this.#inFlight;
      this.#inFlight = undefined;
    }
    this.#active.set(id, { id, req });
    this.#opts.onCreated({ responseId: id, requested: req !== undefined });
    if (req?.cancelOnCreate) this.#opts.link.send({ type: 'response.cancel', response_id: id });
  }

  /** A `response.done`: announce its usage and outcome, resolve its request, and return the outcome. */
  done(r: ResponseDoneEvent['response']): ResponseOutcome {
    const act = this.#active.get(r.id);
    this.#active.delete(r.id);
    let req = act?.req;
    if (!act && this.#inFlight && r.metadata?.[REQUEST_TAG] === this.#inFlight.id) {
      req = this.#inFlight;
      this.#inFlight = undefined;
    }
    if (r.usage) this.#opts.onUsage(r.usage);
    const status = r.status === 'in_progress' || r.status === undefined ? 'completed' : r.status;
    const reason = r.status_details?.reason ?? undefined;
    const outcome: ResponseOutcome = {
      responseId: r.id,
      status,
      requested: req !== undefined,
      ...(reason ? { reason } : {}),
      ...(r.usage ? { usage: r.usage } : {}),
      ...(status === 'failed'
        ? { error: { code: r.status_details?.error?.code ?? 'response_failed', message: r.status_details?.error?.message ?? 'response failed' } }
        : {}),
    };
    this.#log.debug({ responseId: r.id, status, reason }, 'response done');
    this.#opts.onDone(outcome);
    req?.resolve(outcome);
    return outcome;
  }

  /**
   * A response.create of ours was answered by an error; true when it was ours. One that lost the race
   * with a server response goes back to the front of the queue (a few times); any other fails.
   */
  createFailed(eventId: string, code: string, message: string): boolean {
    let req: ResponseRequest | undefined;
    if (this.#inFlight?.eventId === eventId) {
      req = this.#inFlight;
      this.#inFlight = undefined;
    } else {
      // A server response was mistaken for ours (no metadata echo): it keeps running, unowned.
      for (const a of this.#active.values()) {
        if (a.req?.eventId === eventId) {
          req = a.req;
          a.req = undefined;
        }
      }
    }
    if (!req) return false;
    if (code === 'conversation_already_has_active_response' && req.retries < MAX_CREATE_RETRIES) {
      req.retries += 1;
      this.#log.debug({ request: req.id, retries: req.retries }, 'response.create raced an active response; re-queued');
      this.#waiting.unshift(req);
    } else {
      this.#log.warn({ code }, `response.create failed [request:${req.id}, code:${code}]: ${message}`);
      req.resolve({ responseId: undefined, status: 'failed', requested: true, error: { code, message } });
    }
    this.pump();
    return true;
  }

  /** The server session is gone: every active response and the request in flight fail with `reason` (waiting ones stay). */
  lose(reason: string): void {
    const error = { code: reason, message: `response lost [reason:${reason}]` };
    for (const a of this.#active.values()) {
      const outcome: ResponseOutcome = { responseId: a.id, status: 'failed', reason, requested: a.req !== undefined, error };
      this.#opts.onDone(outcome);
      a.req?.resolve(outcome);
    }
    this.#active.clear();
    if (this.#inFlight) {
      this.#inFlight.resolve({ responseId: undefined, status: 'failed', reason, requested: true, error });
      this.#inFlight = undefined;
    }
  }

  /** The session ends: every waiting request resolves as not sent. */
  dropWaiting(reason: string): void {
    for (const req of this.#waiting.splice(0)) req.resolve(notSent(reason));
  }
}
