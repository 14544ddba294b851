/**
 * The built-in test caller (`sip-ai-agent test-call`): a second SIP user agent in this process
 * calls the agent, listens to the greeting, says something (a three-tone phrase), listens to the
 * answer, hangs up and prints what happened. With `ai.provider: echo` the answer is our own phrase
 * played back through the whole audio path (resamplers included), which proves SIP, RTP and audio
 * without any AI account.
 */
import { loadNativeBinding } from '../native/binding';
import { createLogger, type LogLevel } from '../logging/logger';
import { UserAgent } from '../sip/UserAgent';
import type { SipCall } from '../sip/SipCall';
import { loadConfig } from '../config';
import { EXIT_FAILURE, EXIT_OK } from './exitCodes';

/** Options of {@link runTestCall}. */
export interface TestCallOptions {
  configPath?: string;
  target?: string;
  /** Longest time on the call, s. */
  seconds?: number;
  logLevel?: LogLevel;
  /** Where the report goes (default stdout). */
  out?: (line: string) => void;
}

const RATE = 8000;
const FRAME = 160;
const PHRASE_HZ = [500, 700, 900];

/** Tones of the phrase the caller "says": 3 × 400 ms. */
function phrase(): Int16Array {
  const seg = 0.4 * RATE;
  const out = new Int16Array(seg * PHRASE_HZ.length);
  PHRASE_HZ.forEach((hz, k) => {
    for (let i = 0; i < seg; i++) {
      const ramp = Math.min(1, i / 80, (seg - i) / 80);
      out[k * seg + i] = Math.round(Math.sin((2 * Math.PI * hz * i) / RATE) * 0.3 * 32767 * ramp);
    }
  });
  return out;
}

/** Goertzel power of `hz` in pcm, normalised to amplitude. */
function toneLevel(pcm: Int16Array, hz: number): number {
  if (pcm.length === 0) return 0;
  const k = 2 * Math.cos((2 * Math.PI * hz) / RATE);
  let s1 = 0;
  let s2 = 0;
  for (let i = 0; i < pcm.length; i++) {
    const s0 = pcm[i] / 32768 + k * s1 - s2;
    s2 = s1;
    s1 = s0;
  }
  const power = s1 * s1 + s2 * s2 - k * s1 * s2;
  return (2 * Math.sqrt(Math.max(power, 0))) / pcm.length;
}

/** The agent's address from the config: the UDP transport (loopback when bound to all). */
function targetFromConfig(configPath: string): string {
  const cfg = loadConfig(configPath, { checkFiles: false });
  const udp = cfg.sip.transports.udp;
  const host = !udp.bindAddress || udp.bindAddress === '0.0.0.0' ? '127.0.0.1' : udp.bindAddress;
  const user = cfg.accounts[0]?.uri.replace(/^sips?:/, '').split('@')[0] ?? 'agent';
  return `sip:${user}@${host}:${udp.port}`;
}

interface Heard {
  pcm: Int16Array;
  samples: number;
}

/** Call the agent and report; resolves with the exit code. */
export async function runTestCall(o: TestCallOptions): Promise<number> {
  const out = o.out ?? ((l: string) => process.stdout.write(`${l}\n`));
  const target = o.target ?? (o.configPath ? targetFromConfig(o.configPath) : 'sip:agent@127.0.0.1:5060');
  const seconds = Math.max(5, Math.min(120, o.seconds ?? 12));
  const logger = createLogger({ level: o.logLevel ?? 'warn' });
  const ua = await UserAgent.start(
    loadNativeBinding(),
    { udp: { bindAddress: '127.0.0.1', port: 0 }, media: { clockRate: RATE, codecs: ['PCMU', 'PCMA'], rtpBindAddress: '127.0.0.1', rtpPortStart: 40000 }, pjLogLevel: 1 },
    logger.child({ mod: 'test-caller' }),
  );
  const t0 = Date.now();
  const ms = (): string => `${((Date.now() - t0) / 1000).toFixed(2)} s`;
  try {
    const acc = await ua.addAccount({ uri: 'sip:test-caller@127.0.0.1', isDefault: true });
    out(`test call: calling ${target}`);
    const call = await ua.call(acc, target, { headers: { 'X-Test-Call': 'sip-ai-agent' } });
    const heard: Heard = { pcm: new Int16Array(RATE * (seconds + 2)), samples: 0 };
    call.on('audio', (pcm) => {
      const n = Math.min(pcm.length, heard.pcm.length - heard.samples);
      heard.pcm.set(pcm.subarray(0, n), heard.samples);
      heard.samples += n;
    });
    const ended = call.waitFor('ended', seconds * 1000 + 20_000);
    try {
      await call.waitForState('confirmed', 15_000);
    } catch {
      const end = call.end;
      out(`test call: FAILED: not answered${end ? ` (SIP ${end.sipCode} ${end.reason})` : ''}`);
      await call.hangup().catch(() => undefined);
      return EXIT_FAILURE;
    }
    out(`test call: answered after ${ms()}${call.media ? ` (${call.media.codec})` : ''}`);
    const result = await converse(call, heard, seconds, out, ms);
    if (!call.ended) await call.hangup().catch(() => undefined);
    const [end] = await ended.catch(() => [call.end]);
    out(`test call: ended after ${ms()}${end ? ` (${end.by === 'local' ? 'we hung up' : 'the agent hung up'}, SIP ${end.sipCode})` : ''}`);
    out(result.ok ? 'test call: OK' : `test call: FAILED: ${result.why}`);
    return result.ok ? EXIT_OK : EXIT_FAILURE;
  } finally {
    await ua.close();
  }
}

/** Speech segments in heard audio (20 ms frames above -40 dBFS). */
function activity(h: Heard, from: number): { start: number; end: number }[] {
  const spans: { start: number; end: number }[] = [];
  let cur: { start: number; end: number } | null = null;
  for (let i = from; i + FRAME <= h.samples; i += FRAME) {
    let sum = 0;
    for (let j = i; j < i + FRAME; j++) sum += h.pcm[j] * h.pcm[j];
    const loud = Math.sqrt(sum / FRAME) > 328; // -40 dBFS
    if (loud) {
      if (cur && i - cur.end <= RATE * 0.3) cur.end = i + FRAME;
      else spans.push((cur = { start: i, end: i + FRAME }));
    }
  }
  return spans;
}

async function converse(
  call: SipCall,
  heard: Heard,
  seconds: number,
  out: (l: string) => void,
  ms: () => string,
): Promise<{ ok: boolean; why?: string }> {
  const deadline = Date.now() + seconds * 1000;
  const sleep = (t: number): Promise<void> => new Promise((r) => setTimeout(r, t));
  // 1. The greeting (or opening line): wait for audio, then for 800 ms of quiet after it.
  while (Date.now() < deadline && !call.ended) {
    const spans = activity(heard, 0);
    const last = spans[spans.length - 1];
    if (last && heard.samples - last.end > RATE * 0.8) break;
    if (!last && Date.now() > deadline - seconds * 500) break;
    await sleep(100);
  }
  if (call.ended) return { ok: false, why: 'the agent hung up during the greeting' };
  const greeting = activity(heard, 0);
  const greetingMs = greeting.reduce((s, x) => s + x.end - x.start, 0) / (RATE / 1000);
  out(greetingMs > 0 ? `test call: heard the greeting (${(greetingMs / 1000).toFixed(1)} s of audio)` : 'test call: heard no greeting');
  // 2. Say the phrase.
  const said = heard.samples;
  const p = phrase();
  call.writeAudio(p);
  out(`test call: said a ${PHRASE_HZ.join('/')} Hz phrase (${(p.length / RATE).toFixed(1)} s) at ${ms()}`);
  // 3. Listen for the answer.
  const phraseEnd = said + p.length;
  let answer: { start: number; end: number } | undefined;
  while (Date.now() < deadline && !call.ended) {
    await sleep(100);
    const spans = activity(heard, phraseEnd);
    const last = spans[spans.length - 1];
    if (last && heard.samples - last.end > RATE * 1.0) {
      answer = { start: spans[0].start, end: last.end };
      break;
    }
  }
  if (!answer) {
    const spans = activity(heard, phraseEnd);
    if (spans.length) answer = { start: spans[0].start, end: spans[spans.length - 1].end };
  }
  if (!answer) return { ok: greetingMs > 0, why: 'no answer after the phrase' };
  const reply = heard.pcm.subarray(answer.start, answer.end);
  const after = (answer.start - phraseEnd) / (RATE / 1000);
  out(`test call: heard an answer of ${((answer.end - answer.start) / RATE).toFixed(1)} s, starting ${Math.max(0, after).toFixed(0)} ms after the phrase ended`);
  const echoed = PHRASE_HZ.every((hz) => toneLevel(reply, hz) > 0.02);
  out(echoed ? 'test call: the answer carries our phrase back (echo backend: audio path verified)' : 'test call: the answer is new audio (an AI reply)');
  return { ok: true };
}
