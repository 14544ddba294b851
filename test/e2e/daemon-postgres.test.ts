/**
 * records.store: postgres against a real PostgreSQL (a throwaway cluster started here), with raw
 * SIP callers:
 *  - a call's row appears when it starts and is complete when it ends (instance, times, end reason,
 *    recording path on disk); the admin API of one instance lists the calls of another;
 *  - the database is stopped for 20 s while a call runs and ends: the call is not disturbed, and
 *    once the database is back the row is complete;
 *  - kill -9 with a call up: restarted, the instance marks that call interrupted in the database.
 */
import * as fs from 'node:fs';
import { EXIT, assertBuilt, eventually, prepareDaemon, startDaemon, type Daemon, type DaemonSetup } from '../helpers/daemon';
import { startPostgres, type Postgres } from '../helpers/postgres';
import { delay, useHarnessCleanup } from '../helpers/proc';
import { RawSipClient, pcmuOffer, sdpAudioAddress, type UacDialog } from '../helpers/rawsip';
import { RtpPeer, newSource } from '../helpers/rtp';
import { sine } from '../helpers/tone';

jest.setTimeout(150_000);
useHarnessCleanup();

interface Row extends Record<string, unknown> {
  call_id: string;
  instance_id: string | null;
  status: string;
  end_reason: string | null;
  answered_at: Date | null;
  duration_ms: string | null;
  recording_path: string | null;
  record: { durationMs: number | null; endReason: string | null; status: string };
}

let pg: Postgres;
let sip: RawSipClient;

beforeAll(async () => {
  assertBuilt();
  pg = await startPostgres({ lifetimeMs: 145_000 });
  sip = await RawSipClient.open();
});
afterAll(async () => {
  sip?.close();
  await pg?.close();
});

async function agent(id: string, setup?: DaemonSetup): Promise<{ setup: DaemonSetup; d: Daemon }> {
  const s = setup ?? (await prepareDaemon('echo', { instance: { id }, records: { store: 'postgres', postgres: { url: pg.url } } }));
  return { setup: s, d: await startDaemon(s, { name: `agent-${id}`, lifetimeMs: 140_000 }) };
}

async function dial(setup: DaemonSetup, rtp: RtpPeer): Promise<{ dlg: UacDialog; agentRtp: { host: string; port: number } }> {
  const dlg = await sip.invite({ target: { host: '127.0.0.1', port: setup.ports.sip }, body: pcmuOffer(rtp.port) });
  expect(dlg.final.status).toBe(200);
  return { dlg, agentRtp: sdpAudioAddress(dlg.final.bodyText) };
}

function row(callIdLike: (r: Row) => boolean): Promise<Row | undefined> {
  return pg.query<Row>('SELECT * FROM calls ORDER BY started_at').then((rows) => rows.find(callIdLike));
}

test('a call is a row from its start to its end; one instance lists the calls of the other', async () => {
  const a = await agent('pg-a');
  const b = await agent('pg-b');
  const rtp = await RtpPeer.open();
  try {
    const { dlg, agentRtp } = await dial(a.setup, rtp);
    const live = await eventually(() => row((r) => r.instance_id === 'pg-a' && r.status === 'in_progress'), 10_000, 'an in_progress row');
    await rtp.play(newSource(), sine(600, 800, 8000, 0.4), agentRtp);
    expect((await dlg.bye(5_000)).status).toBe(200);
    dlg.close();
    const done = await eventually(() => row((r) => r.call_id === live.call_id && r.status === 'completed'), 10_000, 'the completed row');
    expect(done.end_reason).toBe('caller_hangup');
    expect(done.answered_at).toBeInstanceOf(Date);
    expect(Number(done.duration_ms)).toBeGreaterThan(500);
    expect(done.recording_path).toMatch(/\.wav$/);
    expect(fs.existsSync(done.recording_path!)).toBe(true);

    // Agent b's own memory has no call; its admin API shows a's from the database.
    const list = await b.d.http('GET', '/calls');
    expect(list.status).toBe(200);
    const recent = (list.json as { recent: { id: string; instanceId: string; endReason: string }[] }).recent;
    expect(recent.find((c) => c.id === live.call_id)).toMatchObject({ instanceId: 'pg-a', endReason: 'caller_hangup' });
    const one = await b.d.http('GET', `/calls/${live.call_id}`);
    expect(one.status).toBe(200);
  } finally {
    rtp.close();
    await a.d.close();
    await b.d.close();
  }
});

test('the database is down for 20 s while a call runs and ends: nothing is disturbed, and the row is complete once it is back', async () => {
  const a = await agent('pg-outage');
  const rtp = await RtpPeer.open();
  try {
    const { dlg, agentRtp } = await dial(a.setup, rtp);
    const live = await eventually(() => row((r) => r.instance_id === 'pg-outage' && r.status === 'in_progress'), 10_000, 'an in_progress row');
    await pg.stop();
    const mark = a.d.logs().length;
    const src = newSource();
    await rtp.play(src, sine(700, 600, 8000, 0.4), agentRtp);
    await delay(20_000);
    await rtp.play(src, sine(0, 1500, 8000, 0.4), agentRtp);
    expect((await dlg.bye(5_000)).status).toBe(200);
    dlg.close();
    await a.d.waitForMsg('record store unreachable: records stay on disk and are written when it answers', 5_000, mark);
    await pg.start();
    const done = await eventually(() => row((r) => r.call_id === live.call_id && r.status === 'completed'), 15_000, 'the completed row after the outage');
    expect(done.end_reason).toBe('caller_hangup');
    expect(done.record.durationMs).toBeGreaterThan(20_000);
    await a.d.waitForMsg('record store answers again: writing what waited', 5_000, mark);
    const exit = await a.d.stop();
    expect(exit.code).toBe(EXIT.ok);
  } finally {
    rtp.close();
    await a.d.close();
  }
});

test('kill -9 with a call up: restarted, the instance marks the call interrupted in the database', async () => {
  const a = await agent('pg-killed');
  const rtp = await RtpPeer.open();
  try {
    const { dlg } = await dial(a.setup, rtp);
    const live = await eventually(() => row((r) => r.instance_id === 'pg-killed' && r.status === 'in_progress'), 10_000, 'an in_progress row');
    await delay(1500);
    a.d.proc.killNow();
    await a.d.proc.waitForExit(5_000);
    dlg.close();
    const again = await agent('pg-killed', a.setup);
    try {
      const done = await eventually(() => row((r) => r.call_id === live.call_id && r.status === 'interrupted'), 15_000, 'the interrupted row');
      expect(done.instance_id).toBe('pg-killed');
    } finally {
      await again.d.close();
    }
  } finally {
    rtp.close();
    await a.d.close();
  }
});
