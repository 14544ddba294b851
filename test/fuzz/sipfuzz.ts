/**
 * A seeded, bounded SIP mutation fuzzer (loopback only). It builds well-formed seed requests
 * (INVITE, OPTIONS, REGISTER, SUBSCRIBE, BYE, CANCEL, REFER, re-INVITE with a To tag, ACK,
 * INFO, MESSAGE) and mutates each with 1-4 mutations chosen from structure-aware ones (duplicate,
 * drop, swap or fold header lines, extreme numbers, huge values, odd separators, bad bodies) and
 * byte-level ones (flip, insert, delete, truncate). The same seed gives the same messages, so a
 * failure is reproduced by its seed and index.
 *
 * The hand-made corpus (test/fuzz/corpus/*.sip) holds the nasty cases that need no luck: folded
 * whitespace-only header lines, 4 KB and 64 KB headers, duplicated Content-Length, multipart
 * bodies, SDP with no media / 40 media lines / bad ptime / unknown codecs. A corpus file is a
 * message template: `{{host}}`, `{{port}}`, `{{callid}}`, `{{branch}}`, `{{tag}}`, `{{lport}}` are
 * filled in per send; `{{repeat:N:text}}` expands to text repeated N times; `{{clen}}` is the body
 * length. Line ends are normalised to CRLF unless the file name contains `raw`.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { REPO_ROOT } from '../helpers/daemon';

/** Where the hand-made corpus lives; messages that killed the daemon are saved here as crash-*.sip. */
export const CORPUS_DIR = path.join(REPO_ROOT, 'test', 'fuzz', 'corpus');

/** A small, fast, seedable PRNG (mulberry32). */
export class Rng {
  #s: number;
  constructor(seed: number) {
    this.#s = seed >>> 0;
  }
  /** Uniform in [0, 1). */
  next(): number {
    let t = (this.#s = (this.#s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(a: readonly T[]): T {
    return a[this.int(a.length)]!;
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  token(n = 8): string {
    let s = '';
    for (let i = 0; i < n; i++) s += '0123456789abcdef'[this.int(16)];
    return s;
  }
}

/** Who the messages go to and come from. */
export interface FuzzTarget {
  host: string;
  port: number;
  /** The sender's own address and port (for Via and Contact). */
  localHost: string;
  localPort: number;
  /** The agent's user (Request-URI). */
  user: string;
}

const SEED_METHODS = ['INVITE', 'OPTIONS', 'REGISTER', 'SUBSCRIBE', 'BYE', 'CANCEL', 'REFER', 'REINVITE', 'ACK', 'INFO', 'MESSAGE', 'NOTIFY', 'UPDATE', 'PRACK'] as const;
type SeedMethod = (typeof SEED_METHODS)[number];

/** A PCMU offer (nothing listens on its port). */
export function sdpOffer(host: string, rtpPort: number, extra = ''): string {
  return ['v=0', `o=fuzz 1 1 IN IP4 ${host}`, 's=fuzz', `c=IN IP4 ${host}`, 't=0 0', `m=audio ${rtpPort} RTP/AVP 0 101`, 'a=rtpmap:0 PCMU/8000', 'a=rtpmap:101 telephone-event/8000', 'a=ptime:20', 'a=sendrecv', extra].filter(Boolean).join('\r\n') + '\r\n';
}

/** One well-formed seed request as header lines and a body. */
export function seedRequest(rng: Rng, t: FuzzTarget, method: SeedMethod = rng.pick(SEED_METHODS)): { lines: string[]; body: string } {
  const callId = `${rng.token(16)}@${t.localHost}`;
  const branch = `z9hG4bK${rng.token(12)}`;
  const fromTag = rng.token(8);
  const uri = `sip:${t.user}@${t.host}:${t.port}`;
  const inDialog = method === 'BYE' || method === 'REINVITE' || method === 'INFO' || method === 'UPDATE' || method === 'PRACK' || method === 'NOTIFY' || rng.chance(0.1);
  const m = method === 'REINVITE' ? 'INVITE' : method;
  const cseq = method === 'ACK' || method === 'CANCEL' ? 1 : 1 + rng.int(5);
  const lines = [
    `${m} ${uri} SIP/2.0`,
    `Via: SIP/2.0/UDP ${t.localHost}:${t.localPort};branch=${branch};rport`,
    'Max-Forwards: 70',
    `From: "fuzz" <sip:fuzz@${t.localHost}>;tag=${fromTag}`,
    `To: <${uri}>${inDialog ? `;tag=${rng.token(8)}` : ''}`,
    `Call-ID: ${callId}`,
    `CSeq: ${cseq} ${m}`,
    `Contact: <sip:fuzz@${t.localHost}:${t.localPort}>`,
    'User-Agent: sipfuzz',
  ];
  let body = '';
  switch (method) {
    case 'INVITE':
    case 'UPDATE':
      body = sdpOffer(t.localHost, 30_000 + 2 * rng.int(5000));
      lines.push('Allow: INVITE, ACK, BYE, CANCEL, OPTIONS', 'Content-Type: application/sdp');
      break;
    case 'REINVITE':
      // A re-INVITE with or without an offer.
      if (rng.chance(0.5)) {
        body = sdpOffer(t.localHost, 30_000 + 2 * rng.int(5000));
        lines.push('Content-Type: application/sdp');
      }
      break;
    case 'REGISTER':
      lines[0] = `REGISTER sip:${t.host}:${t.port} SIP/2.0`;
      lines.push('Expires: 3600', 'Authorization: Digest username="fuzz", realm="x", nonce="n", uri="sip:x", response="00000000000000000000000000000000"');
      break;
    case 'SUBSCRIBE':
      lines.push('Event: presence', 'Expires: 600', 'Accept: application/pidf+xml');
      break;
    case 'REFER':
      lines.push(`Refer-To: <sip:victim@${t.localHost}>`, `Referred-By: <sip:fuzz@${t.localHost}>`);
      break;
    case 'INFO':
      body = 'Signal=5\r\nDuration=160\r\n';
      lines.push('Content-Type: application/dtmf-relay');
      break;
    case 'MESSAGE':
      body = 'hello';
      lines.push('Content-Type: text/plain');
      break;
    case 'NOTIFY':
      body = 'SIP/2.0 200 OK\r\n';
      lines.push('Event: refer', 'Subscription-State: terminated;reason=noresource', 'Content-Type: message/sipfrag');
      break;
    case 'PRACK':
      lines.push('RAck: 1 1 INVITE');
      break;
    default:
      break;
  }
  return { lines, body };
}

const EXTREME_NUMBERS = ['-1', '0', '4294967295', '4294967296', '18446744073709551616', '99999999999999999999999', '1e308', '0x10', '007', '', ' ', 'NaN', '2147483648', '-2147483649'];
const ODD_TEXT = ['\0', '\r', '\n', '\r\n', '\r\n\r\n', ' \t', '%00', '%', '"', '<', '>', ';', ',', ':', '@', '\\', '\u00ff', '\u00e9\u00e8', '\ud83d\ude00', '${jndi:x}', "'", '\x7f', '\x1b[2J', '=', '?'];

/** Mutations on header lines (index 0 is the start line); each returns nothing and edits in place. */
const LINE_MUTATIONS: ((rng: Rng, m: { lines: string[]; body: string }) => void)[] = [
  // duplicate a header line
  (rng, m) => {
    const i = 1 + rng.int(m.lines.length - 1);
    m.lines.splice(i, 0, m.lines[i]!);
  },
  // drop a header line (Via, From, To, Call-ID, CSeq included)
  (rng, m) => {
    if (m.lines.length > 2) m.lines.splice(1 + rng.int(m.lines.length - 1), 1);
  },
  // swap two lines (the start line included)
  (rng, m) => {
    const a = rng.int(m.lines.length);
    const b = rng.int(m.lines.length);
    [m.lines[a], m.lines[b]] = [m.lines[b]!, m.lines[a]!];
  },
  // a folded continuation line, possibly of whitespace only
  (rng, m) => {
    const i = 1 + rng.int(m.lines.length);
    m.lines.splice(i, 0, rng.pick([' ', '\t', '   ', ' continued', '\t\t;param=1', ' \t ']));
  },
  // a number becomes an extreme one
  (rng, m) => {
    const i = rng.int(m.lines.length);
    const nums = [...m.lines[i]!.matchAll(/\d+/g)];
    if (nums.length === 0) return;
    const n = rng.pick(nums);
    const line = m.lines[i]!;
    m.lines[i] = line.slice(0, n.index) + rng.pick(EXTREME_NUMBERS) + line.slice(n.index! + n[0].length);
  },
  // a huge value
  (rng, m) => {
    const i = 1 + rng.int(m.lines.length - 1);
    m.lines[i] += rng.pick([';', ',', ' ', 'x', '<sip:a@b>,', ';p=']).repeat(rng.pick([100, 1000, 3000, 7000]));
  },
  // odd characters somewhere in a line
  (rng, m) => {
    const i = rng.int(m.lines.length);
    const line = m.lines[i]!;
    const at = rng.int(line.length + 1);
    m.lines[i] = line.slice(0, at) + rng.pick(ODD_TEXT) + line.slice(at);
  },
  // compact or odd-case header names, missing colon, space before colon
  (rng, m) => {
    const i = 1 + rng.int(m.lines.length - 1);
    const line = m.lines[i]!;
    const colon = line.indexOf(':');
    if (colon < 0) return;
    const name = line.slice(0, colon);
    const v = line.slice(colon + 1);
    const compact: Record<string, string> = { Via: 'v', From: 'f', To: 't', 'Call-ID': 'i', Contact: 'm', 'Content-Type': 'c', 'Content-Length': 'l', Event: 'o', 'Refer-To': 'r', Subject: 's' };
    m.lines[i] = rng.pick([`${compact[name] ?? name}:${v}`, `${name.toUpperCase()}:${v}`, `${name} :${v}`, `${name}${v}`, `${name}:`, `:${v}`, `${name}::${v}`]);
  },
  // Content-Length that lies, twice, or negative
  (rng, m) => {
    m.lines = m.lines.filter((l) => !/^(content-length|l)\s*:/i.test(l));
    const real = Buffer.byteLength(m.body);
    const values = [real + 1 + rng.int(100), Math.max(0, real - 1 - rng.int(10)), -1, 0, 65535, 4294967296];
    m.lines.push(`Content-Length: ${rng.pick(values)}`);
    if (rng.chance(0.5)) m.lines.push(`Content-Length: ${rng.pick(values)}`);
  },
  // the request line: another method, URI or version
  (rng, m) => {
    const parts = m.lines[0]!.split(' ');
    const which = rng.int(3);
    if (which === 0) parts[0] = rng.pick(['INVITE', 'invite', 'FOO', 'REGISTER', 'PUBLISH', 'OPTIONS', 'BYE', 'A'.repeat(300), '', 'INVITE\0']);
    if (which === 1) parts[1] = rng.pick(['sip:', 'sip:@', 'tel:+1234', 'sips:agent@127.0.0.1', 'http://x/', '*', 'sip:agent@[::1', `sip:${'a'.repeat(2000)}@x`, 'sip:agent@127.0.0.1;transport=xyz', 'sip:agent@127.0.0.1?Route=<sip:x>']);
    if (which === 2) parts[2] = rng.pick(['SIP/2.1', 'SIP/1.0', 'HTTP/1.1', 'SIP/2.0 extra', 'sip/2.0', '']);
    m.lines[0] = parts.join(' ');
  },
  // the body: SDP with odd lines, no media, many media lines, or a multipart one
  (rng, m) => {
    const choice = rng.int(6);
    if (choice === 0) m.body = 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n';
    else if (choice === 1) m.body = sdpOffer('127.0.0.1', 30_000) + Array.from({ length: 40 }, (_, k) => `m=audio ${31_000 + 2 * k} RTP/AVP 0\r\n`).join('');
    else if (choice === 2) m.body = sdpOffer('127.0.0.1', 30_000, rng.pick(['a=ptime:0', 'a=ptime:-20', 'a=ptime:99999999', 'a=maxptime:0', 'a=rtpmap:0 PCMU/0', 'a=rtpmap:96 x/8000/0', 'a=fmtp:101 0-99999']));
    else if (choice === 3) m.body = m.body.replace(/RTP\/AVP 0 101/, rng.pick(['RTP/AVP 96 97 98', 'RTP/AVP', 'RTP/SAVP 0', 'UDP/TLS/RTP/SAVPF 111', 'RTP/AVP 0 0 0 0', 'RTP/AVP 127 255 300']));
    else if (choice === 4) m.body = `--b\r\nContent-Type: application/sdp\r\n\r\n${m.body}\r\n--b\r\nContent-Type: text/plain\r\n\r\n${'x'.repeat(rng.int(2000))}\r\n--b--\r\n`;
    else m.body = m.body.slice(0, rng.int(m.body.length + 1));
    if (choice === 4) {
      m.lines = m.lines.filter((l) => !/^content-type\s*:/i.test(l));
      m.lines.push(rng.pick(['Content-Type: multipart/mixed;boundary=b', 'Content-Type: multipart/mixed', 'Content-Type: multipart/mixed;boundary=', 'Content-Type: multipart/alternative;boundary="b"']));
    }
  },
];

/** Byte-level mutations of a whole message. */
const BYTE_MUTATIONS: ((rng: Rng, b: Buffer) => Buffer)[] = [
  (rng, b) => {
    const c = Buffer.from(b);
    for (let k = 1 + rng.int(8); k > 0 && c.length > 0; k--) c[rng.int(c.length)] ^= 1 << rng.int(8);
    return c;
  },
  (rng, b) => {
    const at = rng.int(b.length + 1);
    const junk = Buffer.alloc(1 + rng.int(64));
    for (let i = 0; i < junk.length; i++) junk[i] = rng.int(256);
    return Buffer.concat([b.subarray(0, at), junk, b.subarray(at)]);
  },
  (rng, b) => {
    const at = rng.int(b.length);
    return Buffer.concat([b.subarray(0, at), b.subarray(Math.min(b.length, at + 1 + rng.int(64)))]);
  },
  (rng, b) => b.subarray(0, rng.int(b.length + 1)),
];

/** Join lines and body into a message (a correct Content-Length is added unless one is present). */
export function assemble(m: { lines: string[]; body: string }): Buffer {
  const body = Buffer.from(m.body, 'utf8');
  const lines = [...m.lines];
  if (!lines.some((l) => /^(content-length|l)\s*:/i.test(l))) lines.push(`Content-Length: ${body.length}`);
  return Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'utf8'), body]);
}

/** Message `index` of the run with `seed`: a seed request with 1-4 mutations (deterministic). */
export function mutatedMessage(seed: number, index: number, t: FuzzTarget): Buffer {
  const rng = new Rng((seed * 2654435761 + index * 40503) >>> 0);
  const m = seedRequest(rng, t);
  const n = 1 + rng.int(4);
  let bytes: Buffer | undefined;
  for (let k = 0; k < n; k++) {
    if (rng.chance(0.8)) rng.pick(LINE_MUTATIONS)(rng, m);
  }
  bytes = assemble(m);
  if (rng.chance(0.25)) bytes = rng.pick(BYTE_MUTATIONS)(rng, bytes);
  return bytes;
}

/** The corpus files (hand-made, plus saved crashes), sorted. */
export function corpusFiles(dir = CORPUS_DIR): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.sip'))
    .sort()
    .map((f) => path.join(dir, f));
}

/** Fill a corpus template for one send. */
export function renderCorpus(file: string, t: FuzzTarget, rng: Rng): Buffer {
  let text = fs.readFileSync(file, 'latin1');
  text = text.replace(/\{\{repeat:(\d+):([^}]*)\}\}/g, (_, n: string, s: string) => s.repeat(Math.min(Number(n), 70_000)));
  const vars: Record<string, string> = {
    host: t.host,
    port: String(t.port),
    lhost: t.localHost,
    lport: String(t.localPort),
    user: t.user,
    callid: `${rng.token(16)}@${t.localHost}`,
    branch: `z9hG4bK${rng.token(12)}`,
    tag: rng.token(8),
  };
  text = text.replace(/\{\{(host|port|lhost|lport|user|callid|branch|tag)\}\}/g, (_, k: string) => vars[k]!);
  if (!path.basename(file).includes('raw')) text = text.replace(/\r?\n/g, '\r\n');
  const split = text.indexOf('\r\n\r\n');
  const bodyLen = split < 0 ? 0 : Buffer.byteLength(text.slice(split + 4), 'latin1');
  text = text.replace(/\{\{clen\}\}/g, String(bodyLen));
  return Buffer.from(text, 'latin1');
}

/** Save a message that killed the daemon; returns its path. */
export function saveCrash(bytes: Buffer, note: string, dir = CORPUS_DIR): string {
  fs.mkdirSync(dir, { recursive: true });
  const hash = createHash('sha256').update(bytes).digest('hex').slice(0, 12);
  const file = path.join(dir, `crash-${hash}-raw.sip`);
  fs.writeFileSync(file, bytes);
  fs.writeFileSync(`${file}.txt`, `${note}\n`);
  return file;
}
