/**
 * A minimal RTP peer for tests that need to shape the media stream itself (what pjsua and baresip
 * cannot be told to do): PCMU (payload type 0) in 20 ms packets, paced in real time, with the
 * SSRC, sequence number and timestamp under the test's control; and a receiver that decodes
 * what arrives, in arrival order. Loopback only; bounded by what the test sends.
 */
import * as dgram from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { decodeMuLaw, encodeMuLaw } from '../../src/audio/g711';
import { LOOPBACK } from './ports';
import { delay } from './proc';

const FRAME = 160;

/** One RTP source: its SSRC, next sequence number and timestamp. */
export interface RtpSource {
  ssrc: number;
  seq: number;
  ts: number;
}

/** A fresh source with random SSRC, sequence and timestamp (RFC 3550 5.1). */
export function newSource(): RtpSource {
  const r = randomBytes(10);
  return { ssrc: r.readUInt32BE(0), seq: r.readUInt16BE(4), ts: r.readUInt32BE(6) };
}

/** One PCMU packet of 160 samples from `src` (advancing it). */
export function pcmuPacket(src: RtpSource, pcm: Int16Array, marker = false): Buffer {
  const head = Buffer.alloc(12);
  head[0] = 0x80;
  head[1] = (marker ? 0x80 : 0) | 0;
  head.writeUInt16BE(src.seq & 0xffff, 2);
  head.writeUInt32BE(src.ts >>> 0, 4);
  head.writeUInt32BE(src.ssrc >>> 0, 8);
  src.seq = (src.seq + 1) & 0xffff;
  src.ts = (src.ts + FRAME) >>> 0;
  return Buffer.concat([head, Buffer.from(encodeMuLaw(pcm))]);
}

/** An RTP endpoint on 127.0.0.1: sends PCMU to a peer, collects what arrives. */
export class RtpPeer {
  readonly port: number;
  /** Received payloads decoded to PCM, in arrival order (PCMU only). */
  readonly received: Int16Array[] = [];
  /** When each of them arrived (Date.now()). */
  readonly receivedAt: number[] = [];
  /** SSRCs seen in what arrived. */
  readonly ssrcs = new Set<number>();
  readonly #sock: dgram.Socket;

  private constructor(sock: dgram.Socket) {
    this.#sock = sock;
    this.port = sock.address().port;
    sock.on('message', (b) => {
      if (b.length < 12 || (b[0]! & 0xc0) !== 0x80 || (b[1]! & 0x7f) !== 0) return;
      this.ssrcs.add(b.readUInt32BE(8));
      const cc = b[0]! & 0x0f;
      this.received.push(decodeMuLaw(new Uint8Array(b.subarray(12 + 4 * cc))));
      this.receivedAt.push(Date.now());
    });
    sock.on('error', () => undefined);
  }

  static async open(port = 0): Promise<RtpPeer> {
    const sock = dgram.createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject);
      sock.bind(port, LOOPBACK, () => resolve());
    });
    return new RtpPeer(sock);
  }

  /**
   * Send `pcm` (8 kHz) from `src` to `to` in 20 ms packets, paced against the wall clock. The first
   * packet has the marker bit (a talkspurt starts) unless `continues` says the stream goes on.
   */
  async play(src: RtpSource, pcm: Int16Array, to: { host: string; port: number }, continues = false): Promise<void> {
    const t0 = Date.now();
    for (let i = 0, k = 0; i + FRAME <= pcm.length; i += FRAME, k++) {
      const wait = t0 + k * 20 - Date.now();
      if (wait > 0) await delay(wait);
      this.#sock.send(pcmuPacket(src, pcm.subarray(i, i + FRAME), k === 0 && !continues), to.port, to.host);
    }
  }

  /** What was received (between `from` and `to`, Date.now() times) as one PCM stream. */
  heard(from = 0, to = Infinity): Int16Array {
    const parts = this.received.filter((_, i) => this.receivedAt[i]! >= from && this.receivedAt[i]! < to);
    const n = parts.reduce((a, p) => a + p.length, 0);
    const out = new Int16Array(n);
    let o = 0;
    for (const p of parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  }

  close(): void {
    this.#sock.close();
  }
}
