/**
 * One server-sent-events response (text/event-stream). Events are written at once while the socket
 * keeps up; when it does not, they wait in a bounded queue, and what overflows is dropped, counted,
 * and announced with a `dropped` event once the client catches up. A comment heartbeat keeps proxies
 * and the client's idle timer from closing a quiet stream.
 */
import type { ServerResponse } from 'node:http';

/** Options of {@link SseStream}. */
export interface SseStreamOptions {
  /** Comment heartbeat interval, ms (default 15000; 0: none). */
  heartbeatMs?: number;
  /** Events allowed to wait for a slow client (default 256). */
  maxQueue?: number;
  /** Reconnection delay suggested to the client, ms (default 3000). */
  retryMs?: number;
}

/** A server-sent-events response; see the module comment. */
export class SseStream {
  readonly #res: ServerResponse;
  readonly #maxQueue: number;
  readonly #queue: string[] = [];
  readonly #heartbeat: NodeJS.Timeout | undefined;
  readonly #onClose: (() => void)[] = [];
  #nextId = 1;
  #dropped = 0;
  #droppedUnannounced = 0;
  #closed = false;

  /** Write the SSE headers and start the heartbeat. */
  constructor(res: ServerResponse, opts: SseStreamOptions = {}) {
    this.#res = res;
    this.#maxQueue = Math.max(1, opts.maxQueue ?? 256);
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-cache, no-transform',
      Connection: 'keep-alive',
      // Tells nginx-style proxies not to buffer the stream.
      'X-Accel-Buffering': 'no',
    });
    res.write(`retry: ${opts.retryMs ?? 3000}\n\n`);
    const hb = opts.heartbeatMs ?? 15_000;
    if (hb > 0) {
      this.#heartbeat = setInterval(() => this.#write(': heartbeat\n\n', true), hb);
      this.#heartbeat.unref();
    }
    res.on('drain', () => this.#drain());
    res.on('close', () => this.#teardown());
  }

  /** True once the stream ended (by end(), the client, or an error). */
  get closed(): boolean {
    return this.#closed;
  }

  /** Events dropped because the client was too slow. */
  get dropped(): number {
    return this.#dropped;
  }

  /** Events waiting for the socket. */
  get queued(): number {
    return this.#queue.length;
  }

  /** Run `fn` once when the stream closes for any reason. */
  onClose(fn: () => void): void {
    if (this.#closed) fn();
    else this.#onClose.push(fn);
  }

  /** Send one event with JSON data. */
  send(event: string, data: unknown): void {
    if (this.#closed) return;
    const json = JSON.stringify(data) ?? 'null';
    // JSON.stringify never emits raw newlines, so the data fits on one `data:` line.
    this.#write(`id: ${this.#nextId++}\nevent: ${event}\ndata: ${json}\n\n`, false);
  }

  /** Send `event` and end the stream once everything queued is written. */
  sendAndEnd(event: string, data: unknown): void {
    if (this.#closed) return;
    const json = JSON.stringify(data) ?? 'null';
    // The last event is never dropped: it goes after the queue, whatever its length.
    if (this.#droppedUnannounced > 0) {
      this.#queue.push(`event: dropped\ndata: ${JSON.stringify({ count: this.#droppedUnannounced })}\n\n`);
      this.#droppedUnannounced = 0;
    }
    this.#queue.push(`id: ${this.#nextId++}\nevent: ${event}\ndata: ${json}\n\n`);
    this.#drain();
    this.end();
  }

  /** End the stream (queued events are flushed first when the socket allows). Idempotent. */
  end(): void {
    if (this.#closed) return;
    if (this.#heartbeat) clearInterval(this.#heartbeat);
    if (this.#queue.length > 0 && !this.#res.destroyed) {
      this.#res.end(this.#queue.splice(0).join(''));
    } else {
      this.#res.end();
    }
    this.#teardown();
  }

  #write(chunk: string, droppable: boolean): void {
    if (this.#closed || this.#res.destroyed) return;
    if (this.#queue.length === 0 && !this.#res.writableNeedDrain) {
      this.#res.write(chunk);
      return;
    }
    if (droppable) return; // a heartbeat behind a backlog is pointless
    if (this.#queue.length >= this.#maxQueue) {
      this.#queue.shift();
      this.#dropped += 1;
      this.#droppedUnannounced += 1;
    }
    this.#queue.push(chunk);
  }

  #drain(): void {
    while (this.#queue.length > 0 && !this.#res.writableNeedDrain && !this.#res.destroyed) {
      this.#res.write(this.#queue.shift() as string);
    }
    if (this.#queue.length === 0 && this.#droppedUnannounced > 0 && !this.#res.destroyed) {
      const n = this.#droppedUnannounced;
      this.#droppedUnannounced = 0;
      this.#res.write(`event: dropped\ndata: ${JSON.stringify({ count: n })}\n\n`);
    }
  }

  #teardown(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#heartbeat) clearInterval(this.#heartbeat);
    this.#queue.length = 0;
    for (const fn of this.#onClose.splice(0)) {
      try {
        fn();
      } catch {
        // A close hook failing must not stop the others.
      }
    }
  }
}
