/**
 * The packet-capture reader of the benchmarks: pcap records, IPv4 UDP/TCP, TCP reassembly and
 * masked WebSocket frames, on captures built here byte by byte (bad ones included); and the uplink
 * analysis on a synthetic call whose latency is known.
 */
import { encodeMuLaw } from '../../../src/audio/g711';
import { PcapError, TcpStream, WsClientFrames, readPcap, type Packet } from '../../../bench/capture/pcap';
import { findBursts, uplinkFromCapture } from '../../../bench/capture/uplink';

const ip = (s: string): number[] => s.split('.').map(Number);

function ipv4(proto: number, src: string, dst: string, l4: Buffer): Buffer {
  const h = Buffer.alloc(20);
  h[0] = 0x45;
  h.writeUInt16BE(20 + l4.length, 2);
  h[8] = 64;
  h[9] = proto;
  Buffer.from(ip(src)).copy(h, 12);
  Buffer.from(ip(dst)).copy(h, 16);
  return Buffer.concat([h, l4]);
}

function udp(sport: number, dport: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt16BE(sport, 0);
  h.writeUInt16BE(dport, 2);
  h.writeUInt16BE(8 + payload.length, 4);
  return Buffer.concat([h, payload]);
}

function tcp(sport: number, dport: number, seq: number, payload: Buffer, flags = 0x18): Buffer {
  const h = Buffer.alloc(20);
  h.writeUInt16BE(sport, 0);
  h.writeUInt16BE(dport, 2);
  h.writeUInt32BE(seq >>> 0, 4);
  h[12] = 5 << 4;
  h[13] = flags;
  return Buffer.concat([h, payload]);
}

const ether = (ipPacket: Buffer): Buffer => Buffer.concat([Buffer.alloc(12), Buffer.from([0x08, 0x00]), ipPacket]);

/** A classic pcap file (little-endian, µs) of Ethernet frames. */
function pcapFile(frames: { tUs: number; frame: Buffer }[]): Buffer {
  const g = Buffer.alloc(24);
  g.writeUInt32LE(0xa1b2c3d4, 0);
  g.writeUInt16LE(2, 4);
  g.writeUInt16LE(4, 6);
  g.writeUInt32LE(262144, 16);
  g.writeUInt32LE(1, 20);
  const recs = frames.map(({ tUs, frame }) => {
    const r = Buffer.alloc(16);
    r.writeUInt32LE(Math.floor(tUs / 1e6), 0);
    r.writeUInt32LE(tUs % 1e6, 4);
    r.writeUInt32LE(frame.length, 8);
    r.writeUInt32LE(frame.length, 12);
    return Buffer.concat([r, frame]);
  });
  return Buffer.concat([g, ...recs]);
}

/** A masked client text frame. */
function wsFrame(text: string, key = [0x11, 0x22, 0x33, 0x44]): Buffer {
  const p = Buffer.from(text);
  const head = p.length < 126 ? Buffer.from([0x81, 0x80 | p.length]) : Buffer.from([0x81, 0x80 | 126, p.length >> 8, p.length & 0xff]);
  const masked = Buffer.from(p.map((b, i) => b ^ key[i & 3]!));
  return Buffer.concat([head, Buffer.from(key), masked]);
}

function rtp(seq: number, ts: number, payload: Uint8Array): Buffer {
  const h = Buffer.alloc(12);
  h[0] = 0x80;
  h[1] = 0;
  h.writeUInt16BE(seq & 0xffff, 2);
  h.writeUInt32BE(ts >>> 0, 4);
  h.writeUInt32BE(0x1234, 8);
  return Buffer.concat([h, Buffer.from(payload)]);
}

describe('readPcap', () => {
  it('decodes UDP and TCP over IPv4 with their capture times', () => {
    const file = pcapFile([
      { tUs: 1_700_000_000_123_456, frame: ether(ipv4(17, '127.0.0.1', '127.0.0.2', udp(4000, 5000, Buffer.from('hi')))) },
      { tUs: 1_700_000_000_223_456, frame: ether(ipv4(6, '127.0.0.1', '127.0.0.1', tcp(40000, 8080, 7, Buffer.from('abc')))) },
    ]);
    const { packets, stats } = readPcap(file);
    expect(stats).toEqual({ records: 2, packets: 2, skipped: 0, truncated: false });
    expect(packets[0]).toMatchObject({ tUs: 1_700_000_000_123_456, proto: 'udp', src: '127.0.0.1', sport: 4000, dst: '127.0.0.2', dport: 5000 });
    expect(packets[0]!.payload.toString()).toBe('hi');
    expect(packets[1]).toMatchObject({ proto: 'tcp', sport: 40000, dport: 8080, seq: 7 });
    expect(packets[1]!.payload.toString()).toBe('abc');
  });

  it('refuses what is not pcap, and names it', () => {
    expect(() => readPcap(Buffer.alloc(10))).toThrow(PcapError);
    expect(() => readPcap(Buffer.from('0a0d0d0a00000000000000000000000000000000000000000000', 'hex'))).toThrow(/pcapng/);
    const g = pcapFile([]);
    g.writeUInt32LE(105, 20); // 802.11
    expect(() => readPcap(g)).toThrow(/link type 105/);
  });

  it('skips what it does not read and stops at a record cut short', () => {
    const arp = Buffer.concat([Buffer.alloc(12), Buffer.from([0x08, 0x06]), Buffer.alloc(28)]);
    const badIhl = ether(ipv4(17, '1.1.1.1', '2.2.2.2', udp(1, 2, Buffer.alloc(4))));
    badIhl[14] = 0x41; // IHL 4 words: less than the header
    const shortUdp = ether(ipv4(17, '1.1.1.1', '2.2.2.2', Buffer.alloc(4)));
    const fragment = ether(ipv4(17, '1.1.1.1', '2.2.2.2', udp(1, 2, Buffer.alloc(4))));
    fragment.writeUInt16BE(0x2000, 14 + 6);
    const good = ether(ipv4(17, '1.1.1.1', '2.2.2.2', udp(1, 2, Buffer.from('ok'))));
    const file = pcapFile([arp, badIhl, shortUdp, fragment, good].map((frame, i) => ({ tUs: i, frame })));
    const cut = file.subarray(0, file.length - 1);
    const all = readPcap(file);
    expect(all.stats).toEqual({ records: 5, packets: 1, skipped: 4, truncated: false });
    const partial = readPcap(cut);
    expect(partial.stats).toMatchObject({ records: 4, packets: 0, truncated: true });
  });

  it('refuses a record longer than any snapshot', () => {
    const file = pcapFile([{ tUs: 0, frame: Buffer.alloc(20) }]);
    file.writeUInt32LE(0x7fffffff, 24 + 8);
    expect(() => readPcap(file)).toThrow(/claims/);
  });
});

describe('TcpStream', () => {
  const seg = (seq: number, data: string, tUs: number, flags = 0x18): Packet => ({
    tUs, proto: 'tcp', src: 'a', sport: 1, dst: 'b', dport: 2, seq, flags, payload: Buffer.from(data),
  });

  it('puts segments in order, drops retransmissions, counts holes', () => {
    const got: string[] = [];
    const s = new TcpStream((d, t) => got.push(`${d.toString()}@${t}`));
    s.push(seg(99, '', 1, 0x02)); // SYN: data starts at 100
    s.push(seg(103, 'def', 2));
    s.push(seg(100, 'abc', 3));
    s.push(seg(100, 'abc', 4)); // retransmitted
    s.push(seg(104, 'efg', 5)); // overlaps: only g is new
    s.push(seg(110, 'xyz', 6)); // after a hole of 3 bytes
    expect(got).toEqual(['abc@3', 'def@3', 'g@5']);
    s.flush();
    expect(got).toEqual(['abc@3', 'def@3', 'g@5', 'xyz@6']);
    expect(s.holeBytes).toBe(3);
  });
});

describe('WsClientFrames', () => {
  it('unmasks frames split anywhere, with the time of the last byte', () => {
    const got: { text: string; tUs: number }[] = [];
    const f = new WsClientFrames((m) => got.push({ text: m.payload.toString(), tUs: m.tUs }), { fromStart: true });
    const bytes = Buffer.concat([wsFrame('{"a":1}'), wsFrame(`{"b":"${'x'.repeat(300)}"}`)]);
    for (let i = 0; i < bytes.length; i += 7) f.push(bytes.subarray(i, i + 7), i);
    expect(got.map((g) => g.text.slice(0, 6))).toEqual(['{"a":1', '{"b":"']);
    expect(got[1]!.tUs).toBe(Math.floor((bytes.length - 1) / 7) * 7);
  });

  it('joins a stream mid-frame on the next JSON frame', () => {
    const got: string[] = [];
    const f = new WsClientFrames((m) => got.push(m.payload.toString()));
    const bytes = Buffer.concat([wsFrame('{"first":true}'), wsFrame('{"second":true}')]);
    f.push(bytes.subarray(5), 1);
    expect(got).toEqual(['{"second":true}']);
    expect(f.skippedBytes).toBeGreaterThan(0);
  });

  it('refuses frames a client never sends', () => {
    const f = new WsClientFrames(() => undefined, { fromStart: true });
    expect(() => f.push(Buffer.from([0x81, 0x02, 0x7b, 0x7d]), 0)).toThrow(/unmasked/);
    const g = new WsClientFrames(() => undefined, { fromStart: true });
    expect(() => g.push(Buffer.from([0xc1, 0x80, 0, 0, 0, 0]), 0)).toThrow(/RSV/);
  });
});

describe('uplinkFromCapture', () => {
  const RTP_PORT = 30000;
  const AI_PORT = 9000;
  const t0 = 1_700_000_000_000_000;

  /** One call: 3 s of 500 Hz bursts (400 ms on, 600 off) over RTP; the appends leave `delayMs` after. */
  function synthetic(delayMs: number, dropFrameAt?: number): Packet[] {
    const frames: { tUs: number; frame: Buffer }[] = [];
    let seq = 1000;
    const frameCount = 150;
    for (let k = 0; k < frameCount; k++) {
      const pcm = new Int16Array(160);
      for (let i = 0; i < 160; i++) {
        const n = k * 160 + i;
        const loud = n % 8000 >= 2000 && n % 8000 < 5200;
        pcm[i] = loud ? Math.round(8000 * Math.sin((2 * Math.PI * 500 * n) / 8000)) : 0;
      }
      const tUs = t0 + k * 20_000;
      frames.push({ tUs, frame: ether(ipv4(17, '127.0.0.1', '127.0.0.1', udp(40000, RTP_PORT, rtp(k, k * 160, encodeMuLaw(pcm))))) });
      if (k === dropFrameAt) continue; // this frame never reaches the model
      const up = new Int16Array(480);
      for (let i = 0; i < 480; i++) up[i] = pcm[Math.floor(i / 3)]!;
      const json = JSON.stringify({ type: 'input_audio_buffer.append', audio: Buffer.from(up.buffer).toString('base64') });
      const w = wsFrame(json);
      frames.push({ tUs: tUs + delayMs * 1000, frame: ether(ipv4(6, '127.0.0.1', '127.0.0.1', tcp(50000, AI_PORT, seq, w))) });
      seq += w.length;
    }
    frames.sort((a, b) => a.tUs - b.tUs);
    return readPcap(pcapFile(frames)).packets;
  }

  it('finds the latency it was built with', () => {
    const r = uplinkFromCapture(synthetic(30), { rtpPorts: [RTP_PORT, RTP_PORT], aiPort: AI_PORT, windows: { all: [t0 / 1000, t0 / 1000 + 10_000] } });
    expect(r).toMatchObject({ rtpStreams: 1, wsConnections: 1, paired: 1, slipped: 0 });
    expect(r.bursts).toBeGreaterThanOrEqual(2);
    expect(r.windows.all!.packets).toBeGreaterThan(30);
    expect(r.windows.all!.p50Ms).toBeCloseTo(30, 0);
    expect(r.windows.all!.maxMs).toBeCloseTo(30, 0);
  });

  it('leaves out a burst that lost a frame on the way', () => {
    const r = uplinkFromCapture(synthetic(30, 65), { rtpPorts: [RTP_PORT, RTP_PORT], aiPort: AI_PORT, windows: { all: [0, Infinity] } });
    expect(r.slipped).toBe(1);
    expect(r.windows.all!.p50Ms).toBeCloseTo(30, 0);
  });

  it('finds bursts and their frequency, not those cut by the edges', () => {
    const pcm = new Int16Array(16000);
    for (let n = 4000; n < 12000; n++) pcm[n] = Math.round(5000 * Math.sin((2 * Math.PI * 440 * n) / 8000));
    const b = findBursts([{ start: 0, pcm }], 8000);
    expect(b).toHaveLength(1);
    expect(b[0]!.hz).toBeCloseTo(440, -1);
    expect(findBursts([{ start: 0, pcm: pcm.subarray(5000) }], 8000)).toEqual([]);
  });
});
