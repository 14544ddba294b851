/**
 * Reading a packet capture (tcpdump's classic pcap file) for the benchmarks: IPv4 UDP datagrams and
 * TCP segments with their capture times, one direction of a TCP connection put back in order, and
 * the client-to-server frames of a WebSocket carried on it (masked, as a client sends them).
 *
 * Only what the benches need: Ethernet (what tcpdump writes for `lo`), Linux cooked v1/v2 and raw
 * IP link types; IPv4 without fragments. Anything else is skipped and counted, never guessed at.
 * A file cut short (tcpdump stopped mid-write) ends at the last whole record.
 */

/** A bad capture file, with where it went wrong. */
export class PcapError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PcapError';
  }
}

/** One UDP datagram or TCP segment. */
export interface Packet {
  /** Capture time, µs since the epoch. */
  tUs: number;
  proto: 'udp' | 'tcp';
  src: string;
  sport: number;
  dst: string;
  dport: number;
  /** TCP only: sequence number and flags (FIN 0x01, SYN 0x02, RST 0x04). */
  seq: number;
  flags: number;
  payload: Buffer;
}

/** What a read skipped. */
export interface PcapStats {
  records: number;
  packets: number;
  /** Records that are not IPv4 UDP/TCP (ARP, IPv6, ICMP, fragments). */
  skipped: number;
  /** The last record was cut short. */
  truncated: boolean;
}

const LINK_ETHERNET = 1;
const LINK_RAW = 101;
const LINK_SLL = 113;
const LINK_SLL2 = 276;

/** Decode a whole pcap file. Throws PcapError on a header that is not pcap. */
export function readPcap(buf: Buffer): { packets: Packet[]; stats: PcapStats } {
  if (buf.length < 24) throw new PcapError(`not a pcap file: ${buf.length} bytes, the header alone is 24`);
  const magicLE = buf.readUInt32LE(0);
  let le: boolean;
  let nano: boolean;
  if (magicLE === 0xa1b2c3d4 || magicLE === 0xa1b23c4d) {
    le = true;
    nano = magicLE === 0xa1b23c4d;
  } else {
    const magicBE = buf.readUInt32BE(0);
    if (magicBE !== 0xa1b2c3d4 && magicBE !== 0xa1b23c4d) {
      throw new PcapError(`not a pcap file: magic 0x${magicLE.toString(16)} (pcapng is not read: tcpdump -w writes pcap)`);
    }
    le = false;
    nano = magicBE === 0xa1b23c4d;
  }
  const u32 = (o: number): number => (le ? buf.readUInt32LE(o) : buf.readUInt32BE(o));
  const link = u32(20) & 0x0fffffff;
  if (![LINK_ETHERNET, LINK_RAW, LINK_SLL, LINK_SLL2].includes(link)) throw new PcapError(`link type ${link} is not read (Ethernet, raw IP, Linux cooked)`);
  const stats: PcapStats = { records: 0, packets: 0, skipped: 0, truncated: false };
  const packets: Packet[] = [];
  let off = 24;
  while (off < buf.length) {
    if (off + 16 > buf.length) {
      stats.truncated = true;
      break;
    }
    const sec = u32(off);
    const frac = u32(off + 4);
    const incl = u32(off + 8);
    if (incl > 262_144) throw new PcapError(`record at byte ${off} claims ${incl} bytes (more than any snapshot length)`);
    if (off + 16 + incl > buf.length) {
      stats.truncated = true;
      break;
    }
    stats.records++;
    const frame = buf.subarray(off + 16, off + 16 + incl);
    off += 16 + incl;
    const tUs = sec * 1e6 + (nano ? Math.floor(frac / 1000) : frac);
    const p = decodeFrame(frame, link, tUs);
    if (p) {
      packets.push(p);
      stats.packets++;
    } else {
      stats.skipped++;
    }
  }
  return { packets, stats };
}

/** The IPv4 packet inside a link-layer frame, or undefined. */
function ipv4Of(frame: Buffer, link: number): Buffer | undefined {
  let proto: number;
  let at: number;
  if (link === LINK_ETHERNET) {
    if (frame.length < 14) return undefined;
    proto = frame.readUInt16BE(12);
    at = 14;
    if (proto === 0x8100 && frame.length >= 18) {
      proto = frame.readUInt16BE(16);
      at = 18;
    }
  } else if (link === LINK_SLL) {
    if (frame.length < 16) return undefined;
    proto = frame.readUInt16BE(14);
    at = 16;
  } else if (link === LINK_SLL2) {
    if (frame.length < 20) return undefined;
    proto = frame.readUInt16BE(0);
    at = 20;
  } else {
    proto = 0x0800;
    at = 0;
  }
  return proto === 0x0800 ? frame.subarray(at) : undefined;
}

function decodeFrame(frame: Buffer, link: number, tUs: number): Packet | undefined {
  const ip = ipv4Of(frame, link);
  if (!ip || ip.length < 20 || ip[0]! >> 4 !== 4) return undefined;
  const ihl = (ip[0]! & 0x0f) * 4;
  const total = ip.readUInt16BE(2);
  if (ihl < 20 || total < ihl || total > ip.length) return undefined;
  const fragment = ip.readUInt16BE(6);
  if ((fragment & 0x2000) !== 0 || (fragment & 0x1fff) !== 0) return undefined;
  const src = `${ip[12]}.${ip[13]}.${ip[14]}.${ip[15]}`;
  const dst = `${ip[16]}.${ip[17]}.${ip[18]}.${ip[19]}`;
  const l4 = ip.subarray(ihl, total);
  if (ip[9] === 17) {
    if (l4.length < 8) return undefined;
    const len = l4.readUInt16BE(4);
    if (len < 8 || len > l4.length) return undefined;
    return { tUs, proto: 'udp', src, sport: l4.readUInt16BE(0), dst, dport: l4.readUInt16BE(2), seq: 0, flags: 0, payload: l4.subarray(8, len) };
  }
  if (ip[9] === 6) {
    if (l4.length < 20) return undefined;
    const doff = (l4[12]! >> 4) * 4;
    if (doff < 20 || doff > l4.length) return undefined;
    return { tUs, proto: 'tcp', src, sport: l4.readUInt16BE(0), dst, dport: l4.readUInt16BE(2), seq: l4.readUInt32BE(4), flags: l4[13]!, payload: l4.subarray(doff) };
  }
  return undefined;
}

/** `src:sport>dst:dport`: one direction of a flow. */
export function flowKey(p: Packet): string {
  return `${p.src}:${p.sport}>${p.dst}:${p.dport}`;
}

/**
 * One direction of a TCP connection, in order: bytes are handed out with the capture time of the
 * segment that completed them. A capture that starts mid-connection starts at the first segment
 * seen; retransmitted bytes are ignored; a hole (bytes never captured) is skipped and counted.
 */
export class TcpStream {
  #next: number | undefined;
  readonly #held = new Map<number, { tUs: number; data: Buffer }>();
  /** Bytes lost to holes in the capture. */
  holeBytes = 0;

  constructor(readonly onData: (data: Buffer, tUs: number) => void) {}

  push(p: Packet): void {
    let seq = p.seq;
    if ((p.flags & 0x02) !== 0) {
      this.#next = (seq + 1) >>> 0;
      return;
    }
    if (p.payload.length === 0) return;
    if (this.#next === undefined) this.#next = seq;
    let data = p.payload;
    const behind = (this.#next - seq) | 0;
    if (behind > 0) {
      if (behind >= data.length) return;
      data = data.subarray(behind);
      seq = this.#next;
    }
    if (seq !== this.#next) {
      if (this.#held.size >= 1024) this.#skipHole();
      this.#held.set(seq, { tUs: p.tUs, data });
      return;
    }
    this.#deliver(data, p.tUs);
  }

  /** End of capture: whatever waits behind a hole is delivered after it. */
  flush(): void {
    while (this.#held.size > 0) this.#skipHole();
  }

  #deliver(data: Buffer, tUs: number): void {
    this.onData(data, tUs);
    this.#next = (this.#next! + data.length) >>> 0;
    for (let h = this.#held.get(this.#next); h; h = this.#held.get(this.#next)) {
      this.#held.delete(this.#next);
      // Bytes held behind a gap became readable only when the gap was filled.
      this.onData(h.data, Math.max(h.tUs, tUs));
      this.#next = (this.#next + h.data.length) >>> 0;
    }
  }

  #skipHole(): void {
    let first: number | undefined;
    for (const s of this.#held.keys()) if (first === undefined || ((s - first) | 0) < 0) first = s;
    const h = this.#held.get(first!)!;
    this.#held.delete(first!);
    this.holeBytes += (first! - this.#next!) >>> 0;
    this.#next = first!;
    this.#deliver(h.data, h.tUs);
  }
}

/** One WebSocket message a client sent, with the capture time of its last byte. */
export interface WsMessage {
  tUs: number;
  opcode: number;
  payload: Buffer;
}

/**
 * Client-to-server WebSocket frames from a byte stream (RFC 6455 §5: masked, possibly fragmented).
 * A stream joined mid-message is resynchronised on the first frame header whose unmasked payload
 * starts as JSON does; compressed frames (RSV1) are refused.
 */
export class WsClientFrames {
  #buf: Buffer = Buffer.alloc(0);
  #tUs = 0;
  #synced: boolean;
  #fragments: Buffer[] = [];
  #fragOpcode = 0;
  /** Bytes dropped while looking for a frame boundary. */
  skippedBytes = 0;

  constructor(
    readonly onMessage: (m: WsMessage) => void,
    opts: { fromStart?: boolean } = {},
  ) {
    this.#synced = opts.fromStart ?? false;
  }

  push(data: Buffer, tUs: number): void {
    this.#buf = this.#buf.length === 0 ? data : Buffer.concat([this.#buf, data]);
    this.#tUs = tUs;
    if (!this.#synced && !this.#resync()) return;
    for (;;) {
      const f = parseFrame(this.#buf, 0);
      if (f === 'short') return;
      this.#buf = this.#buf.subarray(f.end);
      this.#frame(f.fin, f.opcode, f.payload);
    }
  }

  #frame(fin: boolean, opcode: number, payload: Buffer): void {
    if (opcode >= 8) {
      this.onMessage({ tUs: this.#tUs, opcode, payload });
      return;
    }
    if (opcode !== 0) {
      this.#fragOpcode = opcode;
      this.#fragments = [];
    }
    this.#fragments.push(payload);
    if (!fin) return;
    const whole = this.#fragments.length === 1 ? this.#fragments[0]! : Buffer.concat(this.#fragments);
    this.#fragments = [];
    this.onMessage({ tUs: this.#tUs, opcode: this.#fragOpcode, payload: whole });
  }

  #resync(): boolean {
    for (let i = 0; i + 2 <= this.#buf.length; i++) {
      // A text frame, masked, under 64 KiB: what a client's JSON event looks like.
      if (this.#buf[i] !== 0x81 || (this.#buf[i + 1]! & 0x80) === 0 || (this.#buf[i + 1]! & 0x7f) === 127) continue;
      const f = parseFrame(this.#buf, i);
      if (f === 'short') {
        // Not enough bytes to judge this candidate yet: keep it and what follows.
        this.skippedBytes += i;
        this.#buf = this.#buf.subarray(i);
        return false;
      }
      if (f.payload.length >= 2 && f.payload[0] === 0x7b && f.payload[1] === 0x22) {
        this.skippedBytes += i;
        this.#buf = this.#buf.subarray(i);
        this.#synced = true;
        return true;
      }
    }
    const keep = Math.min(this.#buf.length, 1);
    this.skippedBytes += this.#buf.length - keep;
    this.#buf = this.#buf.subarray(this.#buf.length - keep);
    return false;
  }
}

type Frame = { fin: boolean; opcode: number; payload: Buffer; end: number };

/** One masked frame at `at`, unmasked; 'short' when the buffer ends first. Throws on what a client never sends. */
function parseFrame(buf: Buffer, at: number): Frame | 'short' {
  if (buf.length < at + 2) return 'short';
  const b0 = buf[at]!;
  const b1 = buf[at + 1]!;
  if ((b0 & 0x70) !== 0) throw new PcapError(`WebSocket frame with RSV bits 0x${(b0 & 0x70).toString(16)} (compression is not read)`);
  if ((b1 & 0x80) === 0) throw new PcapError('unmasked WebSocket frame from a client');
  let len = b1 & 0x7f;
  let p = at + 2;
  if (len === 126) {
    if (buf.length < p + 2) return 'short';
    len = buf.readUInt16BE(p);
    p += 2;
  } else if (len === 127) {
    if (buf.length < p + 8) return 'short';
    const big = buf.readBigUInt64BE(p);
    if (big > 64n * 1024n * 1024n) throw new PcapError(`WebSocket frame of ${big} bytes`);
    len = Number(big);
    p += 8;
  }
  if (buf.length < p + 4 + len) return 'short';
  const key = buf.subarray(p, p + 4);
  p += 4;
  const payload = Buffer.allocUnsafe(len);
  for (let i = 0; i < len; i++) payload[i] = buf[p + i]! ^ key[i & 3]!;
  return { fin: (b0 & 0x80) !== 0, opcode: b0 & 0x0f, payload, end: p + len };
}
