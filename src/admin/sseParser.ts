/** An incremental parser for `text/event-stream` (WHATWG HTML, "Server-sent events", parsing rules). */

/** One dispatched event. */
export interface SseMessage {
  /** `event:` field, `message` when absent. */
  event: string;
  /** `data:` lines joined with `\n`. */
  data: string;
  /** Last `id:` seen (it persists across events, as the spec says). */
  id: string | undefined;
}

/** Feed decoded text in any chunking; get back the events completed by each chunk. */
export class SseParser {
  #buf = '';
  #event = '';
  #data: string[] = [];
  #hasData = false;
  #lastId: string | undefined;
  #first = true;
  /** Longest line kept (longer input is a protocol error from a peer we do not trust blindly). */
  readonly #maxLine: number;

  constructor(maxLineChars = 1024 * 1024) {
    this.#maxLine = maxLineChars;
  }

  /** `retry:` value last seen, ms. */
  retryMs: number | undefined;

  /**
   * Parse a chunk.
   * @throws RangeError when a single line exceeds the limit.
   */
  push(chunk: string): SseMessage[] {
    if (this.#first) {
      this.#first = false;
      if (chunk.charCodeAt(0) === 0xfeff) chunk = chunk.slice(1);
    }
    this.#buf += chunk;
    const out: SseMessage[] = [];
    let start = 0;
    for (;;) {
      const m = /\r\n|\r|\n/g;
      m.lastIndex = start;
      const hit = m.exec(this.#buf);
      if (!hit) break;
      // A lone CR at the very end may be the first half of CRLF: wait for more.
      if (hit[0] === '\r' && hit.index === this.#buf.length - 1) break;
      this.#line(this.#buf.slice(start, hit.index), out);
      start = hit.index + hit[0].length;
    }
    this.#buf = this.#buf.slice(start);
    if (this.#buf.length > this.#maxLine) throw new RangeError(`event-stream line too long [limit:${this.#maxLine}]`);
    return out;
  }

  #line(line: string, out: SseMessage[]): void {
    if (line === '') {
      if (this.#hasData) out.push({ event: this.#event || 'message', data: this.#data.join('\n'), id: this.#lastId });
      this.#event = '';
      this.#data = [];
      this.#hasData = false;
      return;
    }
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'event':
        this.#event = value;
        break;
      case 'data':
        this.#data.push(value);
        this.#hasData = true;
        break;
      case 'id':
        if (!value.includes('\0')) this.#lastId = value;
        break;
      case 'retry':
        if (/^\d+$/.test(value)) this.retryMs = Number(value);
        break;
      default:
        break;
    }
  }
}
