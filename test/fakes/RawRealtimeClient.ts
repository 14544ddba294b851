/**
 * A bare `ws` client for exercising the fake Realtime server in tests and benchmarks: it records
 * every server event and lets a test wait for one by type or predicate. Deliberately protocol-naive
 * (no validation, no retries) so tests see exactly what the server sent.
 */
import WebSocket from 'ws';
import { encodeWire, type WireFormat } from './audio';

/** A server event as received. */
export type ServerEvent = Record<string, unknown> & { type: string };

/** Handshake refusal seen by the client: HTTP status and parsed JSON body. */
export interface HandshakeRefusal {
  status: number;
  body: unknown;
}

/** Minimal Realtime WebSocket client for tests. */
export class RawRealtimeClient {
  /** Every server event received, in order (bounded by maxEvents; oldest evicted and counted). */
  readonly events: ServerEvent[] = [];
  /** Events evicted by the cap. */
  droppedEvents = 0;
  /** Close code and reason once the socket closed. */
  closeInfo: { code: number; reason: string } | null = null;

  private readonly ws: WebSocket;
  private readonly listeners = new Set<() => void>();
  private base = 0;
  private readonly maxEvents: number;
  private readonly closedPromise: Promise<{ code: number; reason: string }>;

  private constructor(ws: WebSocket, maxEvents: number) {
    this.ws = ws;
    this.maxEvents = maxEvents;
    ws.on('message', (data) => {
      const ev = JSON.parse(String(data)) as ServerEvent;
      this.events.push(ev);
      if (this.events.length > this.maxEvents) {
        const n = Math.max(1, Math.ceil(this.maxEvents / 10));
        this.events.splice(0, n);
        this.base += n;
        this.droppedEvents += n;
      }
      for (const l of [...this.listeners]) l();
    });
    this.closedPromise = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString() };
        for (const l of [...this.listeners]) l();
        resolve(this.closeInfo);
      });
    });
    ws.on('error', () => {
      // Surfaced through 'close' (abrupt drops end with 1006).
    });
  }

  /** Connect; rejects with a HandshakeRefusal-carrying Error when the server answers with HTTP. */
  static connect(url: string, headers: Record<string, string>, maxEvents = 50_000): Promise<RawRealtimeClient> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { headers, perMessageDeflate: false });
      const client = new RawRealtimeClient(ws, maxEvents);
      ws.once('open', () => resolve(client));
      ws.once('unexpected-response', (_req, res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString('utf8')));
        res.on('end', () => {
          let parsed: unknown = body;
          try {
            parsed = JSON.parse(body);
          } catch {
            // keep raw text
          }
          const err = new Error(`handshake refused [status:${res.statusCode}]`) as Error & { refusal: HandshakeRefusal };
          err.refusal = { status: res.statusCode ?? 0, body: parsed };
          ws.terminate();
          reject(err);
        });
      });
      ws.once('error', (err) => reject(err));
    });
  }

  /** Absolute index the next received event will have; pass it to waitFor to skip older events. */
  mark(): number {
    return this.base + this.events.length;
  }

  /** Send a client event. */
  send(event: Record<string, unknown>): void {
    this.ws.send(JSON.stringify(event));
  }

  /** Send raw text (for malformed-input tests). */
  sendRaw(text: string): void {
    this.ws.send(text);
  }

  /** Append PCM (already at the format's native rate) as one input_audio_buffer.append. */
  append(samples: Int16Array, format: WireFormat = 'audio/pcm'): void {
    this.send({ type: 'input_audio_buffer.append', audio: encodeWire(samples, format) });
  }

  /** Append PCM in frames of `frameSamples` (what a telephony bridge does every 20 ms). */
  appendFramed(samples: Int16Array, frameSamples: number, format: WireFormat = 'audio/pcm'): void {
    for (let i = 0; i < samples.length; i += frameSamples) this.append(samples.subarray(i, i + frameSamples), format);
  }

  /** Events of a type received so far. */
  all(type: string): ServerEvent[] {
    return this.events.filter((e) => e.type === type);
  }

  /**
   * Resolve with the first event at absolute index >= `from` (default 0) matching `matcher`,
   * waiting for it if needed. Rejects on timeout or close.
   */
  waitFor(matcher: string | ((e: ServerEvent) => boolean), timeoutMs = 5000, from = 0): Promise<ServerEvent> {
    const test = typeof matcher === 'string' ? (e: ServerEvent) => e.type === matcher : matcher;
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        for (let i = Math.max(0, from - this.base); i < this.events.length; i++) {
          if (test(this.events[i]!)) {
            done();
            resolve(this.events[i]!);
            return true;
          }
        }
        if (this.closeInfo) {
          done();
          reject(new Error(`waitFor failed: socket closed [matcher:${String(matcher)}, code:${this.closeInfo.code}]`));
          return true;
        }
        return false;
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`waitFor timed out [matcher:${String(matcher)}, timeoutMs:${timeoutMs}]`));
      }, timeoutMs);
      const listener = (): void => {
        check();
      };
      const done = (): void => {
        clearTimeout(timer);
        this.listeners.delete(listener);
      };
      this.listeners.add(listener);
      check();
    });
  }

  /** Resolves when the socket has closed. */
  closed(): Promise<{ code: number; reason: string }> {
    return this.closedPromise;
  }

  /** Close the socket (idempotent) and wait for the close to complete. */
  async close(): Promise<void> {
    if (!this.closeInfo) this.ws.close(1000);
    await this.closedPromise;
  }
}
