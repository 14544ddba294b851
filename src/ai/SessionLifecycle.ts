/**
 * The lifecycle every AI session shares, whatever its backend: `idle -> starting -> ready`, then
 * `ready <-> reconnecting` for a backend that survives a lost connection, and one ending: `closed`
 * (asked for, by close()) or `died` (not asked for; carries the error). One setter makes every
 * transition, logs it and emits `stateChange`.
 *
 * Ending happens once. From the moment close() or a death begins, `ending` is true and nothing can
 * end the session again, not even a listener called back while the backend lets go of its work; so
 * close() is idempotent, and `close` and `died` are never both emitted.
 *
 * A backend extends this class and implements release(): what to let go of as the session ends
 * (socket, timers, the active response failed, waiting requests resolved as not sent).
 */
import type { Logger } from '../logging/logger';
import { AiSessionError, InvalidStateError } from '../util/errors';
import { TypedEmitter } from '../util/TypedEmitter';
import type { AiSessionEvents, AiSessionState, ResponseOutcome } from './types';

/**
 * How a session ends: `closed` (close() was called), `died` (lost on its own; emits `died`) or
 * `start_failed` (start() rejects instead; no `died` event).
 */
export type SessionEnd = 'closed' | 'died' | 'start_failed';

/** The states a backend moves to by itself between start and end. */
export type RunningSessionState = Extract<AiSessionState, { name: 'ready' | 'reconnecting' }>;

/** The state machine of an AI session (see the file header), as the base class of every backend's session. */
export abstract class SessionLifecycle extends TypedEmitter<AiSessionEvents> {
  readonly #log: Logger;
  #state: AiSessionState = { name: 'idle' };
  #ending = false;
  #settleWaiters: (() => void)[] = [];

  /** An idle session logging its transitions to `logger`. */
  protected constructor(logger: Logger) {
    super();
    this.#log = logger;
  }

  /** Current state. */
  get state(): AiSessionState {
    return this.#state;
  }

  /** True once closed or died. */
  get closed(): boolean {
    return this.#state.name === 'closed' || this.#state.name === 'died';
  }

  /** True from the moment close() or a death begins (before `closed` is), and ever after. */
  protected get ending(): boolean {
    return this.#ending;
  }

  /**
   * End the session (idempotent): the backend releases what it holds (the active response fails,
   * waiting requests resolve as not sent), then the state is `closed` and `close` is emitted.
   */
  close(): void {
    if (this.#ending) return;
    this.#ending = true;
    this.release('closed');
    this.#set({ name: 'closed' });
    this.emit('close');
  }

  /** What the backend lets go of as the session ends; runs once, before the ending state is set. */
  protected abstract release(end: SessionEnd, error?: AiSessionError): void;

  /** idle -> starting. @throws InvalidStateError from any other state (a session starts once). */
  protected beginStart(): void {
    if (this.#state.name !== 'idle') throw new InvalidStateError(`start() on a ${this.#state.name} AI session`);
    this.#set({ name: 'starting' });
  }

  /**
   * idle -> starting, then `open()` (connect and configure). When it fails the session ends without
   * a `died` event and this rejects with the AiSessionError; it also rejects when close() came first.
   */
  protected async startWith(open: () => Promise<void>): Promise<void> {
    this.beginStart();
    try {
      await open();
    } catch (err) {
      const e = toAiError(err, 'start_failed');
      this.failStart(e, e.aiCode ?? 'start_failed');
      throw e;
    }
    if (this.closed) throw new AiSessionError('AI session closed during start()', 'closed');
  }

  /** Move to `ready` or `reconnecting`. */
  protected setState(next: RunningSessionState): void {
    this.#set(next);
  }

  /** End the session without being asked to: release, `died` with `reason` (default: the error's code), then the `died` event. */
  protected die(error: AiSessionError, reason: string = error.aiCode ?? 'died'): void {
    if (this.#ending) return;
    this.#ending = true;
    this.release('died', error);
    this.#set({ name: 'died', reason, error });
    this.emit('died', error);
  }

  /** End a session whose start() failed: release and `died`, but no `died` event (start() rejects with the error). */
  protected failStart(error: AiSessionError, reason: string): void {
    if (this.#ending) return;
    this.#ending = true;
    this.release('start_failed', error);
    this.#set({ name: 'died', reason, error });
  }

  /** Resolves once the session is ready, closed or died (at once when it is). */
  protected settled(): Promise<void> {
    if (this.#isSettled(this.#state)) return Promise.resolve();
    return new Promise<void>((resolve) => this.#settleWaiters.push(resolve));
  }

  #isSettled(s: AiSessionState): boolean {
    return s.name === 'ready' || s.name === 'closed' || s.name === 'died';
  }

  #set(next: AiSessionState): void {
    const prev = this.#state;
    this.#state = next;
    if (this.#isSettled(next)) for (const w of this.#settleWaiters.splice(0)) w();
    this.#log.debug({ from: prev.name, to: next.name }, `AI session ${prev.name} -> ${next.name}`);
    this.emit('stateChange', next, prev);
  }
}

/** The outcome of a response that was never sent: refused, or dropped as its session ended or was lost. */
export function notSent(reason: string): ResponseOutcome {
  return { responseId: undefined, status: 'not_sent', reason, requested: true, error: { code: reason, message: `response not sent [reason:${reason}]` } };
}

/** Any error as an AiSessionError (kept when it is one; otherwise wrapped with `fallbackCode`). */
export function toAiError(err: unknown, fallbackCode: string): AiSessionError {
  if (err instanceof AiSessionError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new AiSessionError(message, fallbackCode, { cause: err });
}
