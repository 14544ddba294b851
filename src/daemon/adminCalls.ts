/**
 * What the admin API shows of calls: live ones from the call manager, finished ones from its recent
 * list or, with records.store: postgres, from the record database (the calls of every instance).
 */
import type { CallManager } from '../calls/CallManager';
import type { CallInfo, CallSummary } from '../calls/types';
import type { AdminCalls, CallEvent, CallView } from '../admin';
import type { CallRecord, CallRecordSummary, PostgresRecords } from '../records';

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
    tools: s.tools.map((t) => ({ name: t.name, durationMs: t.durationMs, error: t.error })),
    transcript: s.transcript.map((t) => ({ speaker: t.speaker, text: t.text, at: t.at.toISOString() })),
  };
}

/** A stored record (any instance's) as the admin API shows it. */
function viewOfRecord(r: CallRecord | CallRecordSummary): CallView {
  return {
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
    tools: r.tools.map((t) => ({ name: t.name, durationMs: t.durationMs, error: t.error })),
    ...('transcript' in r && r.transcript ? { transcript: r.transcript.map((t) => ({ speaker: t.speaker, text: t.text, at: t.at })) } : {}),
  };
}

/**
 * The call manager as the admin API sees it. With a record database (`store`), the history is the
 * database's (every instance's calls); without one, or while it is down, this process's own.
 */
export function adminCalls(calls: CallManager, store?: PostgresRecords): AdminCalls {
  const own = (): CallView[] => calls.recent().slice().reverse().map(viewOfSummary);
  return {
    list: async () => {
      const active = calls.list().map(viewOfInfo);
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
        const v = viewOfInfo(live.info());
        v.transcript = live.transcript.map((t, i) => ({ speaker: t.speaker, text: t.text, at: t.at.toISOString(), seq: i }));
        return v;
      }
      const done = calls.recent().find((s) => s.callId === id);
      if (done) return viewOfSummary(done);
      const rec = await store?.get(id).catch(() => undefined);
      return rec ? viewOfRecord(rec) : undefined;
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
