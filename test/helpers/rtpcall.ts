/**
 * A raw SIP/RTP caller's moves in the daemon end-to-end tests: dial the agent with a PCMU offer,
 * say a tone then keep the line open with silence (RTP paced in real time), and hold the line
 * until the agent sends BYE. `useCallers()` closes every caller (and its daemon) after each test.
 */
import type { Daemon } from './daemon';
import type { ReceivedSip, UacDialog } from './rawsip';
import { RawSipClient, pcmuOffer, sdpAudioAddress } from './rawsip';
import { RtpPeer, type RtpSource } from './rtp';
import { sine } from './tone';

/** Where the agent wants its RTP. */
export type RtpAddress = { host: string; port: number };

/** INVITE the agent on 127.0.0.1:`sipPort` offering PCMU at `rtp`; rejects unless it answers 200. */
export async function dialPcmu(sip: RawSipClient, sipPort: number, rtp: RtpPeer): Promise<{ dlg: UacDialog; to: RtpAddress }> {
  const dlg = await sip.invite({ target: { host: '127.0.0.1', port: sipPort }, body: pcmuOffer(rtp.port) });
  if (dlg.final.status !== 200) throw new Error(`the agent did not answer the INVITE [status:${dlg.final.status}]`);
  return { dlg, to: sdpAudioAddress(dlg.final.bodyText) };
}

/** Say a tone of `ms` at 8 kHz, then `silenceMs` of silence. */
export async function sayTone(rtp: RtpPeer, src: RtpSource, to: RtpAddress, hz: number, ms: number, silenceMs: number): Promise<void> {
  await rtp.play(src, sine(hz, ms, 8000, 0.4), to);
  await rtp.play(src, sine(0, silenceMs, 8000, 0.4), to);
}

/** Keep sending silence until the agent's BYE arrives (resolves with it) or `timeoutMs` passes (undefined). */
export function holdUntilBye(dlg: UacDialog, rtp: RtpPeer, src: RtpSource, to: RtpAddress, timeoutMs: number): Promise<ReceivedSip | undefined> {
  return Promise.race([
    dlg.waitForRequest('BYE', timeoutMs),
    (async () => {
      await sayTone(rtp, src, to, 0, 0, timeoutMs);
      return undefined;
    })(),
  ]);
}

/** Closers of what the running test opened, run after it (newest first) whatever happened. */
const closers: (() => Promise<void>)[] = [];

/** Install the after-each close of every caller opened with {@link openCaller}. */
export function useCallers(): void {
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close().catch(() => undefined);
  });
}

/** Close `close` after the running test (with the callers; needs {@link useCallers}). */
export function closeAfterTest(close: () => Promise<void>): void {
  closers.push(close);
}

/** A raw SIP client and an RTP peer calling daemon `d`; they and `d` are closed after the test. */
export async function openCaller(d: Daemon): Promise<{ sip: RawSipClient; rtp: RtpPeer }> {
  const sip = await RawSipClient.open();
  const rtp = await RtpPeer.open();
  closers.push(async () => {
    rtp.close();
    sip.close();
    await d.close();
  });
  return { sip, rtp };
}
