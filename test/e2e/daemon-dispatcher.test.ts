/**
 * Two agent instances behind Kamailio's dispatcher, with the configuration docs/DEPLOYMENT.md
 * ships (examples/kamailio/dispatcher.cfg, run as it is with -A defines), callers over raw SIP:
 *  - calls are spread over both instances (each names itself in its User-Agent);
 *  - one instance gets SIGTERM with a call up: it answers OPTIONS 503, the dispatcher takes it out,
 *    every new call goes to the other and none fails; its own call finishes and it exits 0;
 *  - one instance is killed (kill -9) with a call up: new calls fail over to the other within the
 *    probe interval, none fails; restarted, it marks the killed call interrupted.
 * Both instances keep their records in one PostgreSQL database (a throwaway cluster): every call
 * is a row naming the instance that carried it.
 */
import { startDispatcher, type Dispatcher } from '../helpers/kamailio';
import { startPostgres, type Postgres } from '../helpers/postgres';
import { EXIT, assertBuilt, eventually, listRecords, prepareDaemon, startDaemon, waitForRecord, type Daemon, type DaemonSetup } from '../helpers/daemon';
import { useHarnessCleanup } from '../helpers/proc';
import { RawSipClient, pcmuOffer, type UacDialog } from '../helpers/rawsip';

jest.setTimeout(120_000);
useHarnessCleanup();

interface Agent {
  id: string;
  setup: DaemonSetup;
  d: Daemon;
  addr: string;
}

let sip: RawSipClient;
let pg: Postgres;
let rtpPort = 41_000;
let placed = 0;

async function startAgent(id: string, setup?: DaemonSetup): Promise<Agent> {
  const s =
    setup ??
    (await prepareDaemon('echo', {
      instance: { id },
      calls: { maxConcurrent: 8, drainTimeoutSec: 60 },
      records: { store: 'postgres', postgres: { url: pg.url } },
    }));
  const d = await startDaemon(s, { name: `agent-${id}`, lifetimeMs: 110_000 });
  byPort.set(s.ports.sip, id);
  // A named instance says its name to a probe (and in every request it sends).
  const probe = await sip.transact({ method: 'OPTIONS', target: { host: '127.0.0.1', port: s.ports.sip } }, 5_000);
  expect(probe.get('user-agent')).toBe(`sip-ai-agent (${id})`);
  return { id, setup: s, d, addr: `127.0.0.1:${s.ports.sip}` };
}

const byPort = new Map<number, string>();

/** A call through the dispatcher; which instance took it shows in the 200's Contact. */
async function call(ds: Dispatcher): Promise<{ dlg: UacDialog; instance: string | undefined }> {
  rtpPort += 2;
  placed++;
  const dlg = await sip.invite({ target: { host: '127.0.0.1', port: ds.port }, uri: `sip:agent@127.0.0.1:${ds.port}`, body: pcmuOffer(rtpPort), timeoutMs: 15_000 });
  const port = Number(/:(\d+)>?\s*$/.exec(dlg.final.get('contact') ?? '')?.[1]);
  return { dlg, instance: byPort.get(port) };
}

async function hangUp(dlg: UacDialog): Promise<void> {
  const r = await dlg.bye(5_000);
  expect(r.status).toBe(200);
  dlg.close();
}

/** Rows of the calls table by instance and status. */
async function rows(): Promise<{ call_id: string; instance_id: string; status: string }[]> {
  return pg.query('SELECT call_id, instance_id, status FROM calls');
}

beforeAll(async () => {
  assertBuilt();
  sip = await RawSipClient.open();
  pg = await startPostgres({ lifetimeMs: 240_000 });
});
afterAll(async () => {
  sip?.close();
  await pg?.close();
});

test('calls are spread over both instances; SIGTERM on one: OPTIONS 503, every new call goes to the other, its own call finishes, exit 0', async () => {
  const a = await startAgent('agent-a');
  const b = await startAgent('agent-b');
  const ds = await startDispatcher({ agents: [a.addr, b.addr], probeIntervalSec: 1 });
  try {
    const spread: Record<string, number> = {};
    for (let i = 0; i < 6; i++) {
      const { dlg, instance } = await call(ds);
      expect(dlg.final.status).toBe(200);
      spread[instance ?? '?'] = (spread[instance ?? '?'] ?? 0) + 1;
      await hangUp(dlg);
    }
    expect(spread).toEqual({ 'agent-a': 3, 'agent-b': 3 });

    // A call stays up on agent-a while it drains.
    let live: UacDialog | undefined;
    while (!live) {
      const c = await call(ds);
      if (c.instance === 'agent-a') live = c.dlg;
      else await hangUp(c.dlg);
    }
    const mark = ds.proc.lines().length;
    a.d.signal('SIGTERM');
    await a.d.waitForMsg('stopping: no new calls, draining', 10_000);
    await ds.waitForState(a.addr, 'down', 10_000, mark);
    for (let i = 0; i < 6; i++) {
      const { dlg, instance } = await call(ds);
      expect(dlg.final.status).toBe(200);
      expect(instance).toBe('agent-b');
      await hangUp(dlg);
    }
    await hangUp(live);
    expect((await a.d.proc.waitForExit(20_000)).code).toBe(EXIT.ok);
    const records = listRecords(a.setup.recordsDir).map((r) => r.record);
    expect(records.filter((r) => r.status === 'completed')).toHaveLength(records.length);
    expect(records.every((r) => r.instanceId === 'agent-a')).toBe(true);
    // One database: each call a row naming the instance that carried it.
    const inDb = await eventually(async () => {
      const r = (await rows()).filter((x) => x.status === 'completed');
      return r.length === placed ? r : undefined;
    }, 15_000, `${placed} completed rows`);
    expect(inDb.filter((r) => r.instance_id === 'agent-a').length).toBe(records.length);
    expect(inDb.filter((r) => r.instance_id === 'agent-b').length).toBe(placed - records.length);
  } finally {
    await ds.stop();
    await a.d.close();
    await b.d.close();
  }
});

test('kill -9 on one instance with a call up: new calls fail over to the other; restarted, it marks that call interrupted', async () => {
  const a = await startAgent('agent-a');
  const b = await startAgent('agent-b');
  const ds = await startDispatcher({ agents: [a.addr, b.addr], probeIntervalSec: 1, inviteTimeoutMs: 1500 });
  try {
    let live: { dlg: UacDialog; instance: string | undefined } | undefined;
    while (!live) {
      const c = await call(ds);
      expect(c.dlg.final.status).toBe(200);
      if (c.instance === 'agent-b') live = c;
      else await hangUp(c.dlg);
    }
    const liveRecord = await waitForRecord(b.setup.recordsDir, (r) => r.record.status === 'in_progress', 10_000);
    // Let the journal reach the disk (it is flushed every second), then kill.
    await new Promise((r) => setTimeout(r, 1500));
    const mark = ds.proc.lines().length;
    b.d.proc.killNow();
    await b.d.proc.waitForExit(5_000);
    // Before the probe notices, a call sent to agent-b times out there and goes on to agent-a.
    for (let i = 0; i < 4; i++) {
      const { dlg, instance } = await call(ds);
      expect(dlg.final.status).toBe(200);
      expect(instance).toBe('agent-a');
      await hangUp(dlg);
    }
    await ds.waitForState(b.addr, 'down', 10_000, mark);
    live.dlg.close();

    // Back with the same state directory: the killed call is finished as interrupted.
    const b2 = await startAgent('agent-b', b.setup);
    try {
      const rec = await waitForRecord(b.setup.recordsDir, (r) => r.record.callId === liveRecord.record.callId && r.record.status !== 'in_progress', 10_000);
      expect(rec.record.status).toBe('interrupted');
      expect(rec.record.instanceId).toBe('agent-b');
      await eventually(async () => (await rows()).find((r) => r.call_id === liveRecord.record.callId && r.status === 'interrupted' && r.instance_id === 'agent-b'), 15_000, 'the interrupted row');
      await ds.waitForState(b.addr, 'up', 10_000, mark);
    } finally {
      await b2.d.close();
    }
  } finally {
    await ds.stop();
    await a.d.close();
    await b.d.close();
  }
});
