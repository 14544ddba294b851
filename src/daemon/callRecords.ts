/**
 * Where the call layer meets the record store: one record per admitted call, opened when the
 * call starts, fed to its journal as the call goes (answer, transcript lines, tool calls) and
 * finished with the call's summary. Refused calls never get one. When audio is recorded, the
 * record itself is the call's recorder sink (records.recordAudio is read per call, so it reloads
 * live); the record is finished here, never by the bridge.
 */
import type { CallManager } from '../calls/CallManager';
import type { CallInfo, CallRecorderSink, CallSummary } from '../calls/types';
import type { CallRecorder, RecordStore } from '../records';
import type { AgentConfig } from '../config';

export interface CallRecordsOptions {
  records: RecordStore;
  /** The configuration in force (AI model and voice for new records). */
  current: { cfg: AgentConfig };
  /** The AI backend's name for new records. */
  backendName: () => string;
  /** Live settings: record audio for new calls. */
  live: { recordAudio: boolean };
  /** Told after each change of a call's record (a mirror such as PostgreSQL follows it). */
  changed?: (callId: string) => void;
}

export class CallRecords {
  readonly #o: CallRecordsOptions;
  readonly #recorders = new Map<string, CallRecorder>();
  readonly #answered = new Set<string>();

  constructor(o: CallRecordsOptions) {
    this.#o = o;
  }

  /** The recorder sink of one call: its record (undefined when audio is not recorded). */
  readonly sink = (info: CallInfo): CallRecorderSink | undefined => (this.#o.live.recordAudio ? this.#open(info) : undefined);

  /** Follow the call manager's calls (before the first call can arrive). */
  attach(calls: CallManager): void {
    calls.on('callStarted', (info) => void this.#open(info));
    // What happens during the call reaches its journal as it happens (a crash loses at most a second).
    calls.on('transcript', ({ callId, entry }) => {
      this.#recorders.get(callId)?.addTranscript({ speaker: entry.speaker, text: entry.text, at: entry.at });
      this.#o.changed?.(callId);
    });
    calls.on('toolUse', ({ callId, use }) => {
      this.#recorders.get(callId)?.addTool({ name: use.name, args: use.args, durationMs: use.durationMs, error: use.error, at: use.at });
      this.#o.changed?.(callId);
    });
    calls.on('stateChange', ({ callId }) => {
      if (this.#answered.has(callId)) return;
      const at = calls.get(callId)?.info().answeredAt;
      if (!at) return;
      this.#answered.add(callId);
      this.#recorders.get(callId)?.update({ answeredAt: at });
      this.#o.changed?.(callId);
    });
    // A refused call was never admitted: counted and logged by the call manager, but it writes
    // no record, so a flood of refused INVITEs cannot fill the disk.
    calls.on('callEnded', (s) => this.#finish(s));
  }

  #open(info: CallInfo): CallRecorder {
    let r = this.#recorders.get(info.callId);
    if (!r) {
      const cfg = this.#o.current.cfg;
      r = this.#o.records.open({
        callId: info.callId,
        sipCallId: info.sipCallId,
        direction: info.direction,
        from: info.from,
        to: info.to,
        account: info.account,
        remoteAddress: info.remoteAddress,
        instanceId: cfg.instance.id,
        startedAt: info.startedAt,
        ai: { backend: this.#o.backendName(), model: cfg.ai.model, voice: cfg.ai.voice },
      });
      this.#recorders.set(info.callId, r);
      this.#o.changed?.(info.callId);
    }
    return r;
  }

  #finish(s: CallSummary): void {
    const r = this.#recorders.get(s.callId);
    this.#recorders.delete(s.callId);
    this.#answered.delete(s.callId);
    void r
      ?.finish({
      endedAt: s.endedAt,
      answeredAt: s.answeredAt,
      sipCallId: s.sipCallId,
      endReason: s.endReason,
      sipStatus: s.sipStatus,
      sipReason: s.sipReason,
      ai: { backend: s.ai.backend, model: s.ai.model, voice: s.ai.voice },
      tools: s.tools.map((t) => ({ name: t.name, args: t.args, durationMs: t.durationMs, error: t.error, at: t.at })),
      usage: s.usage,
      counters: { ...s.counters } as Record<string, number>,
      transcript: s.transcript.map((t) => ({ speaker: t.speaker, text: t.text, at: t.at })),
      error: s.error,
    })
      .then(
        () => this.#o.changed?.(s.callId),
        () => this.#o.changed?.(s.callId),
      );
  }
}
