/**
 * Whether the AI backend can be reached, as the calls see it: a session that fails for good marks it
 * down; a session that starts marks it up. While it is down, a probe (a session opened and closed
 * at once, no audio) runs every `probeIntervalMs`, so the state comes back without a call to try.
 * A load balancer learns the state from our answer to its OPTIONS probes (503 while down).
 */
import type { AiBackend } from '../ai/AiBackend';
import type { Logger } from '../logging/logger';
import { TypedEmitter } from '../util/TypedEmitter';

export type BackendHealthEvents = {
  /** Reachability changed: `reason` is why it is down, undefined when it is up again. */
  change: [reason: string | undefined];
};

export class BackendHealth extends TypedEmitter<BackendHealthEvents> {
  #down: string | undefined;
  #timer: NodeJS.Timeout | undefined;
  #probing = false;
  #closed = false;

  constructor(
    readonly backend: AiBackend,
    readonly logger: Logger,
    readonly probeIntervalMs = 10_000,
  ) {
    super();
  }

  /** Why the backend is down, or undefined while it is reachable. */
  get down(): string | undefined {
    return this.#down;
  }

  /** A session started. */
  ok(): void {
    if (this.#down === undefined) return;
    this.#down = undefined;
    this.#stopProbing();
    this.logger.info('AI backend reachable again');
    this.emit('change', undefined);
  }

  /** A session failed for good with `code`. */
  failed(code: string): void {
    if (this.#closed || !this.backend.probe) return;
    const reason = `AI backend unreachable (${code})`;
    if (this.#down !== undefined) return;
    this.#down = reason;
    this.logger.warn({ code }, 'AI backend marked unreachable; probing it until it answers');
    this.emit('change', reason);
    this.#timer = setInterval(() => void this.#probe(), this.probeIntervalMs);
    this.#timer.unref();
  }

  close(): void {
    this.#closed = true;
    this.#stopProbing();
  }

  async #probe(): Promise<void> {
    if (this.#probing || this.#down === undefined || this.#closed) return;
    this.#probing = true;
    try {
      await this.backend.probe!(this.logger);
      if (!this.#closed) this.ok();
    } catch (err) {
      this.logger.debug({ err: (err as Error).message }, 'AI backend probe failed');
    } finally {
      this.#probing = false;
    }
  }

  #stopProbing(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
