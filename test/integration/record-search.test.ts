/**
 * History search over call records, the same queries against the file store and a real PostgreSQL
 * (a throwaway cluster): both find the same calls in the same order, filter by date, caller,
 * outcome, duration and transcript text, take LIKE's wildcards literally, and page.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PostgresRecords } from '../../src/records/PostgresRecords';
import { RecordStore } from '../../src/records/RecordStore';
import type { RecordQuery } from '../../src/records/query';
import { makeTmpDir } from '../helpers/fixtures';
import { startPostgres, type Postgres } from '../helpers/postgres';
import { useHarnessCleanup } from '../helpers/proc';

jest.setTimeout(90_000);
useHarnessCleanup();

const T0 = Date.parse('2026-11-30T10:00:00Z');
const DAY = 86_400_000;
let clock = T0;
let pg: Postgres;
let files: RecordStore;
let db: PostgresRecords;

/** [id, day offset, from, end reason, duration s, transcript lines]. */
const CALLS: [string, number, string, string, number, string[]][] = [
  ['c1', 0, 'sip:1000@pbx', 'caller_hangup', 30, ['I would like a refund', 'Of course.']],
  ['c2', 1, 'sip:2000@pbx', 'agent_hangup', 90, ['What are your opening hours?']],
  ['c3', 2, 'sip:1000@pbx', 'admin_hangup', 5, ['100% sure, refund_now please']],
  ['c4', 3, 'sip:3000@other', 'caller_hangup', 300, ['Nothing of note']],
  ['c5', 3, 'sip:1000@pbx', 'ai_failure', 12, []],
];

beforeAll(async () => {
  const dir = await makeTmpDir('record-search-');
  pg = await startPostgres();
  files = new RecordStore({ dir: path.join(dir, 'records'), now: () => clock, checkpointIntervalMs: 0, pruneIntervalMs: 0 });
  await files.start();
  db = new PostgresRecords({ url: pg.url, recordsDir: path.join(dir, 'records') });
  await db.migrate();
  for (const [id, day, from, reason, sec, lines] of CALLS) {
    clock = T0 + day * DAY;
    const r = files.open({ callId: id, direction: 'inbound', from, to: 'sip:agent@pbx', startedAt: clock });
    lines.forEach((text, i) => r.addTranscript({ speaker: i % 2 ? 'agent' : 'caller', text, at: clock + i * 1000 }));
    clock += sec * 1000;
    await db.upsert(await r.finish({ endReason: reason, endedAt: clock }));
    expect(fs.existsSync(path.join(files.dir, new Date(T0 + day * DAY).toISOString().slice(0, 10), `${id}.json`))).toBe(true);
  }
});

afterAll(async () => {
  await db?.close();
  await files?.close();
  await pg?.close();
});

const q = (over: Partial<RecordQuery>): RecordQuery => ({ limit: 50, offset: 0, ...over });

async function both(query: RecordQuery): Promise<string[]> {
  const a = await files.search(query);
  const b = await db.search(query);
  expect(a.records.map((r) => r.callId)).toEqual(b.records.map((r) => r.callId));
  expect(a.next).toEqual(b.next);
  expect(a.complete).toBe(true);
  return a.records.map((r) => r.callId);
}

describe('history search, files and PostgreSQL alike', () => {
  it('lists every call newest first without a filter (the same start: by call id)', async () => {
    expect(await both(q({}))).toEqual(['c4', 'c5', 'c3', 'c2', 'c1']);
  });

  it('filters by start date (since inclusive, until exclusive)', async () => {
    expect(await both(q({ since: new Date(T0 + DAY), until: new Date(T0 + 3 * DAY) }))).toEqual(['c3', 'c2']);
  });

  it('filters by caller text in From or To, case-insensitive', async () => {
    expect((await both(q({ caller: '1000@PBX' }))).sort()).toEqual(['c1', 'c3', 'c5']);
    expect(await both(q({ caller: 'other' }))).toEqual(['c4']);
  });

  it('filters by outcome and duration', async () => {
    expect((await both(q({ outcomes: ['caller_hangup', 'ai_failure'] }))).sort()).toEqual(['c1', 'c4', 'c5']);
    expect((await both(q({ minDurationMs: 10_000, maxDurationMs: 90_000 }))).sort()).toEqual(['c1', 'c2', 'c5']);
  });

  it('finds transcript text, taking % and _ literally', async () => {
    expect((await both(q({ text: 'REFUND' }))).sort()).toEqual(['c1', 'c3']);
    expect(await both(q({ text: '100%' }))).toEqual(['c3']);
    expect(await both(q({ text: 'refund_now' }))).toEqual(['c3']);
    expect(await both(q({ text: 'r_fund' }))).toEqual([]);
    expect(await both(q({ text: '%' }))).toEqual(['c3']);
  });

  it('pages: limit and offset, with the next offset until the last page', async () => {
    const all = await both(q({}));
    const p1 = await files.search(q({ limit: 2 }));
    expect(p1.next).toBe(2);
    expect((await db.search(q({ limit: 2 }))).next).toBe(2);
    const p3 = await both(q({ limit: 2, offset: 4 }));
    expect(p3).toEqual(all.slice(4));
    expect((await files.search(q({ limit: 2, offset: 4 }))).next).toBeNull();
  });
});
