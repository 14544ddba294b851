/**
 * What the admin API shows of calls: live ones from the call manager, finished ones from its recent
 * list or, with records.store: postgres, from the record database (the calls of every instance).
 */
import { join } from 'node:path';
import type { CallManager } from '../calls/CallManager';
import type { CallInfo, CallSummary } from '../calls/types';
import type { AdminCalls, CallEvent, CallView, HistoryPage, HistoryQuery } from '../admin';
import { dayDirName, type CallRecord, type CallRecordSummary, type PostgresRecords, type RecordPage, type RecordStore } from '../records';

/** Finished calls the history shows from the database. */
const RECENT_FROM_STORE = 100;

function iso(d: Date | undefined): string | null {
  return d ? d.toISOString() : null;
}

function viewOfInfo(i: CallInfo): CallView {
  return {
    id: i.callId,
    state: i.state.name,
    direction: i.direction,
    from: i.from,
    to: i.to,
    account: i.account,
    sipCallId: i.sipCallId,
    remoteAddress: i.remoteAddress,
    startedAt: i.startedAt.toISOString(),
    answeredAt: iso(i.answeredAt),
    endedAt: null,
    endReason: null,
  };
}

function viewOfSummary(s: CallSummary): CallView {
  return {
    id: s.callId,
    state: 'ended',
    direction: s.direction,
    from: s.from,
    to: s.to,
    account: s.account,
    sipCallId: s.sipCallId,
    startedAt: s.startedAt.toISOString(),
    answeredAt: iso(s.answeredAt),
    endedAt: iso(s.endedAt),
    endReason: s.endReason ?? null,
    sipStatus: s.sipStatus,
    durationMs: s.durationMs,
    usage: s.usage,
    tools: s.tools.map((t) => ({ name: t.name, durationMs: t.durationMs, error: t.error, at: t.at.toISOString() })),
    transcript: s.transcript.map((t) => ({ speaker: t.speaker, text: t.text, at: t.at.toISOString() })),
  };
}

/** A stored record (any instance's) as the admin API shows it: the call page's facts included. */
function viewOfRecord(r: CallRecord | CallRecordSummary): CallView {
  return {
    sipReason: r.sipReason,
    remoteAddress: r.remoteAddress,
    talkMs: r.talkMs,
    counters: r.counters,
    recording: r.recording && !r.recording.error ? { durationMs: r.recording.durationMs, sampleRate: r.recording.sampleRate, layout: r.recording.layout, truncated: r.recording.truncated } : null,
    ...('transcriptLines' in r ? { transcriptLines: r.transcriptLines } : {}),
    id: r.callId,
    state: r.status === 'in_progress' ? 'active' : 'ended',
    status: r.status,
    instanceId: r.instanceId ?? null,
    direction: r.direction,
    from: r.from,
    to: r.to,
    account: r.account ?? undefined,
    sipCallId: r.sipCallId,
    startedAt: r.startedAt,
    answeredAt: r.answeredAt,
    endedAt: r.endedAt,
    endReason: r.endReason,
    sipStatus: r.sipStatus,
    durationMs: r.durationMs,
    usage: r.usage,
    tools: r.tools.map((t) => ({ name: t.name, durationMs: t.durationMs, error: t.error, at: t.at, args: t.argsSummary })),
    ...('transcript' in r && r.transcript
      ? { transcript: r.transcript.map((t) => ({ speaker: t.speaker, text: t.text, at: t.at, offsetMs: t.offsetMs, ...(t.interrupted ? { interrupted: true } : {}) })) }
      : {}),
  };
}

function pageOf(p: RecordPage): HistoryPage {
  return { calls: p.records.map(viewOfRecord), next: p.next, complete: p.complete };
}

/** A recording file name as the record store writes it (no directory part). */
const RECORDING_FILE_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,200}\.wav$/;

/**
 * The call manager as the admin API sees it. With a record database (`store`), the history is the
 * database's (every instance's calls); without one, or while it is down, this process's own.
 */
export function adminCalls(calls: CallManager, store?: PostgresRecords, files?: RecordStore): AdminCalls {
  const own = (): CallView[] => calls.recent().slice().reverse().map(viewOfSummary);
  // Live figures per call: the last and the mean turn latency (underruns come from the counters).
  const turns = new Map<string, { n: number; sumMs: number; lastMs: number }>();
  calls.on('timing', ({ callId, metric, valueMs }) => {
    if (metric !== 'turn_latency_ms') return;
    const t = turns.get(callId) ?? { n: 0, sumMs: 0, lastMs: 0 };
    t.n += 1;
    t.sumMs += valueMs;
    t.lastMs = valueMs;
    turns.set(callId, t);
  });
  calls.on('callEnded', (s) => turns.delete(s.callId));
  const liveView = (i: CallInfo): CallView => {
    const v = viewOfInfo(i);
    const c = calls.get(i.callId)?.counters;
    const t = turns.get(i.callId);
    v.figures = {
      turns: t?.n ?? 0,
      lastTurnLatencyMs: t ? Math.round(t.lastMs) : null,
      meanTurnLatencyMs: t ? Math.round(t.sumMs / t.n) : null,
      underruns: c?.underruns ?? 0,
      bargeIns: c?.bargeIns ?? 0,
      inputDroppedSamples: c?.inputDroppedSamples ?? 0,
    };
    return v;
  };
  /** A finished call's record (the database's first), or undefined while it is still being written. */
  const finishedRecord = async (id: string): Promise<CallRecord | undefined> => {
    const rec = (await store?.get(id).catch(() => undefined)) ?? (await files?.read(id));
    return rec && rec.status !== 'in_progress' ? rec : undefined;
  };
  return {
    list: async () => {
      const active = calls.list().map(liveView);
      if (!store) return { active, recent: own() };
      try {
        return { active, recent: (await store.listRecent(RECENT_FROM_STORE)).filter((r) => r.status !== 'in_progress' || !calls.get(r.callId)).map(viewOfRecord) };
      } catch {
        return { active, recent: own() };
      }
    },
    get: async (id) => {
      const live = calls.get(id);
      if (live) {
        const v = liveView(live.info());
        v.transcript = live.transcript.map((t, i) => ({ speaker: t.speaker, text: t.text, at: t.at.toISOString(), seq: i }));
        return v;
      }
      const rec = await finishedRecord(id);
      if (rec) return viewOfRecord(rec);
      const done = calls.recent().find((s) => s.callId === id);
      return done ? viewOfSummary(done) : undefined;
    },
    history: async (q: HistoryQuery) => {
      if (store) {
        try {
          return pageOf(await store.search(q));
        } catch {
          // The database is down: this instance's own records still answer.
        }
      }
      return files ? pageOf(await files.search(q)) : { calls: [], next: null, complete: true };
    },
    recording: async (id) => {
      if (!files || calls.get(id)) return undefined;
      const rec = await finishedRecord(id);
      const file = rec?.recording?.file;
      if (!rec || !file || !RECORDING_FILE_RE.test(file)) return undefined;
      // Recordings stay in records.dir of the instance that carried the call; another's is not here.
      return { path: join(files.dir, dayDirName(Date.parse(rec.startedAt)), file), contentType: 'audio/wav' };
    },
    place: async (req) => {
      const s = await calls.placeCall(req.uri, { instructions: req.instructions, headers: req.headers });
      return { id: s.info().callId };
    },
    hangup: (id) => calls.hangup(id),
    subscribe: (id, listener) => {
      if (!calls.get(id)) return undefined;
      let seq = calls.get(id)?.transcript.length ?? 0;
      const onState = (e: { callId: string; state: { name: string } }): void => {
        if (e.callId === id) listener({ type: 'state', state: e.state.name, at: new Date().toISOString() });
      };
      const onLine = (e: { callId: string; entry: { speaker: 'caller' | 'agent'; text: string; at: Date } }): void => {
        if (e.callId === id) listener({ type: 'transcript', speaker: e.entry.speaker, text: e.entry.text, at: e.entry.at.toISOString(), seq: seq++ });
      };
      const onEnd = (s: CallSummary): void => {
        if (s.callId !== id) return;
        const ev: CallEvent = { type: 'ended', reason: s.endReason, at: iso(s.endedAt) ?? undefined, sipStatus: s.sipStatus };
        unsubscribe();
        listener(ev);
      };
      const unsubscribe = (): void => {
        calls.off('stateChange', onState);
        calls.off('transcript', onLine);
        calls.off('callEnded', onEnd);
      };
      calls.on('stateChange', onState);
      calls.on('transcript', onLine);
      calls.on('callEnded', onEnd);
      return unsubscribe;
    },
  };
}
