/**
 * What the admin API gets of finished calls from the records: the call page's record, history
 * pages (the database's, or this instance's files when it fails), and recording paths that can
 * only ever name a WAV in the record's own day directory.
 */
import { EventEmitter } from 'node:events';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CallManager } from '../../../src/calls/CallManager';
import { adminCalls } from '../../../src/daemon/adminCalls';
import type { PostgresRecords } from '../../../src/records';
import { RecordStore } from '../../../src/records/RecordStore';

const DAY = '2026-12-05';
let dir: string;
let store: RecordStore;

/** The call manager as adminCalls uses it: no live call, nothing recent in memory. */
function idleCalls(live: string[] = []): CallManager {
  const ee = new EventEmitter();
  return Object.assign(ee, {
    get: (id: string) => (live.includes(id) ? { info: () => ({}), transcript: [], counters: {} } : undefined),
    list: () => [],
    recent: () => [],
  }) as unknown as CallManager;
}

function writeRecord(id: string, extra: Record<string, unknown>): void {
  const rec = {
    version: 1,
    status: 'completed',
    callId: id,
    sipCallId: `${id}@pbx`,
    direction: 'inbound',
    from: 'sip:1000@pbx',
    to: 'sip:agent@pbx',
    account: null,
    remoteAddress: '192.0.2.7:5060',
    instanceId: null,
    startedAt: `${DAY}T10:00:00.000Z`,
    answeredAt: `${DAY}T10:00:01.000Z`,
    endedAt: `${DAY}T10:00:31.000Z`,
    durationMs: 31_000,
    talkMs: 30_000,
    endReason: 'caller_hangup',
    sipStatus: 200,
    sipReason: 'OK',
    ai: null,
    tools: [{ name: 'lookup_order', argsSummary: '{"order_id":"A-17"}', durationMs: 40, error: null, at: `${DAY}T10:00:10.000Z` }],
    toolsDropped: 0,
    usage: null,
    counters: {},
    transcript: [{ speaker: 'caller', text: 'Where is my order?', at: `${DAY}T10:00:05.000Z`, offsetMs: 5000 }],
    transcriptDropped: 0,
    recording: { file: `${id}.wav`, sampleRate: 8000, channels: 2, layout: 'caller-left,agent-right', durationMs: 30_000, droppedMs: 0, truncated: false, error: null },
    error: null,
    updatedAt: `${DAY}T10:00:32.000Z`,
    ...extra,
  };
  writeFileSync(join(dir, DAY, `${id}.json`), JSON.stringify(rec));
}

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'admin-calls-'));
  mkdirSync(join(dir, DAY));
  store = new RecordStore({ dir, checkpointIntervalMs: 0, pruneIntervalMs: 0 });
  await store.start();
});
afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('adminCalls over the record files', () => {
  it('shows a finished call from its record: transcript offsets, tool times and arguments, SIP details, recording facts', async () => {
    writeRecord('c1', {});
    const v = await adminCalls(idleCalls(), undefined, store).get('c1');
    expect(v).toMatchObject({
      id: 'c1',
      state: 'ended',
      sipReason: 'OK',
      remoteAddress: '192.0.2.7:5060',
      talkMs: 30_000,
      recording: { durationMs: 30_000, sampleRate: 8000, truncated: false },
      tools: [{ name: 'lookup_order', at: `${DAY}T10:00:10.000Z`, args: '{"order_id":"A-17"}' }],
      transcript: [{ speaker: 'caller', offsetMs: 5000 }],
    });
  });

  it('gives the recording path in the record day directory', async () => {
    writeRecord('c1', {});
    expect(await adminCalls(idleCalls(), undefined, store).recording!('c1')).toEqual({ path: join(dir, DAY, 'c1.wav'), contentType: 'audio/wav' });
  });

  it.each([
    ['a path that climbs out', { recording: { file: '../../etc/passwd.wav' } }],
    ['a path into another directory', { recording: { file: 'sub/c1.wav' } }],
    ['an absolute path', { recording: { file: '/etc/c1.wav' } }],
    ['another kind of file', { recording: { file: 'c1.json' } }],
    ['no recording', { recording: null }],
    ['a call still in progress', { status: 'in_progress' }],
  ])('gives no recording for a record with %s', async (_what, extra) => {
    writeRecord('c1', extra);
    expect(await adminCalls(idleCalls(), undefined, store).recording!('c1')).toBeUndefined();
  });

  it('gives no recording for a live call or an unknown one', async () => {
    writeRecord('c1', {});
    expect(await adminCalls(idleCalls(['c1']), undefined, store).recording!('c1')).toBeUndefined();
    expect(await adminCalls(idleCalls(), undefined, store).recording!('nope')).toBeUndefined();
  });

  it('answers history from the files when the database fails', async () => {
    writeRecord('c1', {});
    writeRecord('c2', { from: 'sip:2000@pbx' });
    const db = { search: () => Promise.reject(new Error('connection refused')), get: () => Promise.reject(new Error('connection refused')) } as unknown as PostgresRecords;
    const page = await adminCalls(idleCalls(), db, store).history!({ caller: '2000', limit: 10, offset: 0 });
    expect(page).toMatchObject({ calls: [{ id: 'c2', from: 'sip:2000@pbx', transcriptLines: 1 }], next: null, complete: true });
    expect(page.calls[0].transcript).toBeUndefined();
  });
});
