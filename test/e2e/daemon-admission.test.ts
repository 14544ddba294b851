/**
 * Who reaches the agent, against the real daemon over loopback: callers are told apart by their
 * source address (127.0.0.1 and 127.0.0.2 are different sources on Linux's loopback).
 *  - Admission by default: with no calls.allow a registration-less agent admits nobody (403),
 *    and a registrar's or proxy's resolved address is admitted without being listed.
 *  - The Request-URI user must name an account (404), and a source that is not admitted learns
 *    nothing about which users exist (403 first).
 *  - Per-source rate limits: an admitted source over its limit gets 503 with Retry-After, any
 *    other source gets no answer at all.
 *  - Refused calls write no record and are logged at most once per source per interval; every
 *    one is counted in /metrics by reason.
 */
import { LOOPBACK } from '../helpers/ports';
import { delay, onCleanup, useHarnessCleanup } from '../helpers/proc';
import { RawSipClient, sipToken, type SipHostPort, type SipMessage } from '../helpers/rawsip';
import { assertBuilt, eventually, listRecords, prepareDaemon, sampleValue, scrape, startDaemon, type ConfigTree, type Daemon, type DaemonSetup } from '../helpers/daemon';

jest.setTimeout(60_000);
useHarnessCleanup();

/** A second loopback address: a source the daemon has never been told about. */
const STRANGER = '127.0.0.2';

let trusted: RawSipClient;
let stranger: RawSipClient;
const daemons: Daemon[] = [];

beforeAll(async () => {
  assertBuilt();
  trusted = await RawSipClient.open();
  stranger = await RawSipClient.open(undefined, STRANGER);
  onCleanup(() => {
    trusted.close();
    stranger.close();
  });
});

afterEach(async () => {
  for (const d of daemons.splice(0)) await d.close();
});

async function startAgent(over: ConfigTree): Promise<{ setup: DaemonSetup; d: Daemon; at: SipHostPort }> {
  const setup = await prepareDaemon('echo', over);
  const d = await startDaemon(setup, { name: 'admission' });
  daemons.push(d);
  return { setup, d, at: { host: LOOPBACK, port: setup.ports.sip } };
}

/** INVITE and return its final response (ACKed by the client; a 200 is hung up at once). */
async function inviteStatus(client: RawSipClient, at: SipHostPort, user = 'agent'): Promise<number> {
  const dlg = await client.invite({ target: at, uri: `sip:${user}@${LOOPBACK}:${at.port}`, timeoutMs: 8_000 });
  const status = dlg.final.status ?? 0;
  if (dlg.established) await dlg.bye(5_000);
  dlg.close();
  return status;
}

/** How many log lines match, once the first has arrived (the log is written asynchronously). */
async function linesOf(d: Daemon, re: RegExp): Promise<number> {
  await d.waitForMsg(re, 5_000);
  await delay(300);
  return d.logsWithMsg(re).length;
}

/** Send one request once (no retransmission) and collect what answers it within `waitMs`. */
async function sendOnce(client: RawSipClient, at: SipHostPort, method: string, waitMs = 1_500): Promise<SipMessage | undefined> {
  const callId = `${sipToken()}@${client.host}`;
  const from = client.mark;
  await client.request({ method, target: at, callId });
  try {
    return await client.waitForResponse({ callId, method }, waitMs, from);
  } catch {
    return undefined;
  }
}

describe('admission by default', () => {
  test('a registration-less agent with no calls.allow admits no one: 403, no record, one log line per source, counted', async () => {
    const { setup, d, at } = await startAgent({ calls: { allow: [] } });
    expect(d.logsWithMsg(/no caller can reach the agent/)).toHaveLength(1);
    for (let i = 0; i < 4; i++) expect(await inviteStatus(trusted, at)).toBe(403);
    // The daemon still answers what is not a call.
    expect((await trusted.transact({ method: 'OPTIONS', target: at })).status).toBe(200);
    expect(listRecords(setup.recordsDir)).toEqual([]);
    expect(await linesOf(d, /guard: INVITE from 127\.0\.0\.1:\d+ refused \(403/)).toBe(1);
    const m = await scrape(d);
    expect(sampleValue(m, 'sip_ai_agent_refused_total', { reason: 'forbidden' })).toBe(4);
    expect(sampleValue(m, 'sip_ai_agent_calls_total')).toBe(0);
  });

  test("a proxy's resolved address is admitted without being listed; any other source gets 403", async () => {
    // localhost resolves (through /etc/hosts) to 127.0.0.1; nothing needs to listen there for this.
    const { d, at } = await startAgent({ calls: { allow: [] }, accounts: [{ uri: 'sip:agent@127.0.0.1', proxy: 'sip:localhost:9;lr' }] });
    expect(d.logsWithMsg(/no caller can reach the agent/)).toHaveLength(0);
    expect(await inviteStatus(trusted, at)).toBe(200);
    expect(await inviteStatus(stranger, at)).toBe(403);
  });

  test('calls.allow: [any] admits every source', async () => {
    const { at } = await startAgent({ calls: { allow: ['any'] } });
    expect(await inviteStatus(stranger, at)).toBe(200);
  });
});

describe('the Request-URI must name an account', () => {
  test('an admitted source calling an unknown user gets 404; a stranger gets 403 for any user, so it cannot probe for extensions', async () => {
    const { setup, at } = await startAgent({});
    expect(await inviteStatus(trusted, at, 'nobody')).toBe(404);
    expect(await inviteStatus(trusted, at, '1000')).toBe(404);
    expect(await inviteStatus(stranger, at, 'nobody')).toBe(403);
    expect(await inviteStatus(stranger, at, 'agent')).toBe(403);
    expect(await inviteStatus(trusted, at, 'agent')).toBe(200);
    // Only the admitted call is on record.
    await delay(500);
    expect(listRecords(setup.recordsDir).map((r) => r.record.status)).toEqual(['completed']);
  });
});

describe('per-source rate limits', () => {
  const limits = { invitesPerSecond: 0.2, inviteBurst: 2, requestsPerSecond: 0.2, requestBurst: 5, retryAfterSec: 7 };

  test('an admitted source over its request limit gets 503 with Retry-After; a stranger over it gets no answer', async () => {
    const { d, at } = await startAgent({ sip: { limits } });
    const fromTrusted: (number | undefined)[] = [];
    for (let i = 0; i < 8; i++) fromTrusted.push((await sendOnce(trusted, at, 'OPTIONS'))?.status);
    expect(fromTrusted.slice(0, 5)).toEqual([200, 200, 200, 200, 200]);
    expect(fromTrusted.slice(5)).toEqual([503, 503, 503]);
    const limited = await sendOnce(trusted, at, 'OPTIONS');
    expect(limited?.status).toBe(503);
    expect(limited?.get('retry-after')).toBe('7');

    const fromStranger: (number | undefined)[] = [];
    for (let i = 0; i < 8; i++) fromStranger.push((await sendOnce(stranger, at, 'OPTIONS', 700))?.status);
    expect(fromStranger.slice(0, 5)).toEqual([200, 200, 200, 200, 200]);
    expect(fromStranger.slice(5)).toEqual([undefined, undefined, undefined]);

    const m = await scrape(d);
    expect(sampleValue(m, 'sip_ai_agent_refused_total', { reason: 'rate_limited' })).toBe(4);
    expect(sampleValue(m, 'sip_ai_agent_refused_total', { reason: 'dropped' })).toBe(3);
    // One report per source, however many were refused.
    expect(await linesOf(d, /guard: OPTIONS from 127\.0\.0\.1:\d+ refused \(503/)).toBe(1);
    expect(await linesOf(d, /guard: OPTIONS from 127\.0\.0\.2:\d+ refused \(dropped/)).toBe(1);
  });

  test('INVITEs have their own limit: past the burst an admitted source gets 503 Retry-After and no record is written', async () => {
    const { setup, d, at } = await startAgent({ sip: { limits } });
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push(await inviteStatus(trusted, at));
    expect(statuses).toEqual([200, 200, 503, 503]);
    // OPTIONS still has its own budget.
    expect((await sendOnce(trusted, at, 'OPTIONS'))?.status).toBe(200);
    await delay(500);
    expect(listRecords(setup.recordsDir)).toHaveLength(2);
    expect(sampleValue(await scrape(d), 'sip_ai_agent_refused_total', { reason: 'rate_limited' })).toBe(2);
  });
});

describe('a flood of refused calls', () => {
  test('300 INVITEs from a stranger and 60 over capacity from an admitted source: no records, the daemon takes the next real call', async () => {
    const { setup, d, at } = await startAgent({ calls: { maxConcurrent: 1 }, sip: { limits: { invitesPerSecond: 1000, inviteBurst: 1000 } } });
    // One call holds the only slot.
    const holder = await trusted.invite({ target: at, timeoutMs: 8_000 });
    expect(holder.final.status).toBe(200);
    // In bursts of 50 (a loopback socket buffer holds that many), as fast as the answers come.
    for (let i = 0; i < 300; i += 50) {
      const from = stranger.mark;
      await Promise.all(Array.from({ length: 50 }, () => stranger.request({ method: 'INVITE', target: at, body: 'v=0\r\n', contentType: 'application/sdp' })));
      await eventually(() => stranger.received(from).filter((r) => r.msg.status === 403).length >= 50, 5_000, '403 for a burst of 50 INVITEs');
    }
    const busy: number[] = [];
    for (let i = 0; i < 60; i += 10) {
      const batch = await Promise.all(Array.from({ length: 10 }, () => inviteStatus(trusted, at)));
      busy.push(...batch);
    }
    expect(new Set(busy)).toEqual(new Set([486]));
    await holder.bye(5_000);
    holder.close();
    // The slot is free once the call has ended (its record written): then the next caller gets in.
    await eventually(async () => ((await d.http('GET', '/calls')).json as { active: unknown[] }).active.length === 0, 10_000, 'the held call to end');
    expect(await inviteStatus(trusted, at)).toBe(200);
    await delay(500);
    // Two admitted calls, two records; nothing for the 360 refused ones.
    expect(listRecords(setup.recordsDir)).toHaveLength(2);
    const m = await scrape(d);
    expect(sampleValue(m, 'sip_ai_agent_refused_total', { reason: 'forbidden' })).toBe(300);
    expect(sampleValue(m, 'sip_ai_agent_refused_total', { reason: 'busy' })).toBe(60);
    // While full, the SIP layer answers 486 itself: no call object for any of the 60. One log
    // line per source for each kind of refusal, not one per INVITE.
    expect(await linesOf(d, /guard: INVITE from 127\.0\.0\.1:\d+ refused \(486/)).toBe(1);
    expect(await linesOf(d, /guard: INVITE from 127\.0\.0\.2:\d+ refused/)).toBe(1);
    expect(d.logsWithMsg(/call refused \[reason:rejected_busy/).length).toBe(0);
  });
});
