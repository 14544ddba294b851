import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { RecordStore, type RecordStoreOptions } from '../../../src/records/RecordStore';
import { writeFileAtomic } from '../../../src/records/atomic';
import { wavHeader } from '../../../src/records/StereoWavWriter';
import type { CallRecord, CallRecordInput } from '../../../src/records/types';
import type { Logger } from '../../../src/logging/logger';
import type { CallRecorderSink } from '../../../src/calls/types';

const T0 = Date.parse('2025-03-10T09:00:00.000Z');
const DAY = 86_400_000;

let dir: string;
let clock: number;
const stores: RecordStore[] = [];

function store(opts: Partial<RecordStoreOptions> = {}): RecordStore {
  const s = new RecordStore({ dir, now: () => clock, checkpointIntervalMs: 0, pruneIntervalMs: 0, ...opts });
  stores.push(s);
  return s;
}

function call(id: string, extra: Partial<CallRecordInput> = {}): CallRecordInput {
  return { callId: id, sipCallId: `${id}@pbx`, direction: 'inbound', from: 'sip:alice@pbx', to: 'sip:agent@pbx', startedAt: clock, ...extra };
}

function readJson(path: string): CallRecord {
  return JSON.parse(readFileSync(path, 'utf8')) as CallRecord;
}

function capture(): { logger: Logger; lines: () => Record<string, unknown>[] } {
  const out: string[] = [];
  const dest = new Writable({
    write(chunk: Buffer, _enc, cb) {
      out.push(chunk.toString());
      cb();
    },
  });
  return { logger: pino({ level: 'info' }, dest), lines: () => out.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l)) };
}

/** A "dead" store's timers must not run on: stop them without finishing its records. */
function clearIntervalsOf(s: RecordStore): void {
  s.stopTimers();
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'records-'));
  clock = T0;
});
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('writeFileAtomic', () => {
  it('replaces the file and leaves no temporary file behind', async () => {
    const p = join(dir, 'x.json');
    await writeFileAtomic(p, 'one');
    await writeFileAtomic(p, 'two');
    expect(readFileSync(p, 'utf8')).toBe('two');
    expect(readdirSync(dir)).toEqual(['x.json']);
  });

  it('keeps the old content and removes its temporary file when the rename fails', async () => {
    mkdirSync(join(dir, 'target'));
    writeFileSync(join(dir, 'target', 'keep'), 'old');
    await expect(writeFileAtomic(join(dir, 'target'), 'new')).rejects.toThrow();
    expect(readdirSync(dir)).toEqual(['target']);
    expect(readFileSync(join(dir, 'target', 'keep'), 'utf8')).toBe('old');
  });
});

describe('RecordStore', () => {
  it('writes an in_progress record under <dir>/YYYY-MM-DD/<callId>.json as the call starts', async () => {
    const s = store();
    await s.start();
    const r = s.open(call('c1'));
    await r.checkpoint();
    const path = join(dir, '2025-03-10', 'c1.json');
    expect(r.path).toBe(path);
    const rec = readJson(path);
    expect(rec).toMatchObject({ version: 1, status: 'in_progress', callId: 'c1', sipCallId: 'c1@pbx', startedAt: '2025-03-10T09:00:00.000Z', endedAt: null, durationMs: null });
  });

  it('writes the final record with times, tools, usage, counters and the transcript', async () => {
    const s = store();
    await s.start();
    const r = s.open(call('c2', { ai: { backend: 'openai', model: 'gpt-realtime', voice: 'marin' } }));
    r.update({ answeredAt: T0 + 2000 });
    r.addTranscript({ speaker: 'agent', text: 'Hello, how can I help?', at: T0 + 2500 });
    r.addTranscript({ speaker: 'caller', text: 'Opening hours please', at: T0 + 5000 });
    r.addTranscript({ speaker: 'caller', text: '   ', at: T0 + 5100 });
    r.addTool({ name: 'end_call', args: { reason: 'done', note: 'x'.repeat(1000) }, durationMs: 12.4, at: T0 + 9000 });
    r.count('bargeIns');
    r.count('bargeIns', 2);
    const rec = await r.finish({
      endedAt: T0 + 10_000,
      endReason: 'agent_hangup',
      sipStatus: 200,
      usage: { inputTokens: 100, outputTokens: 50, inputAudioTokens: 90, costUsd: 0.0123456789 },
      counters: { truncates: 1, underruns: 4, bogus: Number.NaN },
    });
    const disk = readJson(join(dir, '2025-03-10', 'c2.json'));
    expect(disk).toEqual(rec);
    expect(rec).toMatchObject({
      status: 'completed',
      answeredAt: '2025-03-10T09:00:02.000Z',
      endedAt: '2025-03-10T09:00:10.000Z',
      durationMs: 10_000,
      talkMs: 8000,
      endReason: 'agent_hangup',
      sipStatus: 200,
      ai: { backend: 'openai', model: 'gpt-realtime', voice: 'marin' },
      counters: { bargeIns: 3, truncates: 1, underruns: 4 },
      recording: null,
    });
    expect(rec.usage).toMatchObject({ inputTokens: 100, outputTokens: 50, totalTokens: 150, costUsd: 0.012346 });
    expect(rec.transcript).toEqual([
      { speaker: 'agent', text: 'Hello, how can I help?', at: '2025-03-10T09:00:02.500Z', offsetMs: 2500 },
      { speaker: 'caller', text: 'Opening hours please', at: '2025-03-10T09:00:05.000Z', offsetMs: 5000 },
    ]);
    expect(rec.tools).toHaveLength(1);
    expect(rec.tools[0]).toMatchObject({ name: 'end_call', durationMs: 12, error: null, at: '2025-03-10T09:00:09.000Z' });
    expect(rec.tools[0].argsSummary!.length).toBeLessThanOrEqual(300);
    expect(rec.tools[0].argsSummary!.startsWith('{"reason":"done"')).toBe(true);
    expect(s.active).toBe(0);
    expect(r.closed).toBe(true);
    expect(await r.finish({ endReason: 'other' })).toEqual(rec);
  });

  it('marks an unanswered call with zero talk time', async () => {
    const s = store();
    await s.start();
    const rec = await s.open(call('missed')).finish({ endedAt: T0 + 3000, endReason: 'caller_cancelled', sipStatus: 487 });
    expect(rec).toMatchObject({ durationMs: 3000, talkMs: 0, answeredAt: null });
  });

  it('leaves an interrupted record with the last checkpoint when the process dies mid-call', async () => {
    const s1 = store({ recordAudio: true });
    await s1.start();
    const r = s1.open(call('crash'));
    r.update({ answeredAt: T0 + 1000 });
    r.addTranscript({ speaker: 'caller', text: 'before the crash', at: T0 + 3000 });
    r.audio(new Int16Array(8000).fill(5), new Int16Array(8000).fill(-5));
    clock = T0 + 4000;
    await r.checkpoint();
    r.addTranscript({ speaker: 'caller', text: 'lost with the process', at: T0 + 5000 });
    // The process "dies": s1 is never finished or closed. A new process starts on the same dir.
    stores.splice(stores.indexOf(s1), 1);
    clock = T0 + 60_000;
    const s2 = store();
    const res = await s2.recover();
    expect(res).toMatchObject({ records: 1, fromJournal: 1, recordings: 1 });
    const rec = readJson(join(dir, '2025-03-10', 'crash.json'));
    expect(rec).toMatchObject({ status: 'interrupted', endReason: 'agent_stopped', endedAt: '2025-03-10T09:00:04.000Z', durationMs: 4000, talkMs: 3000 });
    expect(rec.transcript!.map((l) => l.text)).toEqual(['before the crash']);
    expect(rec.error).toMatch(/agent stopped/);
    expect(rec.recording).toMatchObject({ file: 'crash.wav', durationMs: 1000 });
    expect(existsSync(join(dir, '2025-03-10', 'crash.wav'))).toBe(true);
    expect(existsSync(join(dir, '2025-03-10', 'crash.wav.part'))).toBe(false);
    await r.finish(); // the old recorder finishing late must not crash anything
  });

  it('rebuilds a dead call from its journal: answer, transcript, tools and counters up to the last flush, then deletes the journal', async () => {
    const s1 = store({ journalFlushMs: 10, checkpointIntervalMs: 0 });
    await s1.start();
    const r = s1.open(call('killed'));
    clock = T0 + 800;
    r.update({ answeredAt: clock });
    clock = T0 + 2000;
    r.addTranscript({ speaker: 'agent', text: 'hello, how can I help?' });
    clock = T0 + 4000;
    r.addTranscript({ speaker: 'caller', text: 'what time is it?' });
    r.addTool({ name: 'lookup_time', args: { zone: 'UTC' }, durationMs: 40 });
    r.count('bargeIns');
    clock = T0 + 6000;
    // Two flush intervals: the lines, then an alive entry at 6 s.
    await new Promise((res) => setTimeout(res, 60));
    const journal = join(dir, '2025-03-10', 'killed.journal');
    expect(existsSync(journal)).toBe(true);
    stores.splice(stores.indexOf(s1), 1);
    clearIntervalsOf(s1);
    clock = T0 + 60_000;
    const s2 = store();
    expect(await s2.recover()).toMatchObject({ records: 1, fromJournal: 1 });
    const rec = readJson(join(dir, '2025-03-10', 'killed.json'));
    expect(rec).toMatchObject({
      status: 'interrupted',
      endReason: 'agent_stopped',
      answeredAt: '2025-03-10T09:00:00.800Z',
      endedAt: '2025-03-10T09:00:06.000Z',
      durationMs: 6000,
      talkMs: 5200,
      counters: { bargeIns: 1 },
    });
    expect(rec.transcript!.map((l) => [l.speaker, l.text])).toEqual([
      ['agent', 'hello, how can I help?'],
      ['caller', 'what time is it?'],
    ]);
    expect(rec.tools).toEqual([expect.objectContaining({ name: 'lookup_time', durationMs: 40, at: '2025-03-10T09:00:04.000Z' })]);
    expect(rec.error).toMatch(/last entry of its journal/);
    expect(existsSync(journal)).toBe(false);
  });

  it('a journal with a torn last line is read up to it; a finished call leaves no journal', async () => {
    const s1 = store({ journalFlushMs: 10 });
    await s1.start();
    const done = s1.open(call('done'));
    await done.finish({ endedAt: T0 + 1000 });
    expect(readdirSync(join(dir, '2025-03-10')).filter((f) => f.endsWith('.journal'))).toEqual([]);
    const r = s1.open(call('torn'));
    clock = T0 + 3000;
    r.addTranscript({ speaker: 'caller', text: 'kept' });
    await new Promise((res) => setTimeout(res, 40));
    stores.splice(stores.indexOf(s1), 1);
    clearIntervalsOf(s1);
    const journal = join(dir, '2025-03-10', 'torn.journal');
    writeFileSync(journal, readFileSync(journal, 'utf8') + '{"at":999999999999999,"k":"line","l":{"speaker":"caller","te');
    const s2 = store();
    await s2.recover();
    const rec = readJson(join(dir, '2025-03-10', 'torn.json'));
    expect(rec.transcript!.map((l) => l.text)).toEqual(['kept']);
    expect(rec.endedAt).toBe('2025-03-10T09:00:03.000Z');
    expect(readJson(join(dir, '2025-03-10', 'done.json')).status).toBe('completed');
  });

  it('start() removes temporary files an interrupted write left behind', async () => {
    mkdirSync(join(dir, '2025-03-10'), { recursive: true });
    writeFileSync(join(dir, '2025-03-10', '.c9.json.999999.1.tmp'), '{"half');
    const s = store();
    await s.start();
    expect(readdirSync(join(dir, '2025-03-10'))).toEqual([]);
  });

  it('close() finishes open records as interrupted, flushAll() checkpoints them', async () => {
    const s = store();
    await s.start();
    const r = s.open(call('open1'));
    r.addTranscript({ speaker: 'agent', text: 'still talking' });
    await s.flushAll();
    expect(readJson(r.path).transcript).toHaveLength(1);
    expect(readJson(r.path).status).toBe('in_progress');
    clock = T0 + 7000;
    await s.close();
    expect(readJson(r.path)).toMatchObject({ status: 'interrupted', endReason: 'agent_shutdown', durationMs: 7000 });
    expect(s.closed).toBe(true);
    expect(() => s.open(call('late'))).toThrow(/record open after close\(\) \[callId:late\]/);
  });

  it('records stereo audio next to the record and describes it', async () => {
    const s = store({ recordAudio: true, sampleRate: 16000 });
    await s.start();
    const r = s.open(call('rec1'));
    for (let i = 0; i < 25; i++) r.audio(new Int16Array(320).fill(100), i % 2 ? new Int16Array(320).fill(-100) : null);
    const rec = await r.finish({ endedAt: T0 + 500 });
    expect(rec.recording).toEqual({
      file: 'rec1.wav',
      sampleRate: 16000,
      channels: 2,
      layout: 'caller-left,agent-right',
      durationMs: 500,
      droppedMs: 0,
      truncated: false,
      error: null,
    });
    const wav = readFileSync(join(dir, '2025-03-10', 'rec1.wav'));
    expect(wav.readUInt32LE(40)).toBe(25 * 320 * 4);
  });

  it('serves as the call\'s recorder sink as it is: batches in reused arrays land as they were', async () => {
    const s = store({ recordAudio: true });
    await s.start();
    const r = s.open(call('sink1'));
    const sink: CallRecorderSink = r;
    const caller = new Int16Array(160);
    const agent = new Int16Array(160);
    for (let i = 1; i <= 3; i++) {
      caller.fill(i);
      agent.fill(-i);
      sink.audio(caller, agent);
    }
    caller.fill(99);
    agent.fill(99);
    await r.finish({ endedAt: T0 + 60 });
    const data = readFileSync(join(dir, '2025-03-10', 'sink1.wav')).subarray(44);
    expect(data.length).toBe(3 * 160 * 4);
    for (let i = 0; i < 3; i++) {
      expect([data.readInt16LE(i * 640), data.readInt16LE(i * 640 + 2)]).toEqual([i + 1, -(i + 1)]);
      expect([data.readInt16LE(i * 640 + 636), data.readInt16LE(i * 640 + 638)]).toEqual([i + 1, -(i + 1)]);
    }
  });

  it('never throws into the call when the disk refuses writes, and logs the reason once', async () => {
    writeFileSync(join(dir, 'blocker'), 'a file where a directory should be');
    const cap = capture();
    const s = store({ dir: join(dir, 'blocker', 'records'), logger: cap.logger, recordAudio: true });
    await s.start();
    const r = s.open(call('c3'));
    r.addTranscript({ speaker: 'caller', text: 'hello' });
    r.audio(new Int16Array(160), new Int16Array(160));
    await r.checkpoint();
    const rec = await r.finish({ endReason: 'caller_hangup' });
    expect(rec.status).toBe('completed');
    expect(rec.recording?.error).toMatch(/ENOTDIR/);
    expect(s.stats.writeErrors).toBeGreaterThanOrEqual(2);
    const errors = cap.lines().filter((l) => l.level === 50);
    expect(errors.some((l) => String(l.msg).includes('records directory is not usable'))).toBe(true);
    const writeFailures = errors.filter((l) => String(l.msg).startsWith('call record write failed'));
    expect(writeFailures).toHaveLength(1);
    expect(writeFailures[0].msg).toMatch(/\[callId:c3, path:.*c3\.json, code:ENOTDIR\]/);
  });

  it('does not overwrite the record of an earlier call that had the same id', async () => {
    const s1 = store();
    await s1.start();
    await s1.open(call('1', { from: 'first' })).finish();
    await s1.close();
    const s2 = store();
    await s2.start();
    const r = s2.open(call('1', { from: 'second' }));
    await r.finish();
    expect(readJson(join(dir, '2025-03-10', '1.json')).from).toBe('first');
    expect(readJson(join(dir, '2025-03-10', '1~2.json')).from).toBe('second');
  });

  it('keeps call ids that are not file names inside the directory', async () => {
    const s = store();
    await s.start();
    const r = s.open(call('../../etc/passwd'));
    await r.finish();
    expect(r.path.startsWith(join(dir, '2025-03-10') + '/')).toBe(true);
    expect((await s.read('../../etc/passwd'))?.callId).toBe('../../etc/passwd');
  });

  it('caps the transcript and counts what it dropped', async () => {
    const s = store({ limits: { maxTranscriptLines: 3, maxLineChars: 10 } });
    await s.start();
    const r = s.open(call('long'));
    for (let i = 0; i < 5; i++) r.addTranscript({ speaker: 'caller', text: `line ${i}` });
    r.addTranscript({ speaker: 'agent', text: 'never kept' });
    const rec = await r.finish();
    expect(rec.transcript).toHaveLength(3);
    expect(rec.transcriptDropped).toBe(3);
    const s2 = store({ dir: join(dir, 'b'), limits: { maxLineChars: 10 } });
    await s2.start();
    const r2 = s2.open(call('cut'));
    r2.addTranscript({ speaker: 'caller', text: 'a very long sentence indeed' });
    const rec2 = await r2.finish();
    expect(rec2.transcript![0].text).toBe('a very lo…');
    expect(rec2.transcriptDropped).toBe(1);
  });

  it('omits the transcript when transcripts are off', async () => {
    const s = store({ transcripts: false });
    await s.start();
    const r = s.open(call('quiet'));
    r.addTranscript({ speaker: 'caller', text: 'private' });
    expect((await r.finish()).transcript).toBeNull();
  });

  it('checkpoints running calls on its timer', async () => {
    jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
    try {
      const s = store({ checkpointIntervalMs: 1000 });
      await s.start();
      const r = s.open(call('tick'));
      await r.checkpoint();
      r.addTranscript({ speaker: 'caller', text: 'after the first write' });
      expect(r.dirty).toBe(true);
      jest.advanceTimersByTime(1000);
      jest.useRealTimers();
      await s.flushAll();
      expect(readJson(r.path).transcript).toHaveLength(1);
      expect(r.dirty).toBe(false);
    } finally {
      jest.useRealTimers();
    }
  });

  describe('reading', () => {
    it('read() finds a record written by an earlier process, and the live state of an open call', async () => {
      const s1 = store();
      await s1.start();
      await s1.open(call('old')).finish({ endReason: 'caller_hangup' });
      await s1.close();
      clock = T0 + 2 * DAY;
      const s2 = store();
      await s2.start();
      expect(await s2.read('old')).toMatchObject({ callId: 'old', endReason: 'caller_hangup' });
      expect(await s2.read('nope')).toBeUndefined();
      const live = s2.open(call('live'));
      live.addTranscript({ speaker: 'caller', text: 'hi' });
      expect((await s2.read('live'))?.transcript).toHaveLength(1);
    });

    it('listRecent(n) returns the newest n without transcripts, newest first', async () => {
      const s = store();
      await s.start();
      for (let i = 0; i < 5; i++) {
        clock = T0 + i * DAY + i * 1000;
        const r = s.open(call(`l${i}`));
        r.addTranscript({ speaker: 'caller', text: 'x' });
        await r.finish();
      }
      const list = await s.listRecent(3);
      expect(list.map((r) => r.callId)).toEqual(['l4', 'l3', 'l2']);
      expect(list[0]).not.toHaveProperty('transcript');
      expect(list[0].transcriptLines).toBe(1);
      expect(await s.listRecent(0)).toEqual([]);
    });
  });

  describe('retention', () => {
    async function seed(days: number[]): Promise<void> {
      const s = store({ retentionDays: 0 });
      await s.start();
      for (const d of days) {
        clock = T0 - d * DAY;
        await s.open(call(`d${d}`)).finish();
      }
      await s.close();
      clock = T0;
    }

    it('prunes day directories older than retentionDays and keeps the rest', async () => {
      await seed([0, 1, 2, 3, 9, 10, 40]);
      const s = store({ retentionDays: 3 });
      await s.start(); // prunes on start
      const left = readdirSync(dir).sort();
      // T0 is 09:00 on 03-10: a call on 03-07 may be younger than 3 days, so its day stays.
      expect(left).toEqual(['2025-03-07', '2025-03-08', '2025-03-09', '2025-03-10']);
      expect(s.stats.prunedFiles).toBe(3);
    });

    it('keeps everything when retentionDays is 0', async () => {
      await seed([0, 400]);
      const s = store({ retentionDays: 0 });
      await s.start();
      expect(readdirSync(dir)).toHaveLength(2);
    });

    it('deletes at most pruneBatch files per run and finishes in later runs', async () => {
      await seed([20, 21, 22, 23, 24]);
      const s = store({ retentionDays: 1, pruneBatch: 2 });
      const first = await s.prune();
      expect(first).toMatchObject({ removedFiles: 2, more: true });
      const second = await s.prune();
      expect(second.removedFiles).toBe(2);
      const third = await s.prune();
      expect(third).toMatchObject({ removedFiles: 1, more: false });
      expect(readdirSync(dir)).toEqual([]);
    });

    it('follows a retention change from configure()', async () => {
      await seed([0, 5]);
      const s = store({ retentionDays: 30 });
      await s.start();
      expect(readdirSync(dir)).toHaveLength(2);
      s.configure({ retentionDays: 2 });
      await s.prune();
      expect(readdirSync(dir)).toEqual(['2025-03-10']);
    });
  });
});

describe('recovery ignores recordings of other programs', () => {
  it('leaves a .wav.part it did not write untouched', async () => {
    mkdirSync(join(dir, '2025-03-10'), { recursive: true });
    writeFileSync(join(dir, '2025-03-10', 'x.wav.part'), Buffer.concat([Buffer.from('RIFX'), wavHeader(8000, 2, 0).subarray(4)]));
    const s = store();
    expect(await s.recover()).toMatchObject({ recordings: 0 });
    expect(existsSync(join(dir, '2025-03-10', 'x.wav.part'))).toBe(true);
  });
});
