/**
 * Helpers for tests that drive the real addon in-process: start a UserAgent on loopback, collect a
 * call's received PCM, generate tones.
 */
import { loadNativeBinding } from '../../src/native/binding';
import { silentLogger } from '../../src/logging/logger';
import { UserAgent } from '../../src/sip/UserAgent';
import type { SipCall } from '../../src/sip/SipCall';
import type { UserAgentOptions } from '../../src/sip/types';

/** Start a UserAgent on 127.0.0.1 (UDP, any port) with the given overrides. */
export async function startAgent(opts: UserAgentOptions = {}): Promise<UserAgent> {
  return UserAgent.start(
    loadNativeBinding(),
    { udp: { bindAddress: '127.0.0.1', port: 0 }, pjLogLevel: 2, ...opts, media: { rtpBindAddress: '127.0.0.1', ...opts.media } },
    silentLogger(),
  );
}

/** `sip:user@127.0.0.1:port` for the agent's UDP transport. */
export function agentUri(ua: UserAgent, user = 'agent'): string {
  return `sip:${user}@${ua.transports.udp}`;
}

/** Collects every PCM batch a call receives (bounded to maxMs). */
export class PcmCollector {
  #chunks: Int16Array[] = [];
  #samples = 0;
  readonly #max: number;
  constructor(call: SipCall, maxMs = 30000) {
    this.#max = (call.sampleRate * maxMs) / 1000;
    call.on('audio', (pcm) => {
      if (this.#samples >= this.#max) return;
      this.#chunks.push(pcm.slice());
      this.#samples += pcm.length;
    });
  }
  get samples(): number {
    return this.#samples;
  }
  pcm(): Int16Array {
    const out = new Int16Array(this.#samples);
    let o = 0;
    for (const c of this.#chunks) {
      out.set(c, o);
      o += c.length;
    }
    return out;
  }
}

/** Resolve after ms. */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Poll `fn` until it returns truthy or the timeout passes; resolves with its value. */
export async function until<T>(fn: () => T | undefined | null | false, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}
