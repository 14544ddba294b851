/**
 * A tiny raw SIP-over-UDP client for tests, on 127.0.0.1 (node:dgram). It sends bytes exactly as
 * given, so malformed packets reach the peer untouched, builds requests from parts (ordered headers
 * or raw header text), records every datagram that arrives at its socket (parsed just enough: start
 * line, headers with compact forms, body) and waits for responses and requests with timeouts.
 *
 * It can also play a minimal UAC dialog: INVITE with a PCMU offer (on an RTP port nobody reads),
 * ACK of the final response (for a 2xx: to the Contact, with the To-tag and the Record-Route set),
 * BYE, and answers of any status to requests the peer sends in the dialog. Responses it sent are
 * re-sent for retransmissions of the same request, and the ACK for retransmitted 2xx, as RFC 3261
 * 17.2.2 and 13.2.2.4 ask.
 */
import * as crypto from 'node:crypto';
import * as dgram from 'node:dgram';
import { LOOPBACK, freePort, releasePort } from './ports';
import { PeerError, delay } from './proc';

/** One header as sent or received: name exactly as written, value without surrounding blanks. */
export type SipHeader = readonly [name: string, value: string];

/** Headers for a request: an ordered list, or raw header text (each line ending in CRLF) sent verbatim. */
export type HeaderInput = readonly SipHeader[] | string;

/** A SIP address as host and port. */
export interface SipHostPort {
  host: string;
  port: number;
}

// RFC 3261 7.3.3 and the later RFCs that gave compact forms (3265, 3515, 3840, 3841, 3892, 4028, 4474).
const COMPACT: Record<string, string> = {
  a: 'accept-contact',
  b: 'referred-by',
  c: 'content-type',
  d: 'request-disposition',
  e: 'content-encoding',
  f: 'from',
  i: 'call-id',
  j: 'reject-contact',
  k: 'supported',
  l: 'content-length',
  m: 'contact',
  n: 'identity-info',
  o: 'event',
  r: 'refer-to',
  s: 'subject',
  t: 'to',
  u: 'allow-events',
  v: 'via',
  x: 'session-expires',
  y: 'identity',
};

/** The full lower-case name of a header name (compact forms expanded). */
export function canonicalHeaderName(name: string): string {
  const n = name.trim().toLowerCase();
  return COMPACT[n] ?? n;
}

/** A parsed SIP message: start line, headers (folded lines joined) and body. */
export class SipMessage {
  /** The bytes as received or built. */
  readonly raw: Buffer;
  /** The first line. */
  readonly startLine: string;
  /** Request method (requests only). */
  readonly method: string | undefined;
  /** Request-URI (requests only). */
  readonly requestUri: string | undefined;
  /** Status code (responses only). */
  readonly status: number | undefined;
  /** Reason phrase (responses only). */
  readonly reason: string | undefined;
  /** Headers in order. */
  readonly headers: readonly SipHeader[];
  /** Body (Content-Length bytes when it is given and fits, else everything after the blank line). */
  readonly body: Buffer;

  /** Use {@link parseSipMessage}. */
  constructor(init: {
    raw: Buffer;
    startLine: string;
    method?: string;
    requestUri?: string;
    status?: number;
    reason?: string;
    headers: SipHeader[];
    body: Buffer;
  }) {
    this.raw = init.raw;
    this.startLine = init.startLine;
    this.method = init.method;
    this.requestUri = init.requestUri;
    this.status = init.status;
    this.reason = init.reason;
    this.headers = init.headers;
    this.body = init.body;
  }

  /** True for a request. */
  get isRequest(): boolean {
    return this.method !== undefined;
  }

  /** Value of the first header called `name` (case-insensitive, compact forms included). */
  get(name: string): string | undefined {
    const want = canonicalHeaderName(name);
    return this.headers.find(([n]) => canonicalHeaderName(n) === want)?.[1];
  }

  /** Values of every header called `name`, in order (one entry per header line). */
  getAll(name: string): string[] {
    const want = canonicalHeaderName(name);
    return this.headers.filter(([n]) => canonicalHeaderName(n) === want).map(([, v]) => v);
  }

  /** Whether a header called `name` is present. */
  has(name: string): boolean {
    return this.get(name) !== undefined;
  }

  /** Call-ID. */
  get callId(): string | undefined {
    return this.get('call-id');
  }

  /** CSeq number and method. */
  get cseq(): { seq: number; method: string } | undefined {
    const m = /^\s*(\d+)\s+(\S+)/.exec(this.get('cseq') ?? '');
    return m ? { seq: Number(m[1]), method: m[2].toUpperCase() } : undefined;
  }

  /** The branch parameter of the top Via. */
  get branch(): string | undefined {
    return /;\s*branch=([^;,\s]+)/i.exec(this.get('via') ?? '')?.[1];
  }

  /** The tag parameter of To. */
  get toTag(): string | undefined {
    return tagOf(this.get('to'));
  }

  /** The tag parameter of From. */
  get fromTag(): string | undefined {
    return tagOf(this.get('from'));
  }

  /** The body as UTF-8 text. */
  get bodyText(): string {
    return this.body.toString('utf8');
  }

  /** One line for messages: start line, CSeq and Call-ID. */
  summary(): string {
    return `${this.startLine} [CSeq:${this.get('cseq') ?? '-'}, Call-ID:${this.callId ?? '-'}]`;
  }
}

/** A message that arrived at the client's socket. */
export interface ReceivedSip {
  /** Arrival order at this client, from 0. */
  seq: number;
  /** Milliseconds since the client opened. */
  atMs: number;
  /** Sender. */
  from: SipHostPort;
  /** The parsed message. */
  msg: SipMessage;
}

function tagOf(v: string | undefined): string | undefined {
  return v === undefined ? undefined : /;\s*tag=([^;,\s>]+)/i.exec(v.replace(/<[^>]*>/, '<>'))?.[1];
}

/**
 * Parse a datagram as a SIP message; undefined when the first line is neither a request line nor a
 * status line. Header names keep their spelling; folded lines are joined with one space.
 */
export function parseSipMessage(raw: Buffer): SipMessage | undefined {
  const text = raw.toString('latin1');
  let sep = text.indexOf('\r\n\r\n');
  let sepLen = 4;
  if (sep < 0) {
    sep = text.indexOf('\n\n');
    sepLen = 2;
  }
  const head = sep < 0 ? text : text.slice(0, sep);
  const lines = head.split(/\r?\n/);
  const startLine = lines.shift() ?? '';
  const init: ConstructorParameters<typeof SipMessage>[0] = { raw, startLine, headers: [], body: Buffer.alloc(0) };
  const status = /^SIP\/2\.0\s+(\d{3})\s*(.*)$/.exec(startLine);
  const request = /^([A-Za-z!%*._+`'~-]+)\s+(\S+)\s+SIP\/2\.0$/.exec(startLine);
  if (status) {
    init.status = Number(status[1]);
    init.reason = status[2];
  } else if (request) {
    init.method = request[1].toUpperCase();
    init.requestUri = request[2];
  } else {
    return undefined;
  }
  const headers: [string, string][] = [];
  for (const line of lines) {
    if (/^[ \t]/.test(line)) {
      const more = line.trim();
      const last = headers[headers.length - 1];
      if (last && more) last[1] = last[1] ? `${last[1]} ${more}` : more;
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    headers.push([line.slice(0, colon).trim(), line.slice(colon + 1).trim()]);
  }
  init.headers = headers;
  if (sep >= 0) {
    const bodyStart = Buffer.byteLength(text.slice(0, sep + sepLen), 'latin1');
    let body = raw.subarray(bodyStart);
    const lenHeader = headers.find(([n]) => canonicalHeaderName(n) === 'content-length')?.[1];
    const len = lenHeader !== undefined && /^\d+$/.test(lenHeader) ? Number(lenHeader) : undefined;
    if (len !== undefined && len <= body.length) body = body.subarray(0, len);
    init.body = Buffer.from(body);
  }
  return new SipMessage(init);
}

/** Parts of a request for {@link buildRequest}. */
export interface RequestParts {
  /** Method, as written on the request line. */
  method: string;
  /** Request-URI. */
  uri: string;
  /** Headers in order, or raw header text sent verbatim (each line ending in CRLF). */
  headers: HeaderInput;
  body?: string | Buffer;
  /** Append `Content-Length` (the body's length) when the headers carry none (default true). */
  contentLength?: boolean;
}

/** Build a request's bytes from parts: request line, headers, blank line, body. Nothing is checked. */
export function buildRequest(parts: RequestParts): Buffer {
  const body = typeof parts.body === 'string' ? Buffer.from(parts.body, 'utf8') : (parts.body ?? Buffer.alloc(0));
  let head = `${parts.method} ${parts.uri} SIP/2.0\r\n`;
  let hasLength: boolean;
  if (typeof parts.headers === 'string') {
    head += parts.headers;
    hasLength = /^(content-length|l)[ \t]*:/im.test(parts.headers);
  } else {
    head += parts.headers.map(([n, v]) => `${n}: ${v}\r\n`).join('');
    hasLength = parts.headers.some(([n]) => canonicalHeaderName(n) === 'content-length');
  }
  if (parts.contentLength !== false && !hasLength) head += `Content-Length: ${body.length}\r\n`;
  return Buffer.concat([Buffer.from(`${head}\r\n`, 'latin1'), body]);
}

/** Build a response's bytes to `req`: its Vias, From, To (tag added when `toTag` is given and To has none), Call-ID, CSeq. */
export function buildResponse(
  req: SipMessage,
  status: number,
  reason: string,
  opts: { headers?: readonly SipHeader[]; body?: string | Buffer; toTag?: string } = {},
): Buffer {
  const body = typeof opts.body === 'string' ? Buffer.from(opts.body, 'utf8') : (opts.body ?? Buffer.alloc(0));
  const out: SipHeader[] = [];
  for (const v of req.getAll('via')) out.push(['Via', v]);
  out.push(['From', req.get('from') ?? '']);
  let to = req.get('to') ?? '';
  if (opts.toTag && tagOf(to) === undefined) to = `${to};tag=${opts.toTag}`;
  out.push(['To', to]);
  out.push(['Call-ID', req.callId ?? '']);
  out.push(['CSeq', req.get('cseq') ?? '']);
  out.push(...(opts.headers ?? []));
  out.push(['Content-Length', String(body.length)]);
  const head = `SIP/2.0 ${status} ${reason}\r\n${out.map(([n, v]) => `${n}: ${v}\r\n`).join('')}\r\n`;
  return Buffer.concat([Buffer.from(head, 'latin1'), body]);
}

/** Host and port of a SIP URI (`<sip:user@host:port;params>`, angle brackets optional; port default 5060). */
export function uriHostPort(uri: string): SipHostPort {
  const inner = /<([^>]*)>/.exec(uri)?.[1] ?? uri.trim();
  const m = /^sips?:(?:[^@]*@)?(\[[^\]]+\]|[^:;?>]+)(?::(\d+))?/i.exec(inner);
  if (!m) throw new TypeError(`not a SIP URI [uri:${uri}]`);
  return { host: m[1].replace(/^\[|\]$/g, ''), port: m[2] ? Number(m[2]) : 5060 };
}

/** The URI inside a name-addr (`"x" <sip:a@b>;tag=1` gives `sip:a@b`), or the value itself. */
export function addrSpec(v: string): string {
  return /<([^>]*)>/.exec(v)?.[1] ?? v.split(';')[0].trim();
}

/** Split a comma-separated header value (Record-Route, Route) at commas outside <> and quotes. */
export function splitHeaderList(v: string): string[] {
  const out: string[] = [];
  let cur = '';
  let angle = false;
  let quote = false;
  for (const ch of v) {
    if (ch === '"' && !angle) quote = !quote;
    else if (ch === '<' && !quote) angle = true;
    else if (ch === '>' && !quote) angle = false;
    if (ch === ',' && !angle && !quote) {
      if (cur.trim()) out.push(cur.trim());
      cur = '';
    } else cur += ch;
  }
  if (cur.trim()) out.push(cur.trim());
  return out;
}

/** A random token (tags, branches, Call-IDs). */
export function sipToken(bytes = 8): string {
  return crypto.randomBytes(bytes).toString('hex');
}

/** A PCMU (payload type 0) SDP offer on `rtpPort` (nothing needs to listen there). */
/** Where an SDP answer wants the audio: its `c=` address and `m=audio` port (throws when it has neither). */
export function sdpAudioAddress(sdp: string): { host: string; port: number } {
  const m = /^m=audio (\d+) /m.exec(sdp);
  const c = /^c=IN IP4 (\S+)/m.exec(sdp);
  if (!m || !c) throw new PeerError(`no audio address in the SDP [sdp:${JSON.stringify(sdp.slice(0, 200))}]`);
  return { host: c[1]!, port: Number(m[1]) };
}

export function pcmuOffer(rtpPort: number, host = LOOPBACK): string {
  const id = Math.floor(Math.random() * 1e9);
  return [
    'v=0',
    `o=rawsip ${id} ${id} IN IP4 ${host}`,
    's=rawsip',
    `c=IN IP4 ${host}`,
    't=0 0',
    `m=audio ${rtpPort} RTP/AVP 0 101`,
    'a=rtpmap:0 PCMU/8000',
    'a=rtpmap:101 telephone-event/8000',
    'a=fmtp:101 0-16',
    'a=ptime:20',
    'a=sendrecv',
    '',
  ].join('\r\n');
}

/** What to wait for in {@link RawSipClient.waitForResponse}. */
export interface ResponseFilter {
  /** Call-ID. */
  callId?: string;
  /** CSeq number. */
  cseq?: number;
  /** CSeq method. */
  method?: string;
  /** Only final responses (>= 200) (default true). */
  final?: boolean;
  /** Only this status code. */
  status?: number;
}

/** An out-of-dialog request for {@link RawSipClient.request}: the usual headers are filled in. */
export interface OutOfDialogRequest {
  method: string;
  /** Where to send it. */
  target: SipHostPort;
  /** Request-URI (default `sip:agent@HOST:PORT` of the target). */
  uri?: string;
  /** To URI (default the Request-URI). */
  toUri?: string;
  /** From user (default `rawsip`). */
  fromUser?: string;
  /** Call-ID (default a random one). */
  callId?: string;
  /** From tag (default a random one). */
  fromTag?: string;
  /** CSeq number (default 1). */
  cseq?: number;
  /** Headers after the generated ones (Via, Max-Forwards, From, To, Call-ID, CSeq, Contact). */
  headers?: readonly SipHeader[];
  /** Raw header text (lines ending in CRLF) after those, sent verbatim. */
  rawHeaders?: string;
  /** Body (none by default). */
  body?: string | Buffer;
  /** Content-Type when there is a body. */
  contentType?: string;
  /** Leave out the generated Contact. */
  noContact?: boolean;
}

/** A request the client sent. */
export interface SentRequest {
  callId: string;
  cseq: number;
  method: string;
  /** Branch of its Via. */
  branch: string;
  fromTag: string;
  /** The datagram as sent. */
  bytes: Buffer;
  /** Where it went. */
  target: SipHostPort;
}

/** Options of {@link RawSipClient.invite}. */
export interface InviteOptions extends Omit<OutOfDialogRequest, 'method' | 'body' | 'contentType'> {
  /** Body (default a PCMU offer on a made-up RTP port). */
  body?: string | Buffer;
  /** Content-Type (default application/sdp). */
  contentType?: string;
  /** Time allowed for a final response (default 15 000 ms). */
  timeoutMs?: number;
}

interface Listener {
  (r: ReceivedSip): void;
}

interface Waiter {
  pred: (r: ReceivedSip) => boolean;
  from: number;
  resolve: (r: ReceivedSip) => void;
  reject: (e: Error) => void;
}

/** Cap on retained messages; a test never needs more, and a flood must not grow memory. */
const MAX_RECEIVED = 10_000;

/** A UDP SIP client on 127.0.0.1 that records every message reaching its socket. */
export class RawSipClient {
  /** Local port. */
  readonly port: number;
  /** Local address. */
  readonly host: string;
  readonly #sock: dgram.Socket;
  readonly #opened = Date.now();
  readonly #received: ReceivedSip[] = [];
  readonly #waiters = new Set<Waiter>();
  readonly #listeners = new Set<Listener>();
  readonly #answered = new Map<string, { bytes: Buffer; to: SipHostPort }>();
  #seq = 0;
  #unparsed = 0;
  #closed = false;
  readonly #ownPort: boolean;

  private constructor(sock: dgram.Socket, ownPort: boolean) {
    this.#sock = sock;
    this.#ownPort = ownPort;
    this.port = sock.address().port;
    this.host = sock.address().address;
    sock.on('message', (buf, rinfo) => this.#onMessage(buf, { host: rinfo.address, port: rinfo.port }));
    sock.on('error', () => undefined);
  }

  /**
   * Bind a client on 127.0.0.1 (or another loopback address `host`, to be a different source),
   * on `port` or on a free one reserved through ports.ts (released at close).
   */
  static async open(port?: number, host: string = LOOPBACK): Promise<RawSipClient> {
    const p = port ?? (await freePort('udp'));
    try {
      return await new Promise<RawSipClient>((resolve, reject) => {
        const sock = dgram.createSocket('udp4');
        sock.once('error', reject);
        sock.bind(p, host, () => {
          sock.off('error', reject);
          resolve(new RawSipClient(sock, port === undefined));
        });
      });
    } catch (err) {
      if (port === undefined) releasePort(p);
      throw new PeerError(`rawsip: cannot bind ${host}:${p}`, { cause: err });
    }
  }

  /** True once closed. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Sequence number the next received message will get: pass as `fromSeq` to look only at later ones. */
  get mark(): number {
    return this.#seq;
  }

  /** Datagrams received that did not parse as SIP. */
  get unparsed(): number {
    return this.#unparsed;
  }

  /** `<sip:USER@127.0.0.1:PORT>` of this client. */
  contact(user = 'rawsip'): string {
    return `<sip:${user}@${this.host}:${this.port}>`;
  }

  /** Send bytes exactly as given. */
  sendRaw(data: Buffer | string, to: SipHostPort): Promise<void> {
    if (this.#closed) return Promise.reject(new PeerError(`rawsip: send after close [port:${this.port}]`));
    const buf = typeof data === 'string' ? Buffer.from(data, 'latin1') : data;
    return new Promise((resolve, reject) => {
      this.#sock.send(buf, to.port, to.host, (err) => (err ? reject(err) : resolve()));
    });
  }

  /** Every retained message from `fromSeq` on. */
  received(fromSeq = 0): ReceivedSip[] {
    return this.#received.filter((r) => r.seq >= fromSeq);
  }

  /** Retained requests from `fromSeq` on. */
  requests(fromSeq = 0): ReceivedSip[] {
    return this.received(fromSeq).filter((r) => r.msg.isRequest);
  }

  /** Retained responses from `fromSeq` on. */
  responses(fromSeq = 0): ReceivedSip[] {
    return this.received(fromSeq).filter((r) => !r.msg.isRequest);
  }

  /** Resolve with the first message (from `fromSeq`) matching `pred`; rejects with what arrived after `timeoutMs`. */
  waitFor(pred: (r: ReceivedSip) => boolean, timeoutMs: number, what: string, fromSeq = 0): Promise<ReceivedSip> {
    const hit = this.#received.find((r) => r.seq >= fromSeq && pred(r));
    if (hit) return Promise.resolve(hit);
    if (this.#closed) return Promise.reject(new PeerError(`rawsip closed while waiting for ${what}`));
    return new Promise((resolve, reject) => {
      const w: Waiter = {
        pred,
        from: fromSeq,
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(w);
        const got = this.received(fromSeq).map((r) => `  ${r.msg.summary()}`);
        reject(new PeerError(`rawsip: no ${what} within ${timeoutMs} ms [port:${this.port}, received:${got.length}]\n${got.slice(-10).join('\n')}`));
      }, timeoutMs);
      this.#waiters.add(w);
    });
  }

  /** Wait for a response matching `f` (final only unless `f.final` is false). */
  async waitForResponse(f: ResponseFilter, timeoutMs: number, fromSeq = 0): Promise<SipMessage> {
    const r = await this.waitFor((x) => matchesResponse(x.msg, f), timeoutMs, `response ${JSON.stringify(f)}`, fromSeq);
    return r.msg;
  }

  /** Wait for a request of `method` (and `callId`, when given) from the peer. */
  waitForRequest(method: string, timeoutMs: number, opts: { callId?: string; fromSeq?: number } = {}): Promise<ReceivedSip> {
    const m = method.toUpperCase();
    return this.waitFor(
      (x) => x.msg.method === m && (opts.callId === undefined || x.msg.callId === opts.callId),
      timeoutMs,
      `${m} request${opts.callId ? ` [Call-ID:${opts.callId}]` : ''}`,
      opts.fromSeq ?? 0,
    );
  }

  /** Build an out-of-dialog request with the usual headers (nothing is sent). */
  buildOutOfDialog(r: OutOfDialogRequest): SentRequest {
    const method = r.method.toUpperCase();
    const uri = r.uri ?? `sip:agent@${r.target.host}:${r.target.port}`;
    const callId = r.callId ?? `${sipToken()}@${this.host}`;
    const fromTag = r.fromTag ?? sipToken(4);
    const cseq = r.cseq ?? 1;
    const branch = `z9hG4bK${sipToken()}`;
    const headers: SipHeader[] = [
      ['Via', `SIP/2.0/UDP ${this.host}:${this.port};branch=${branch};rport`],
      ['Max-Forwards', '70'],
      ['From', `<sip:${r.fromUser ?? 'rawsip'}@${this.host}:${this.port}>;tag=${fromTag}`],
      ['To', `<${r.toUri ?? uri}>`],
      ['Call-ID', callId],
      ['CSeq', `${cseq} ${method}`],
    ];
    if (!r.noContact) headers.push(['Contact', this.contact(r.fromUser)]);
    headers.push(...(r.headers ?? []));
    if (r.body !== undefined && r.contentType) headers.push(['Content-Type', r.contentType]);
    let text = headers.map(([n, v]) => `${n}: ${v}\r\n`).join('');
    if (r.rawHeaders) text += r.rawHeaders;
    const bytes = buildRequest({ method, uri, headers: text, body: r.body });
    return { callId, cseq, method, branch, fromTag, bytes, target: r.target };
  }

  /** Build and send an out-of-dialog request. */
  async request(r: OutOfDialogRequest): Promise<SentRequest> {
    const sent = this.buildOutOfDialog(r);
    await this.sendRaw(sent.bytes, sent.target);
    return sent;
  }

  /**
   * Send a non-INVITE request and resolve with its final response; the same bytes are re-sent every
   * 500 ms until any response arrives (RFC 3261 17.1.2, Timer E, simplified).
   */
  async transact(r: OutOfDialogRequest, timeoutMs = 5_000): Promise<SipMessage> {
    return this.#awaitFinal(this.buildOutOfDialog(r), timeoutMs, this.mark);
  }

  /** Whether {@link respond} already answered this request (or an earlier copy of it). */
  hasAnswered(req: SipMessage): boolean {
    return this.#answered.has(requestKey(req));
  }

  /** Answer a received request (and its retransmissions, automatically) with any status. */
  async respond(req: ReceivedSip, status: number, reason: string, opts: { headers?: readonly SipHeader[]; body?: string | Buffer; toTag?: string } = {}): Promise<void> {
    const bytes = buildResponse(req.msg, status, reason, opts);
    this.#answered.set(requestKey(req.msg), { bytes, to: req.from });
    await this.sendRaw(bytes, req.from);
  }

  /**
   * Start a call: send an INVITE (a PCMU offer unless a body is given) and resolve with the dialog
   * once a final response arrived. Every final response is ACKed (a 2xx end to end, to its Contact).
   */
  async invite(opts: InviteOptions): Promise<UacDialog> {
    const from = this.mark;
    const sent = this.buildOutOfDialog({
      ...opts,
      method: 'INVITE',
      body: opts.body ?? pcmuOffer(40_000 + 2 * Math.floor(Math.random() * 1000)),
      contentType: opts.contentType ?? 'application/sdp',
    });
    const dialog = new UacDialog(this, sent);
    const final = await this.#awaitFinal(sent, opts.timeoutMs ?? 15_000, from);
    await dialog.onFinal(final);
    return dialog;
  }

  /** Add a listener for every received message; returns its removal. */
  onMessage(fn: (r: ReceivedSip) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /** Close the socket; idempotent. Pending waits reject at once. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#listeners.clear();
    for (const w of this.#waiters) w.reject(new PeerError(`rawsip closed while waiting [port:${this.port}]`));
    this.#waiters.clear();
    this.#sock.close();
    if (this.#ownPort) releasePort(this.port);
  }

  /**
   * Send request bytes and resolve with the final response matching `f`; the bytes are re-sent
   * every 500 ms until any response arrives (RFC 3261 17.1.1.2 / 17.1.2.2 Timers A and E, simplified).
   */
  async sendAndAwaitFinal(bytes: Buffer, to: SipHostPort, f: ResponseFilter, timeoutMs: number, fromSeq = this.mark): Promise<SipMessage> {
    const any: ResponseFilter = { ...f, final: false, status: undefined };
    const deadline = Date.now() + timeoutMs;
    let heard = false;
    const first = this.waitFor((x) => matchesResponse(x.msg, any), timeoutMs, `response to ${f.method ?? 'request'}`, fromSeq).then(
      () => {
        heard = true;
      },
      () => undefined,
    );
    await this.sendRaw(bytes, to);
    while (!heard && Date.now() < deadline - 500 && !this.#closed) {
      await Promise.race([first, delay(500)]);
      if (!heard && !this.#closed) await this.sendRaw(bytes, to);
    }
    return this.waitForResponse({ ...f, final: true }, Math.max(1, deadline - Date.now()), fromSeq);
  }

  #awaitFinal(sent: SentRequest, timeoutMs: number, fromSeq: number): Promise<SipMessage> {
    return this.sendAndAwaitFinal(sent.bytes, sent.target, { callId: sent.callId, cseq: sent.cseq, method: sent.method }, timeoutMs, fromSeq);
  }

  #onMessage(buf: Buffer, from: SipHostPort): void {
    const msg = parseSipMessage(buf);
    if (!msg) {
      this.#unparsed++;
      return;
    }
    const r: ReceivedSip = { seq: this.#seq++, atMs: Date.now() - this.#opened, from, msg };
    this.#received.push(r);
    if (this.#received.length > MAX_RECEIVED) this.#received.shift();
    if (msg.isRequest && msg.method !== 'ACK') {
      const again = this.#answered.get(requestKey(msg));
      if (again) void this.sendRaw(again.bytes, again.to).catch(() => undefined);
    }
    for (const l of this.#listeners) l(r);
    for (const w of this.#waiters) {
      if (r.seq >= w.from && w.pred(r)) {
        this.#waiters.delete(w);
        w.resolve(r);
      }
    }
  }
}

function matchesResponse(m: SipMessage, f: ResponseFilter): boolean {
  if (m.isRequest || m.status === undefined) return false;
  if ((f.final ?? true) && m.status < 200) return false;
  if (f.status !== undefined && m.status !== f.status) return false;
  if (f.callId !== undefined && m.callId !== f.callId) return false;
  const c = m.cseq;
  if (f.cseq !== undefined && c?.seq !== f.cseq) return false;
  if (f.method !== undefined && c?.method !== f.method.toUpperCase()) return false;
  return true;
}

function requestKey(m: SipMessage): string {
  return `${m.callId}|${m.get('cseq')}|${m.branch}`;
}

/** The caller's side of one INVITE: its final response, the ACK, and requests in the dialog. */
export class UacDialog {
  /** The client it runs on. */
  readonly client: RawSipClient;
  /** The INVITE as sent. */
  readonly invite: SentRequest;
  /** Call-ID of the dialog. */
  readonly callId: string;
  /** Our tag (From). */
  readonly localTag: string;
  #final: SipMessage | undefined;
  #remoteTag: string | undefined;
  #remoteTarget: string | undefined;
  #routeSet: string[] = [];
  #cseq: number;
  #ack: { bytes: Buffer; to: SipHostPort } | undefined;
  #unlisten: (() => void) | undefined;

  /** Use {@link RawSipClient.invite}. */
  constructor(client: RawSipClient, invite: SentRequest) {
    this.client = client;
    this.invite = invite;
    this.callId = invite.callId;
    this.localTag = invite.fromTag;
    this.#cseq = invite.cseq;
  }

  /** The final response to the INVITE. */
  get final(): SipMessage {
    if (!this.#final) throw new PeerError(`rawsip dialog has no final response yet [Call-ID:${this.callId}]`);
    return this.#final;
  }

  /** True when the INVITE was answered 2xx. */
  get established(): boolean {
    const s = this.#final?.status;
    return s !== undefined && s >= 200 && s < 300;
  }

  /** The peer's tag (To of the final response). */
  get remoteTag(): string | undefined {
    return this.#remoteTag;
  }

  /** The peer's Contact URI. */
  get remoteTarget(): string | undefined {
    return this.#remoteTarget;
  }

  /** The route set (Record-Route of the 2xx, reversed). */
  get routeSet(): readonly string[] {
    return this.#routeSet;
  }

  /** Requests the peer sent in this dialog from `fromSeq` on. */
  requestsFromPeer(fromSeq = 0): ReceivedSip[] {
    return this.client.requests(fromSeq).filter((r) => r.msg.callId === this.callId);
  }

  /** Wait for a request of `method` in this dialog. */
  waitForRequest(method: string, timeoutMs: number, fromSeq = 0): Promise<ReceivedSip> {
    return this.client.waitForRequest(method, timeoutMs, { callId: this.callId, fromSeq });
  }

  /** Answer a request of the peer in this dialog with any status (retransmissions get the same answer). */
  respond(req: ReceivedSip, status: number, reason: string, headers: readonly SipHeader[] = []): Promise<void> {
    return this.client.respond(req, status, reason, { headers });
  }

  /**
   * Answer every later request of `method` in this dialog that has no answer yet (a retried BYE,
   * say) with `status`, so the peer stops retransmitting; returns the removal.
   */
  answerEach(method: string, status: number, reason: string, headers: readonly SipHeader[] = []): () => void {
    const m = method.toUpperCase();
    return this.client.onMessage((r) => {
      if (r.msg.method === m && r.msg.callId === this.callId && !this.client.hasAnswered(r.msg)) {
        void this.client.respond(r, status, reason, { headers }).catch(() => undefined);
      }
    });
  }

  /** Record the final response and ACK it (RFC 3261 17.1.1.3 for non-2xx, 13.2.2.4 for 2xx). */
  async onFinal(final: SipMessage): Promise<void> {
    this.#final = final;
    this.#remoteTag = final.toTag;
    if ((final.status ?? 0) >= 300) {
      const text = this.invite.bytes.toString('latin1');
      const head = text.slice(0, text.indexOf('\r\n\r\n') + 2);
      // Same Via (branch) as the INVITE: this ACK belongs to the INVITE transaction.
      const keep = head
        .split('\r\n')
        .slice(1)
        .filter((l) => /^(via|v|from|f|call-id|i|max-forwards|route)\s*:/i.test(l));
      const uri = /^\S+\s+(\S+)/.exec(text)?.[1] ?? '';
      const bytes = buildRequest({
        method: 'ACK',
        uri,
        headers: [...keep.map((l) => `${l}\r\n`), `To: ${final.get('to') ?? ''}\r\n`, `CSeq: ${this.invite.cseq} ACK\r\n`].join(''),
      });
      this.#ack = { bytes, to: this.invite.target };
    } else {
      const contact = final.get('contact');
      this.#remoteTarget = contact ? addrSpec(splitHeaderList(contact)[0] ?? contact) : undefined;
      this.#routeSet = final.getAll('record-route').flatMap(splitHeaderList).reverse();
      this.#ack = this.#inDialog('ACK', this.invite.cseq);
    }
    const ack = this.#ack;
    await this.client.sendRaw(ack.bytes, ack.to);
    // A lost ACK makes the peer retransmit its final response: each copy gets the ACK again.
    this.#unlisten = this.client.onMessage((r) => {
      const c = r.msg.cseq;
      if (!r.msg.isRequest && r.msg.callId === this.callId && c?.method === 'INVITE' && c.seq === this.invite.cseq && (r.msg.status ?? 0) >= 200) {
        void this.client.sendRaw(ack.bytes, ack.to).catch(() => undefined);
      }
    });
  }

  /** Send a request in the dialog (next CSeq) and resolve with its final response. */
  async request(method: string, opts: { headers?: readonly SipHeader[]; body?: string; contentType?: string; timeoutMs?: number } = {}): Promise<SipMessage> {
    if (!this.established) throw new PeerError(`rawsip: ${method} outside an established dialog [Call-ID:${this.callId}]`);
    const m = method.toUpperCase();
    const cseq = ++this.#cseq;
    const r = this.#inDialog(m, cseq, opts);
    const final = await this.client.sendAndAwaitFinal(r.bytes, r.to, { callId: this.callId, cseq, method: m }, opts.timeoutMs ?? 5_000);
    // A re-INVITE's 2xx is acknowledged like the first one's (RFC 3261 13.2.2.4), with its CSeq.
    if (m === 'INVITE' && (final.status ?? 0) >= 200 && (final.status ?? 0) < 300) {
      const ack = this.#inDialog('ACK', cseq);
      await this.client.sendRaw(ack.bytes, ack.to);
    }
    return final;
  }

  /** Hang up: BYE, resolving with its final response. */
  bye(timeoutMs = 5_000): Promise<SipMessage> {
    return this.request('BYE', { timeoutMs });
  }

  /** Stop re-ACKing retransmitted 2xx; idempotent. */
  close(): void {
    this.#unlisten?.();
    this.#unlisten = undefined;
  }

  #inDialog(method: string, cseq: number, opts: { headers?: readonly SipHeader[]; body?: string; contentType?: string } = {}): { bytes: Buffer; to: SipHostPort } {
    const target = this.#remoteTarget ?? `sip:${this.invite.target.host}:${this.invite.target.port}`;
    let uri = target;
    const routes = [...this.#routeSet];
    // RFC 3261 12.2.1.1: a strict router first in the set becomes the Request-URI.
    if (routes.length > 0 && !/;lr\b/i.test(routes[0])) {
      uri = addrSpec(routes.shift() as string);
      routes.push(`<${target}>`);
    }
    const next = routes.length > 0 ? uriHostPort(routes[0]) : uriHostPort(target);
    const c = this.client;
    const headers: SipHeader[] = [
      ['Via', `SIP/2.0/UDP ${c.host}:${c.port};branch=z9hG4bK${sipToken()};rport`],
      ['Max-Forwards', '70'],
      ['From', this.#fromHeader()],
      ['To', this.#final?.get('to') ?? ''],
      ['Call-ID', this.callId],
      ['CSeq', `${cseq} ${method}`],
    ];
    for (const r of routes) headers.push(['Route', r]);
    headers.push(...(opts.headers ?? []));
    if (opts.body !== undefined && opts.contentType) headers.push(['Content-Type', opts.contentType]);
    return { bytes: buildRequest({ method, uri, headers, body: opts.body }), to: next };
  }

  #fromHeader(): string {
    const text = this.invite.bytes.toString('latin1');
    return /^From:\s*(.*)$/im.exec(text)?.[1]?.trim() ?? '';
  }
}
