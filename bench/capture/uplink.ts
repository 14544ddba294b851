/**
 * Uplink latency from a packet capture, outside the agent: for each caller RTP packet reaching the
 * agent, the time until the WebSocket append carrying its last sample leaves for the AI server.
 *
 * The callers speak tone bursts (the capacity load generator), each call at its own frequency.
 * Each call's RTP stream (μ-law) is paired with the WebSocket connection that carries the same
 * frequency (appends of 24 kHz PCM16). Within a burst the two are aligned at its start (the first
 * loud sample on each side) and every packet of the burst is mapped by sample count (1 sample at
 * 8 kHz = 3 at 24 kHz). A burst whose end does not line up too (a sample dropped or inserted on the
 * way, e.g. by the jitter buffer) is left out and counted.
 */
import { decodeMuLaw } from '../../src/audio/g711';
import { flowKey, TcpStream, WsClientFrames, type Packet } from './pcap';

/** A loud sample: above -30 dBFS. */
const LOUD = 1000;
/** Quiet that separates bursts, ms. */
const QUIET_MS = 100;
/** How far a burst's end may sit from where its start and length put it, in 24 kHz samples (5 ms). */
const END_SLACK = 120;

export interface UplinkCaptureOptions {
  /** UDP ports the agent receives caller RTP on (inclusive). */
  rtpPorts: [number, number];
  /** Only RTP sent from these ports (inclusive), e.g. one load generator's calls. */
  callerPorts?: [number, number];
  /** TCP port of the AI server. */
  aiPort: number;
  /** Windows to report, ms since the epoch: name -> [start, end]. */
  windows: Record<string, [number, number]>;
}

export interface LatencyFigures {
  packets: number;
  p50Ms: number | null;
  p90Ms: number | null;
  p99Ms: number | null;
  maxMs: number | null;
}

export interface UplinkCaptureReport {
  rtpStreams: number;
  wsConnections: number;
  paired: number;
  bursts: number;
  /** Bursts left out because their end did not line up (samples dropped or inserted). */
  slipped: number;
  windows: Record<string, LatencyFigures>;
}

interface Burst {
  /** First and last loud sample (stream sample index). */
  on: number;
  off: number;
  hz: number;
}

interface RtpStream {
  packets: { tUs: number; ts: number; pcm: Int16Array }[];
  bursts: Burst[];
}

interface WsStream {
  /** Cumulative end sample of each append, and its capture time. */
  ends: number[];
  tUs: number[];
  pcm: Int16Array[];
  bursts: Burst[];
}

/**
 * Bursts in a sample stream given as chunks (in order): loud runs separated by at least QUIET_MS of
 * quiet. A burst cut by the start or the end of the capture is left out.
 */
export function findBursts(chunks: { start: number; pcm: Int16Array }[], rate: number): Burst[] {
  const quiet = (QUIET_MS * rate) / 1000;
  const out: Burst[] = [];
  if (chunks.length === 0) return out;
  const first = chunks[0]!.start;
  const last = chunks[chunks.length - 1]!.start + chunks[chunks.length - 1]!.pcm.length;
  let cur: { on: number; off: number; crossings: number; lastSign: number } | undefined;
  for (const c of chunks) {
    for (let i = 0; i < c.pcm.length; i++) {
      const n = c.start + i;
      const x = c.pcm[i]!;
      if (cur && n - cur.off > quiet) {
        if (cur.on - first > quiet) out.push(finish(cur, rate));
        cur = undefined;
      }
      if (Math.abs(x) >= LOUD) {
        if (!cur) cur = { on: n, off: n, crossings: 0, lastSign: Math.sign(x) };
        cur.off = n;
      }
      if (cur && x !== 0) {
        const s = Math.sign(x);
        if (s !== cur.lastSign) cur.crossings++;
        cur.lastSign = s;
      }
    }
  }
  if (cur && cur.on - first > quiet && last - cur.off > quiet) out.push(finish(cur, rate));
  return out;
}

function finish(b: { on: number; off: number; crossings: number }, rate: number): Burst {
  const secs = Math.max(1, b.off - b.on) / rate;
  return { on: b.on, off: b.off, hz: b.crossings / 2 / secs };
}

function quantile(sorted: number[], q: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

const inRange = (p: number, r: [number, number] | undefined): boolean => r === undefined || (p >= r[0] && p <= r[1]);

/** The uplink figures of a capture. */
export function uplinkFromCapture(packets: Packet[], o: UplinkCaptureOptions): UplinkCaptureReport {
  const rtp = new Map<string, RtpStream>();
  const ws = new Map<string, WsStream>();
  const tcp = new Map<string, TcpStream>();
  for (const p of packets) {
    if (p.proto === 'udp' && p.dport % 2 === 0 && inRange(p.dport, o.rtpPorts) && inRange(p.sport, o.callerPorts)) {
      // RTP version 2, payload type 0 (PCMU), no CSRC or extension: what the callers send.
      const b = p.payload;
      if (b.length < 12 + 1 || b[0] !== 0x80 || (b[1]! & 0x7f) !== 0) continue;
      const key = flowKey(p);
      let s = rtp.get(key);
      if (!s) rtp.set(key, (s = { packets: [], bursts: [] }));
      s.packets.push({ tUs: p.tUs, ts: b.readUInt32BE(4), pcm: decodeMuLaw(b.subarray(12)) });
    } else if (p.proto === 'tcp' && p.dport === o.aiPort) {
      const key = flowKey(p);
      let t = tcp.get(key);
      if (!t) {
        const w: WsStream = { ends: [], tUs: [], pcm: [], bursts: [] };
        ws.set(key, w);
        const frames = new WsClientFrames((m) => onAppend(w, m.opcode, m.payload, m.tUs), { fromStart: false });
        tcp.set(key, (t = new TcpStream((data, tUs) => frames.push(data, tUs))));
      }
      t.push(p);
    }
  }
  for (const t of tcp.values()) t.flush();

  // RTP timestamps are the sample index (unwrapped from the first packet of the stream).
  for (const s of rtp.values()) {
    s.packets.sort((a, b) => a.tUs - b.tUs);
    const ts0 = s.packets[0]?.ts ?? 0;
    const chunks = s.packets.map((k) => ({ start: (k.ts - ts0) >>> 0, pcm: k.pcm }));
    s.packets.forEach((k, i) => (k.ts = chunks[i]!.start));
    chunks.sort((a, b) => a.start - b.start);
    s.bursts = findBursts(chunks, 8000);
  }
  for (const w of ws.values()) {
    w.bursts = findBursts(
      w.pcm.map((pcm, i) => ({ start: w.ends[i]! - pcm.length, pcm })),
      24000,
    );
  }

  // Pair each stream with a connection of the same frequency (within 3 Hz): of those, the one whose
  // bursts follow the stream's most closely (other calls may share a frequency).
  const hzOf = (b: Burst[]): number | undefined => {
    const hz = b.filter((x) => x.off - x.on > 0).map((x) => x.hz).sort((a, c) => a - c);
    return hz.length ? hz[Math.floor(hz.length / 2)] : undefined;
  };
  const pairs: { r: RtpStream; w: WsStream }[] = [];
  const free = new Set([...ws.values()].map((w) => ({ w, hz: hzOf(w.bursts) })));
  for (const r of rtp.values()) {
    const hz = hzOf(r.bursts);
    if (hz === undefined) continue;
    let best: { c: { w: WsStream; hz: number | undefined }; lagUs: number } | undefined;
    for (const c of free) {
      if (c.hz === undefined || Math.abs(c.hz - hz) > 3) continue;
      const lags: number[] = [];
      for (const b of r.bursts) {
        const t = packetTimeOf(r, b.on);
        const next = t === undefined ? undefined : c.w.bursts.map((x) => appendTimeOf(c.w, x.on)!).find((x) => x >= t);
        if (t !== undefined && next !== undefined) lags.push(next - t);
      }
      if (lags.length === 0) continue;
      lags.sort((a, b2) => a - b2);
      const lagUs = lags[Math.floor(lags.length / 2)]!;
      if (!best || lagUs < best.lagUs) best = { c, lagUs };
    }
    if (best) {
      free.delete(best.c);
      pairs.push({ r, w: best.c.w });
    }
  }

  const lat = new Map<string, number[]>(Object.keys(o.windows).map((k) => [k, []]));
  let bursts = 0;
  let slipped = 0;
  for (const { r, w } of pairs) {
    // Each RTP burst goes with the first connection burst that starts after it.
    let j = 0;
    for (const b of r.bursts) {
      const startUs = packetTimeOf(r, b.on);
      if (startUs === undefined) continue;
      while (j < w.bursts.length && appendTimeOf(w, w.bursts[j]!.on)! < startUs) j++;
      const wb = w.bursts[j];
      if (!wb) break;
      bursts++;
      if (Math.abs(wb.off - wb.on - 3 * (b.off - b.on)) > END_SLACK) {
        slipped++;
        continue;
      }
      for (const k of r.packets) {
        const last = k.ts + k.pcm.length - 1;
        if (last < b.on || k.ts > b.off) continue;
        const t = appendTimeOf(w, wb.on + 3 * (last - b.on));
        if (t === undefined) continue;
        const ms = (t - k.tUs) / 1000;
        for (const [name, [t0, t1]] of Object.entries(o.windows)) {
          if (k.tUs / 1000 >= t0 && k.tUs / 1000 <= t1) lat.get(name)!.push(ms);
        }
      }
      j++;
    }
  }
  const windows: Record<string, LatencyFigures> = {};
  for (const [name, v] of lat) {
    v.sort((a, b) => a - b);
    const r1 = (x: number | null): number | null => (x === null ? null : Math.round(x * 10) / 10);
    windows[name] = { packets: v.length, p50Ms: r1(quantile(v, 0.5)), p90Ms: r1(quantile(v, 0.9)), p99Ms: r1(quantile(v, 0.99)), maxMs: r1(v.length ? v[v.length - 1]! : null) };
  }
  return { rtpStreams: rtp.size, wsConnections: ws.size, paired: pairs.length, bursts, slipped, windows };
}

function onAppend(w: WsStream, opcode: number, payload: Buffer, tUs: number): void {
  if (opcode !== 1) return;
  let ev: { type?: unknown; audio?: unknown };
  try {
    ev = JSON.parse(payload.toString('utf8')) as { type?: unknown; audio?: unknown };
  } catch {
    return;
  }
  if (ev.type !== 'input_audio_buffer.append' || typeof ev.audio !== 'string') return;
  const bytes = Buffer.from(ev.audio, 'base64');
  const pcm = new Int16Array(bytes.length >> 1);
  for (let i = 0; i < pcm.length; i++) pcm[i] = bytes.readInt16LE(2 * i);
  const prev = w.ends.length ? w.ends[w.ends.length - 1]! : 0;
  w.ends.push(prev + pcm.length);
  w.tUs.push(tUs);
  w.pcm.push(pcm);
}

/** Capture time of the RTP packet holding sample `n`. */
function packetTimeOf(r: RtpStream, n: number): number | undefined {
  for (const k of r.packets) if (n >= k.ts && n < k.ts + k.pcm.length) return k.tUs;
  return undefined;
}

/** Capture time of the append holding sample `n` (binary search over the cumulative ends). */
function appendTimeOf(w: WsStream, n: number): number | undefined {
  let lo = 0;
  let hi = w.ends.length - 1;
  if (hi < 0 || n >= w.ends[hi]!) return undefined;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (w.ends[mid]! > n) hi = mid;
    else lo = mid + 1;
  }
  return w.tUs[lo];
}
