/**
 * What the daemon tells a load balancer's OPTIONS probe, against the running daemon over raw SIP:
 * 200 while it takes calls; 503 with a reason phrase and Retry-After while it is full, while it
 * drains after SIGTERM, and while its AI backend cannot be reached (a call failed to open a
 * session; a probe brings it back once the backend answers again).
 */
import { FakeRealtimeServer } from '../fakes/FakeRealtimeServer';
import { EXIT, assertBuilt, eventually, prepareDaemon, startDaemon, type Daemon, type DaemonSetup } from '../helpers/daemon';
import { freePort, releasePort } from '../helpers/ports';
import { useHarnessCleanup } from '../helpers/proc';
import { RawSipClient, pcmuOffer, type SipMessage } from '../helpers/rawsip';

jest.setTimeout(90_000);
useHarnessCleanup();

const API_KEY = 'sk-availability-e2e-0123456789abcdef';

function options(sip: RawSipClient, setup: DaemonSetup): Promise<SipMessage> {
  return sip.transact({ method: 'OPTIONS', target: { host: '127.0.0.1', port: setup.ports.sip } }, 5_000);
}

let sip: RawSipClient;
beforeAll(async () => {
  assertBuilt();
  sip = await RawSipClient.open();
});
afterAll(() => sip?.close());

test('full: 503 "Full" while every call slot is taken, 200 again when one frees up; draining: 503 "Draining" until the last call ends', async () => {
  const setup = await prepareDaemon('echo', { calls: { maxConcurrent: 1, drainTimeoutSec: 60 } });
  const d: Daemon = await startDaemon(setup, { name: 'availability-full' });
  try {
    const idle = await options(sip, setup);
    expect(idle.status).toBe(200);
    expect(idle.get('user-agent')).toMatch(/sip-ai-agent/);

    const dlg = await sip.invite({ target: { host: '127.0.0.1', port: setup.ports.sip }, body: pcmuOffer(40_100) });
    expect(dlg.final.status).toBe(200);
    const full = await options(sip, setup);
    expect(full.status).toBe(503);
    expect(full.reason).toBe('Full (1 calls)');
    expect(full.get('retry-after')).toBe('5');
    await dlg.bye(5_000);
    dlg.close();
    await eventually(async () => ((await options(sip, setup)).status === 200 ? true : undefined), 10_000, 'OPTIONS 200 after the call');

    // SIGTERM with a call up: the call may finish, the probe hears 503 Draining meanwhile.
    const last = await sip.invite({ target: { host: '127.0.0.1', port: setup.ports.sip }, body: pcmuOffer(40_102) });
    expect(last.final.status).toBe(200);
    d.signal('SIGTERM');
    await d.waitForMsg('stopping: no new calls, draining', 10_000);
    const draining = await options(sip, setup);
    expect(draining.status).toBe(503);
    expect(draining.reason).toBe('Draining');
    await last.bye(5_000);
    last.close();
    const exit = await d.proc.waitForExit(20_000);
    expect(exit.code).toBe(EXIT.ok);
  } finally {
    await d.close();
  }
});

test('the AI backend cannot be reached: a failed call turns OPTIONS to 503 and /healthz names it; once the backend answers, a probe turns it back to 200', async () => {
  const aiPort = await freePort('tcp');
  const setup = await prepareDaemon('echo', {
    ai: { provider: 'openai', url: `ws://127.0.0.1:${aiPort}/v1/realtime`, apiKey: API_KEY, model: 'gpt-realtime', connectTimeoutMs: 1000 },
  });
  const d = await startDaemon(setup, { name: 'availability-ai' });
  let fake: FakeRealtimeServer | undefined;
  try {
    expect((await options(sip, setup)).status).toBe(200);
    // Nothing listens on the AI port: the call's session fails (fallback, then BYE).
    const dlg = await sip.invite({ target: { host: '127.0.0.1', port: setup.ports.sip }, body: pcmuOffer(40_104) });
    await d.waitForMsg('AI backend marked unreachable; probing it until it answers', 15_000);
    dlg.close();
    const down = await options(sip, setup);
    expect(down.status).toBe(503);
    expect(down.reason).toMatch(/^AI backend unreachable \(/);
    const health = await d.http('GET', '/healthz');
    expect(health.status).toBe(503);
    expect(JSON.stringify(health.json)).toMatch(/AI backend unreachable/);

    releasePort(aiPort);
    fake = new FakeRealtimeServer({ apiKey: API_KEY, port: aiPort });
    await fake.listen();
    await d.waitForMsg('AI backend reachable again', 20_000);
    expect((await options(sip, setup)).status).toBe(200);
    expect((await d.http('GET', '/healthz')).status).toBe(200);
    // The probe opened a session and closed it: no audio, no response asked for.
    expect(fake.sessions.length).toBeGreaterThanOrEqual(1);
  } finally {
    await d.close();
    await fake?.close();
  }
});
