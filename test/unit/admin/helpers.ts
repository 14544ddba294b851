/** Test doubles and a tiny raw HTTP helper for the admin API tests. */
import http from 'node:http';
import type { AdminCalls, CallEvent, CallList, CallView, PlaceCallRequest, PlacedCall } from '../../../src/admin/types';

/** An in-memory AdminCalls: calls are views, events are pushed by the test with emit(). */
export class FakeCalls implements AdminCalls {
  readonly views = new Map<string, CallView>();
  readonly placed: PlaceCallRequest[] = [];
  readonly hungUp: string[] = [];
  readonly listeners = new Map<string, Set<(ev: CallEvent) => void>>();
  placeError: unknown;
  #next = 1;
  #unsubscribed: (() => void)[] = [];

  add(view: CallView): void {
    this.views.set(view.id, view);
  }

  list(): CallList {
    const all = [...this.views.values()];
    return { active: all.filter((v) => !v.endedAt), recent: all.filter((v) => v.endedAt) };
  }

  async get(id: string): Promise<CallView | undefined> {
    return this.views.get(id);
  }

  async place(req: PlaceCallRequest): Promise<PlacedCall> {
    if (this.placeError) throw this.placeError;
    this.placed.push(req);
    const id = `out-${this.#next++}`;
    this.add({ id, state: 'calling', direction: 'outbound', to: req.uri });
    return { id };
  }

  hangup(id: string): boolean {
    const v = this.views.get(id);
    if (!v || v.endedAt) return false;
    this.hungUp.push(id);
    return true;
  }

  subscribe(id: string, listener: (ev: CallEvent) => void): (() => void) | undefined {
    const v = this.views.get(id);
    if (!v || v.endedAt) return undefined;
    let set = this.listeners.get(id);
    if (!set) this.listeners.set(id, (set = new Set()));
    set.add(listener);
    return () => {
      set!.delete(listener);
      for (const wake of this.#unsubscribed.splice(0)) wake();
    };
  }

  emit(id: string, ev: CallEvent): void {
    for (const l of [...(this.listeners.get(id) ?? [])]) l(ev);
  }

  subscribers(id: string): number {
    return this.listeners.get(id)?.size ?? 0;
  }

  /** Resolves once nothing is subscribed to the call's events. */
  async noSubscribers(id: string): Promise<void> {
    while (this.subscribers(id) > 0) await new Promise<void>((wake) => this.#unsubscribed.push(wake));
  }
}

/** A raw response. */
export interface Raw {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  json: () => Record<string, unknown>;
}

/** Send one request with full control of headers and body. */
export function raw(
  base: string,
  method: string,
  path: string,
  opts: { headers?: Record<string, string>; body?: string | Buffer; chunked?: boolean } = {},
): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const req = http.request(base + path, { method, headers: opts.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json: () => JSON.parse(body) as Record<string, unknown> });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    if (opts.body !== undefined && opts.chunked) {
      const b = Buffer.from(opts.body);
      // Written in pieces without Content-Length, so the limit must be enforced while reading.
      for (let i = 0; i < b.length; i += 8192) req.write(b.subarray(i, i + 8192));
      req.end();
    } else {
      req.end(opts.body);
    }
  });
}

/** One SSE frame as read off the wire. */
export interface Frame {
  event: string | undefined;
  data: unknown;
  comment: string | undefined;
}

/** Read an event stream until it ends (or `stopAfter` frames), splitting it into frames by blank lines. */
export function readStream(
  base: string,
  path: string,
  opts: { headers?: Record<string, string>; onFrame?: (f: Frame, all: Frame[]) => void } = {},
): Promise<{ status: number; headers: http.IncomingHttpHeaders; frames: Frame[]; body: string }> {
  return new Promise((resolve, reject) => {
    const frames: Frame[] = [];
    const req = http.get(base + path, { headers: opts.headers, agent: false }, (res) => {
      let buf = '';
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        body += c;
        buf += c;
        let i: number;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const f: Frame = { event: undefined, data: undefined, comment: undefined };
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) f.comment = line.slice(1).trim();
            else if (line.startsWith('event: ')) f.event = line.slice(7);
            else if (line.startsWith('data: ')) f.data = JSON.parse(line.slice(6));
          }
          if (f.event === undefined && f.comment === undefined) continue; // retry: preamble
          frames.push(f);
          opts.onFrame?.(f, frames);
        }
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, frames, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

/**
 * Check a Prometheus text exposition: every line is a comment (`# HELP`, `# TYPE` or another `#`
 * line) or a sample `name{labels} value [timestamp]`, each sample's family was TYPEd before it, and
 * label values are properly escaped. Values follow Prometheus' own parser (Go's ParseFloat), which
 * takes NaN and Inf in any case (prom-client writes `Nan` for an event-loop mean not yet sampled). Returns the samples as `name{labels}` -> value.
 */
export function parseExposition(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  const typed = new Map<string, string>();
  const name = '[a-zA-Z_:][a-zA-Z0-9_:]*';
  const label = '[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\\\\n]|\\\\[\\\\"n])*"';
  const sample = new RegExp(`^(${name})(\\{(?:${label}(?:,${label})*,?)?\\})? (-?(?:[0-9]+(?:\\.[0-9]*)?(?:[eE][-+]?[0-9]+)?|\\.[0-9]+)|[Nn][Aa][Nn]|[+-]?[Ii][Nn][Ff])(?: -?[0-9]+)?$`);
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  for (const [i, line] of lines.entries()) {
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+)(?: (.*))?$/.exec(line);
      if (m && m[1] === 'TYPE') {
        if (!/^(counter|gauge|histogram|summary|untyped)$/.test(m[3] ?? '')) throw new Error(`line ${i + 1}: bad TYPE: ${line}`);
        typed.set(m[2], m[3]);
      }
      continue;
    }
    if (line === '') continue; // prom-client separates families with a blank line
    const m = sample.exec(line);
    if (!m) throw new Error(`line ${i + 1} is neither a comment nor a sample: ${JSON.stringify(line)}`);
    const family = m[1].replace(/_(bucket|sum|count|total|created)$/, '');
    if (!typed.has(m[1]) && !typed.has(family)) throw new Error(`line ${i + 1}: sample of an undeclared family: ${line}`);
    const v = m[3].toLowerCase();
    samples.set(m[1] + (m[2] ?? ''), v === 'nan' ? Number.NaN : v.endsWith('inf') ? (v.startsWith('-') ? -Infinity : Infinity) : Number(m[3]));
  }
  return samples;
}
