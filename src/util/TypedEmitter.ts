import { EventEmitter } from 'node:events';

/** Map of event name -> listener argument tuple. */
export type EventMap = { [event: string]: unknown[] };

/** Called when a listener throws; the default writes to stderr once per error. */
export type ListenerErrorHandler = (event: string, err: unknown) => void;

let onListenerError: ListenerErrorHandler = (event, err) => {
  process.stderr.write(`listener for '${event}' threw: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
};

/** Route errors thrown by event listeners (the logging module installs a pino-backed handler). */
export function setListenerErrorHandler(handler: ListenerErrorHandler): void {
  onListenerError = handler;
}

/**
 * An EventEmitter with a declared event map and safe emission: a throwing listener is reported
 * through the listener-error handler and cannot break the emitter's own state transition.
 */
export class TypedEmitter<E extends EventMap> {
  readonly #ee = new EventEmitter();

  constructor() {
    this.#ee.setMaxListeners(0);
  }

  /** Subscribe to an event. */
  on<K extends keyof E & string>(event: K, listener: (...args: E[K]) => void): this {
    this.#ee.on(event, listener as (...a: unknown[]) => void);
    return this;
  }

  /** Subscribe to the next occurrence of an event. */
  once<K extends keyof E & string>(event: K, listener: (...args: E[K]) => void): this {
    this.#ee.once(event, listener as (...a: unknown[]) => void);
    return this;
  }

  /** Unsubscribe. */
  off<K extends keyof E & string>(event: K, listener: (...args: E[K]) => void): this {
    this.#ee.off(event, listener as (...a: unknown[]) => void);
    return this;
  }

  /** Drop every listener (used by close()). */
  removeAllListeners(): this {
    this.#ee.removeAllListeners();
    return this;
  }

  /** Number of listeners for an event. */
  listenerCount<K extends keyof E & string>(event: K): number {
    return this.#ee.listenerCount(event);
  }

  /** Emit to every listener; a listener that throws is reported and the others still run. */
  protected emit<K extends keyof E & string>(event: K, ...args: E[K]): boolean {
    const listeners = this.#ee.rawListeners(event) as ((...a: unknown[]) => void)[];
    for (const l of listeners) {
      try {
        // rawListeners returns once-wrappers too; calling them removes them as Node does.
        l.apply(this, args);
      } catch (err) {
        onListenerError(event, err);
      }
    }
    return listeners.length > 0;
  }

  /** Resolve with the event's arguments the next time it fires (rejects after timeoutMs if given). */
  waitFor<K extends keyof E & string>(event: K, timeoutMs?: number): Promise<E[K]> {
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const listener = (...args: E[K]): void => {
        if (timer) clearTimeout(timer);
        resolve(args);
      };
      this.once(event, listener);
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => {
          this.off(event, listener);
          reject(new Error(`timed out after ${timeoutMs} ms waiting for '${event}'`));
        }, timeoutMs);
      }
    });
  }
}
