/**
 * Capacity load generator: one process, one SIP UserAgent, one account, N concurrent calls to a
 * target. Each call "speaks" a speech-like pattern (a 1 s tone burst every 4 s, phases staggered
 * across calls so server VAD sees turns at different times) and analyses what it hears in 20 ms
 * frames: replies heard, gaps inside a reply (quiet frames between loud ones), frames received
 * against the wall clock, reply latency after each burst. A reply the call talked over that stops
 * and is followed within the gap limit by the answer to the interruption is two replies, not one
 * with a gap: those are counted apart (`cutJoins`, `cutJoinFrames`). With `--barge-every K`, every K-th reply
 * is interrupted: 300 ms after it starts to be heard the call says a 400 ms burst over it (the
 * daemon's barge-in path: speech_started, flush, truncate).
 *
 * Run by bench/capacity.ts as a child (PJSIP is a process singleton):
 *   node dist/bench/capacity/loadgen.js --target sip:agent@127.0.0.1:5070 --calls 50 --rtp-start 30000
 * `--tone-step-hz S`: call i speaks at 440 + i*S Hz (default 0), so a packet capture can pair each
 * call's RTP stream with its WebSocket connection by frequency.
 * Control on stdin, one word a line: `mark` (start the measured window), `report` (print the
 * window's figures), `hangup` (hang up every call, print `done`, exit). Output: one JSON object
 * a line on stdout (`ev`: progress | ready | report | done | error).
 */
import * as readline from 'node:readline';
import { loadNativeBinding } from '../../src/native/binding';
import { createLogger } from '../../src/logging/logger';
import { UserAgent } from '../../src/sip/UserAgent';
import type { SipCall } from '../../src/sip/SipCall';

const RATE = 8000;
const FRAME = 160;
const FRAME_MS = 20;
/** -40 dBFS: a frame louder than this is audio, quieter is silence. */
const LOUD_RMS = 328;
/** A quiet run longer than this ends a reply; shorter runs between loud frames are gaps. */
const MAX_GAP_FRAMES = 15;
const BURST_MS = 1000;
const PERIOD_MS = 4000;
const BURST_HZ = 440;
/** The interruption: said this long after a reply starts to be heard, for this long. */
const BARGE_AFTER_MS = 300;
const BARGE_MS = 400;
const BARGE_HZ = 660;
/** Placing rate: one INVITE every this many ms (default; --spacing-ms). */
const CALL_SPACING_MS = 25;

/** Options from argv. */
interface Options {
  target: string;
  calls: number;
  rtpStart: number;
  connectTimeoutMs: number;
  /** Interrupt every K-th reply (0: never). */
  bargeEvery: number;
  /** One INVITE every this many ms. */
  spacingMs: number;
  /** Call i speaks at BURST_HZ + i * toneStepHz (0: all at BURST_HZ), so a capture tells calls apart. */
  toneStepHz: number;
}

function parseArgs(argv: string[]): Options {
  const get = (name: string): string | undefined => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const target = get('--target');
  const calls = Number(get('--calls') ?? 10);
  const rtpStart = Number(get('--rtp-start') ?? 30000);
  const connectTimeoutMs = Number(get('--connect-timeout-ms') ?? 60000);
  const bargeEvery = Number(get('--barge-every') ?? 0);
  const spacingMs = Number(get('--spacing-ms') ?? CALL_SPACING_MS);
  const toneStepHz = Number(get('--tone-step-hz') ?? 0);
  if (!(toneStepHz >= 0 && toneStepHz * calls <= 3000)) throw new TypeError(`--tone-step-hz must keep every tone under 3.4 kHz [value:${toneStepHz}]`);
  if (!Number.isInteger(bargeEvery) || bargeEvery < 0) throw new TypeError(`--barge-every must be an integer >= 0 [value:${bargeEvery}]`);
  if (!target || !/^sips?:/.test(target)) throw new TypeError(`--target must be a SIP URI [target:${target ?? ''}]`);
  if (!Number.isInteger(calls) || calls < 1 || calls > 500) throw new TypeError(`--calls must be 1..500 [calls:${calls}]`);
  if (!(spacingMs >= 0)) throw new TypeError(`--spacing-ms must be >= 0 [value:${spacingMs}]`);
  return { target, calls, rtpStart, connectTimeoutMs, bargeEvery, spacingMs, toneStepHz };
}

/** A burst the caller says: `ms` of a tone with 10 ms ramps. */
function burst(ms = BURST_MS, hz = BURST_HZ): Int16Array {
  const n = (ms * RATE) / 1000;
  const out = new Int16Array(n);
  for (let i = 0; i < n; i++) {
    const ramp = Math.min(1, i / 80, (n - i) / 80);
    out[i] = Math.round(Math.sin((2 * Math.PI * hz * i) / RATE) * 0.3 * 32767 * ramp);
  }
  return out;
}

/** What one call heard; the window counters reset on `mark`. */
class Listener {
  /** Samples not yet forming a full frame. */
  readonly #carry = new Int16Array(FRAME);
  #carried = 0;
  #inReply = false;
  #quietRun = 0;
  frames = 0;
  loudFrames = 0;
  replies = 0;
  gapFrames = 0;
  gapEvents = 0;
  /** Talked-over replies that stopped and were followed by the next reply within MAX_GAP_FRAMES, and the quiet between. */
  cutJoins = 0;
  cutJoinFrames = 0;
  /** The interruption was said during the current reply. */
  barged = false;
  /** End of the last burst we said (ms, wall clock), for reply latency. */
  lastBurstEnd = 0;
  readonly latenciesMs: number[] = [];
  /** Called when a reply starts to be heard. */
  onReplyStart: (() => void) | undefined;

  mark(): void {
    this.frames = 0;
    this.loudFrames = 0;
    this.replies = 0;
    this.gapFrames = 0;
    this.gapEvents = 0;
    this.cutJoins = 0;
    this.cutJoinFrames = 0;
    this.latenciesMs.length = 0;
  }

  push(pcm: Int16Array): void {
    let i = 0;
    while (i < pcm.length) {
      const take = Math.min(FRAME - this.#carried, pcm.length - i);
      this.#carry.set(pcm.subarray(i, i + take), this.#carried);
      this.#carried += take;
      i += take;
      if (this.#carried === FRAME) {
        this.#frame(this.#carry);
        this.#carried = 0;
      }
    }
  }

  #frame(f: Int16Array): void {
    this.frames++;
    let sum = 0;
    for (let j = 0; j < FRAME; j++) sum += f[j] * f[j];
    const loud = Math.sqrt(sum / FRAME) > LOUD_RMS;
    if (loud) {
      this.loudFrames++;
      if (this.#inReply && this.#quietRun > 0 && this.barged) {
        // The agent stopped for the interruption, and what follows is its answer to it.
        this.cutJoins++;
        this.cutJoinFrames += this.#quietRun;
        this.#inReply = false;
      }
      if (!this.#inReply) {
        this.#inReply = true;
        this.barged = false;
        this.replies++;
        this.onReplyStart?.();
        if (this.lastBurstEnd > 0 && this.latenciesMs.length < 1000) {
          const lat = Date.now() - this.lastBurstEnd;
          if (lat >= 0 && lat < PERIOD_MS) this.latenciesMs.push(lat);
        }
      } else if (this.#quietRun > 0) {
        this.gapFrames += this.#quietRun;
        this.gapEvents++;
      }
      this.#quietRun = 0;
    } else if (this.#inReply) {
      this.#quietRun++;
      if (this.#quietRun > MAX_GAP_FRAMES) {
        this.#inReply = false;
        this.#quietRun = 0;
      }
    }
  }
}

function out(obj: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function percentile(sorted: number[], p: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

interface Leg {
  index: number;
  call: SipCall;
  heard: Listener;
  nextBurstAt: number;
  rxDroppedAtMark: number;
  txUnderrunsAtMark: number;
  /** Main bursts said so far; when to say the interruption (0: none planned); whether the last thing said was one. */
  turns: number;
  bargeAt: number;
  lastWasBarge: boolean;
  barges: number;
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv);
  const logger = createLogger({ level: 'error' });
  const ua = await UserAgent.start(
    loadNativeBinding(),
    {
      udp: { bindAddress: '127.0.0.1', port: 0 },
      tcp: false,
      media: { clockRate: RATE, codecs: ['PCMU', 'PCMA'], rtpBindAddress: '127.0.0.1', rtpPortStart: o.rtpStart, rtpPortRange: 2 * o.calls + 20 },
      pjLogLevel: 1,
      maxCalls: o.calls + 4,
    },
    logger.child({ mod: 'loadgen' }),
  );
  const acc = await ua.addAccount({ uri: 'sip:loadgen@127.0.0.1', isDefault: true });
  const tones = new Map<number, Int16Array>();
  const toneOf = (index: number): Int16Array => {
    const hz = BURST_HZ + index * o.toneStepHz;
    let t = tones.get(hz);
    if (!t) tones.set(hz, (t = burst(BURST_MS, hz)));
    return t;
  };
  const interruption = burst(BARGE_MS, BARGE_HZ);
  const legs: Leg[] = [];
  let failed = 0;
  let endedEarly = 0;
  const failures: string[] = [];
  const t0 = Date.now();
  let stopping = false;

  const place = async (index: number): Promise<void> => {
    let call: SipCall;
    try {
      call = await ua.call(acc, o.target);
    } catch (err) {
      failed++;
      if (failures.length < 5) failures.push(err instanceof Error ? err.message : String(err));
      return;
    }
    const leg: Leg = {
      index,
      call,
      heard: new Listener(),
      nextBurstAt: 0,
      rxDroppedAtMark: 0,
      txUnderrunsAtMark: 0,
      turns: 0,
      bargeAt: 0,
      lastWasBarge: false,
      barges: 0,
    };
    leg.heard.onReplyStart = () => {
      // Only replies to a main burst, so an interruption's own reply is not interrupted again.
      if (o.bargeEvery > 0 && !leg.lastWasBarge && leg.turns > 0 && leg.turns % o.bargeEvery === 0 && leg.bargeAt === 0) {
        leg.bargeAt = Date.now() + BARGE_AFTER_MS;
      }
    };
    call.on('audio', (pcm) => leg.heard.push(pcm));
    call.on('ended', (end) => {
      if (!stopping) {
        endedEarly++;
        if (failures.length < 5) failures.push(`call ${index} ended [sip:${end.sipCode}, reason:${end.reason}]`);
      }
    });
    try {
      await call.waitForState('confirmed', o.connectTimeoutMs);
      // Stagger the speaking phases evenly over the period.
      leg.nextBurstAt = Date.now() + 1000 + Math.floor((index * PERIOD_MS) / o.calls);
      legs.push(leg);
    } catch {
      failed++;
      if (failures.length < 5) failures.push(`call ${index} not confirmed [sip:${call.end?.sipCode ?? 0}, reason:${call.end?.reason ?? 'timeout'}]`);
    }
  };

  const speaker = setInterval(() => {
    const now = Date.now();
    for (const leg of legs) {
      if (leg.call.ended) continue;
      if (leg.bargeAt > 0 && now >= leg.bargeAt) {
        leg.bargeAt = 0;
        leg.call.writeAudio(interruption);
        leg.heard.barged = true;
        leg.lastWasBarge = true;
        leg.barges++;
      }
      if (now < leg.nextBurstAt) continue;
      leg.call.writeAudio(toneOf(leg.index));
      leg.heard.lastBurstEnd = now + BURST_MS;
      leg.nextBurstAt += PERIOD_MS;
      leg.turns++;
      leg.lastWasBarge = false;
    }
  }, 20);

  const pending: Promise<void>[] = [];
  for (let i = 0; i < o.calls; i++) {
    pending.push(place(i));
    if (i % 10 === 9) out({ ev: 'progress', placed: i + 1, connected: legs.length, failed });
    await sleep(o.spacingMs);
  }
  await Promise.all(pending);
  out({ ev: 'ready', connected: legs.length, failed, setupMs: Date.now() - t0, failures });

  let markAt = Date.now();
  const rl = readline.createInterface({ input: process.stdin });
  const finish = async (): Promise<void> => {
    stopping = true;
    clearInterval(speaker);
    await Promise.all(legs.map((l) => (l.call.ended ? undefined : l.call.hangup().catch(() => undefined))));
    const deadline = Date.now() + 10000;
    while (legs.some((l) => !l.call.ended) && Date.now() < deadline) await sleep(100);
    out({ ev: 'done', stillUp: legs.filter((l) => !l.call.ended).length });
    rl.close();
    await ua.close().catch(() => undefined);
    process.exit(0);
  };
  rl.on('line', (line) => {
    const cmd = line.trim();
    if (cmd === 'mark') {
      markAt = Date.now();
      for (const l of legs) {
        l.heard.mark();
        l.barges = 0;
        const s = l.call.audioStats();
        l.rxDroppedAtMark = s?.rxDroppedSamples ?? 0;
        l.txUnderrunsAtMark = s?.txUnderruns ?? 0;
      }
      out({ ev: 'marked' });
    } else if (cmd === 'report') {
      const windowMs = Date.now() - markAt;
      const expected = (windowMs / FRAME_MS) * legs.length;
      let frames = 0;
      let replies = 0;
      let gapFrames = 0;
      let gapEvents = 0;
      let callsWithGaps = 0;
      let cutJoins = 0;
      let cutJoinFrames = 0;
      let rxDropped = 0;
      let txUnderruns = 0;
      let up = 0;
      let barges = 0;
      const lat: number[] = [];
      for (const l of legs) {
        if (!l.call.ended) up++;
        barges += l.barges;
        frames += l.heard.frames;
        replies += l.heard.replies;
        gapFrames += l.heard.gapFrames;
        gapEvents += l.heard.gapEvents;
        if (l.heard.gapEvents > 0) callsWithGaps++;
        cutJoins += l.heard.cutJoins;
        cutJoinFrames += l.heard.cutJoinFrames;
        lat.push(...l.heard.latenciesMs);
        const s = l.call.audioStats();
        if (s) {
          rxDropped += s.rxDroppedSamples - l.rxDroppedAtMark;
          txUnderruns += s.txUnderruns - l.txUnderrunsAtMark;
        }
      }
      lat.sort((a, b) => a - b);
      out({
        ev: 'report',
        windowMs,
        callsUp: up,
        endedEarly,
        rxFrames: frames,
        rxFramesExpected: Math.round(expected),
        replies,
        gapFrames,
        gapEvents,
        callsWithGaps,
        cutJoins,
        cutJoinFrames,
        ownRxDroppedSamples: rxDropped,
        ownTxUnderruns: txUnderruns,
        replyLatencyP50Ms: percentile(lat, 50),
        replyLatencyP95Ms: percentile(lat, 95),
        barges,
        failures,
      });
    } else if (cmd === 'hangup') {
      void finish();
    }
  });
  rl.on('close', () => {
    if (!stopping) void finish();
  });
}

main().catch((err: unknown) => {
  out({ ev: 'error', message: err instanceof Error ? err.message : String(err) });
  process.exit(1);
});
