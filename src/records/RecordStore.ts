/**
 * Call records on disk. `open()` writes an `in_progress` record as the call starts and returns a
 * {@link CallRecorder}; the recorder checkpoints while the call runs and writes the final record at
 * the end. Every write is atomic (tmp + fsync + rename), so whatever happens to the AI side or the
 * process, a record is on disk. Between checkpoints each call also appends what happens to its
 * journal (CallJournal: answer, transcript lines, tool calls, counters), flushed every second: at
 * startup, the record of a call a dead process left is rebuilt from its journal up to the last
 * entry and marked `interrupted`, and half-written recordings are repaired.
 *
 * Disk trouble (full, read-only, permissions) is logged (throttled) and counted; it never throws into
 * the call layer. Retention pruning runs at start and every hour with a bounded number of deletions
 * per run.
 */
import { existsSync, mkdirSync, promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { silentLogger, type Logger } from '../logging/logger';
import { InvalidStateError } from '../util/errors';
import { RECORD_DIR_MODE, TMP_SUFFIX, writeFileAtomic } from './atomic';
import { CallJournal, DEFAULT_JOURNAL_MAX_BYTES, JOURNAL_SUFFIX, parseJournal, type JournalEntry } from './CallJournal';
import {
  DEFAULT_RECORD_LIMITS,
  TranscriptBuffer,
  mergeCounters,
  text,
  toIso,
  toMs,
  toolUse,
  usage,
  type RecordLimits,
} from './normalize';
import { dayDirName, dayDirStart, fileStem } from './paths';
import { matchesQuery, type RecordPage, type RecordQuery } from './query';
import { DEFAULT_MAX_RECORDING_MS, PART_SUFFIX, StereoWavWriter, repairWavHeader, type WavSummary } from './StereoWavWriter';
import type {
  CallRecord,
  CallRecordInput,
  CallRecordStatus,
  CallRecordSummary,
  RecordingInfo,
  ToolUse,
  ToolUseInput,
  TranscriptLineInput,
} from './types';

const DAY_MS = 86_400_000;
/** Most records listRecent() returns. */
export const MAX_LIST = 1000;
/** Most record files one search() reads before it stops (reported as an incomplete page). */
export const MAX_SEARCH_READS = 5000;

/** Options of {@link RecordStore}. */
export interface RecordStoreOptions {
  /** Root directory (created if missing). */
  dir: string;
  /** Delete records whose call started more than this many days ago; 0 keeps them forever (default 30). */
  retentionDays?: number;
  /** Record stereo WAV for new calls (default false). */
  recordAudio?: boolean;
  /** Keep transcripts in new records (default true). */
  transcripts?: boolean;
  /** Default recording rate, Hz: the bridge rate (default 8000). */
  sampleRate?: number;
  /** Cap on one recording, ms (default 2 h). */
  maxRecordingMs?: number;
  /** How often running calls' records are checkpointed, ms (default 15000; 0: only at start and end). */
  checkpointIntervalMs?: number;
  /** How often call journals are flushed, ms (default 1000; 0: no journals). */
  journalFlushMs?: number;
  /** Cap on one call's journal, bytes (default 4 MiB). */
  journalMaxBytes?: number;
  /** How often pruning runs, ms (default 1 h; 0: only at start). */
  pruneIntervalMs?: number;
  /** Most files deleted per pruning run (default 2000); a run that hits it schedules the next soon. */
  pruneBatch?: number;
  /** Caps on one record. */
  limits?: Partial<RecordLimits>;
  logger?: Logger;
  /** Clock, epoch ms (tests). */
  now?: () => number;
}

/** Per-call options of {@link RecordStore.open}. */
export interface OpenRecordOptions {
  /** Record this call (default: the store's recordAudio). */
  recordAudio?: boolean;
  /** Bridge rate of this call, Hz (default: the store's sampleRate). */
  sampleRate?: number;
}

/** Settings that may change while running (config reload). */
export interface RecordStoreSettings {
  retentionDays?: number;
  recordAudio?: boolean;
  transcripts?: boolean;
}

/** What one pruning run did. */
export interface PruneResult {
  removedFiles: number;
  removedDirs: number;
  /** The batch cap was hit; more expired files remain. */
  more: boolean;
}

/** What startup recovery did. */
export interface RecoverResult {
  /** `in_progress` records of a dead process now marked `interrupted`. */
  records: number;
  /** Of those, rebuilt from their call's journal. */
  fromJournal: number;
  /** `.wav.part` recordings repaired and renamed. */
  recordings: number;
  /** Leftover temporary files removed. */
  tmpFiles: number;
}

/** Counters of the store (for /status and tests). */
export interface RecordStoreStats {
  /** Records written (checkpoints and finals). */
  writes: number;
  /** Failed record writes. */
  writeErrors: number;
  /** Records finished. */
  finished: number;
  /** Files removed by retention. */
  prunedFiles: number;
}

interface RecorderHost {
  readonly log: Logger;
  readonly limits: RecordLimits;
  now(): number;
  persist(rec: CallRecord, path: string, dir: string): Promise<boolean>;
  finished(r: CallRecorder): void;
}

// Date fields as epoch ms, so a journal line stays small and parses back as it was.
function journalPatch(patch: Partial<CallRecordInput>): Partial<CallRecordInput> {
  const out: Record<string, unknown> = { ...patch };
  for (const k of ['startedAt', 'answeredAt', 'endedAt'] as const) if (patch[k] !== undefined) out[k] = toMs(patch[k]);
  return out as Partial<CallRecordInput>;
}

/**
 * One call's record while the call runs. Every method is safe to call at any time and never throws
 * for disk reasons; after finish() updates are ignored.
 */
export class CallRecorder {
  /** Our call id. */
  readonly callId: string;
  /** Path of the JSON record. */
  readonly path: string;
  readonly #dir: string;
  readonly #host: RecorderHost;
  readonly #input: CallRecordInput;
  readonly #startMs: number;
  readonly #transcript: TranscriptBuffer | null;
  #tools: ToolUse[] = [];
  #toolsDropped = 0;
  #counters: Record<string, number> = {};
  #wav: StereoWavWriter | null;
  #wavSummary: WavSummary | null = null;
  #status: CallRecordStatus = 'in_progress';
  #dirty = true;
  #finishing: Promise<CallRecord> | undefined;
  readonly #journal: CallJournal | null;
  // Writes run one after another; a request made while one is queued shares it (it reads the latest state when it runs).
  #tail: Promise<unknown> = Promise.resolve();
  #queued: Promise<boolean> | undefined;

  /** @internal Created by {@link RecordStore.open}. */
  constructor(
    host: RecorderHost,
    input: CallRecordInput,
    dir: string,
    stem: string,
    transcripts: boolean,
    wav: StereoWavWriter | null,
    journal: CallJournal | null = null,
  ) {
    this.#host = host;
    this.#journal = journal;
    this.callId = input.callId;
    this.#dir = dir;
    this.path = join(dir, `${stem}.json`);
    this.#startMs = toMs(input.startedAt) ?? host.now();
    this.#input = { ...input, startedAt: this.#startMs };
    this.#transcript = transcripts ? new TranscriptBuffer(host.limits) : null;
    this.#wav = wav;
    this.#apply(input);
    journal?.append({ at: host.now(), k: 'open', input: journalPatch(this.#input) as CallRecordInput, transcripts });
  }

  /** @internal Write the journal's queued entries (an `alive` entry when there are none). */
  flushJournal(): Promise<void> {
    return this.#journal && !this.#finishing ? this.#journal.flush(this.#host.now(), true) : Promise.resolve();
  }

  /** True once finish() (or close()) was called. */
  get closed(): boolean {
    return this.#finishing !== undefined;
  }

  /** Changed since the last write. */
  get dirty(): boolean {
    return this.#dirty;
  }

  /** Whether this call is being recorded. */
  get recording(): boolean {
    return this.#wav !== null;
  }

  /** The record as it would be written now. */
  snapshot(): CallRecord {
    return this.#build();
  }

  /**
   * Merge fields into the record. `transcript` and `tools` replace what was added so far; `counters`
   * are merged by name; `callId` cannot change.
   */
  update(patch: Partial<CallRecordInput>): void {
    if (this.#finishing) return;
    this.#apply(patch);
    this.#journal?.append({ at: this.#host.now(), k: 'update', p: journalPatch(patch) });
  }

  /** Add one finished utterance (ignored when transcripts are off). */
  addTranscript(line: TranscriptLineInput): void {
    if (this.#finishing || !this.#transcript) return;
    const now = this.#host.now();
    this.#transcript.add(line, this.#startMs, now);
    this.#journal?.append({ at: now, k: 'line', l: { ...line, at: toMs(line.at) ?? now } });
    this.#dirty = true;
  }

  /** Add one finished tool call. */
  addTool(use: ToolUseInput): void {
    if (this.#finishing) return;
    const now = this.#host.now();
    this.#pushTool(use);
    this.#journal?.append({ at: now, k: 'tool', u: { ...use, at: toMs(use.at) ?? now } });
    this.#dirty = true;
  }

  /** Add to a counter (e.g. `bargeIns`). */
  count(name: string, by = 1): void {
    if (this.#finishing || !Number.isFinite(by) || by <= 0) return;
    mergeCounters(this.#counters, { [name]: (this.#counters[name] ?? 0) + by }, this.#host.limits.maxCounters);
    this.#journal?.append({ at: this.#host.now(), k: 'count', n: name, by });
    this.#dirty = true;
  }

  /**
   * Append one batch of audio to the recording (no-op when not recording): the caller's frame and the
   * agent audio played in the same tick. The shorter side is padded with silence. Both arrays are
   * copied before this returns, so the caller may reuse them: the call layer's recorder sink
   * (`CallRecorderSink`) has this shape and hands the record its batches directly.
   */
  audio(caller: Int16Array | null | undefined, agent: Int16Array | null | undefined): void {
    if (this.#finishing) return;
    this.#wav?.append(caller, agent);
  }

  /** Write the current state now (as `in_progress`), recording header included. Never rejects. */
  async checkpoint(): Promise<void> {
    if (this.#finishing) {
      await this.#finishing;
      return;
    }
    if (this.#wav) await this.#wav.flush();
    // The journal reaches at least as far as the checkpoint (recovery prefers the journal).
    if (this.#journal) {
      this.#journal.append({ at: this.#host.now(), k: 'alive' });
      await this.#journal.flush(this.#host.now()).catch(() => undefined);
      // finish() came while the journal was written: its final write covers this checkpoint.
      if (this.#finishing) {
        await this.#finishing;
        return;
      }
    }
    await this.#persist();
  }

  /**
   * Finish the record: merge `final`, close the recording and write the final record (status
   * `completed`). Idempotent; resolves with the record written (or that failed to write: the error is
   * logged). Never rejects.
   */
  finish(final?: Partial<CallRecordInput>): Promise<CallRecord> {
    return this.#finish(final, 'completed');
  }

  /** Same as finish() with no extra fields: the lifecycle close. */
  close(): Promise<CallRecord> {
    return this.finish();
  }

  /** @internal Finish as `interrupted` (store shutdown). */
  interrupt(reason: string): Promise<CallRecord> {
    if (!this.#finishing && this.#input.endReason === undefined) this.#input.endReason = reason;
    return this.#finish(undefined, 'interrupted');
  }

  #finish(final: Partial<CallRecordInput> | undefined, status: CallRecordStatus): Promise<CallRecord> {
    if (this.#finishing) return this.#finishing;
    if (final) this.#apply(final);
    if (toMs(this.#input.endedAt) === undefined) this.#input.endedAt = this.#host.now();
    this.#finishing = (async () => {
      if (this.#wav) this.#wavSummary = await this.#wav.close();
      this.#status = status;
      const ok = await this.#persist();
      // The journal goes once the final record is on disk; if that write failed, recovery still has it.
      await this.#journal?.close(ok);
      this.#host.finished(this);
      return this.#build();
    })();
    return this.#finishing;
  }

  #apply(patch: Partial<CallRecordInput>): void {
    const lim = this.#host.limits;
    for (const [k, v] of Object.entries(patch) as [keyof CallRecordInput, unknown][]) {
      if (v === undefined) continue;
      switch (k) {
        case 'callId':
          break;
        case 'startedAt': {
          const ms = toMs(v as CallRecordInput['startedAt']);
          if (ms !== undefined && ms === this.#startMs) this.#input.startedAt = ms;
          break;
        }
        case 'transcript':
          if (this.#transcript && Array.isArray(v)) {
            this.#transcript.clear();
            for (const l of v as TranscriptLineInput[]) this.#transcript.add(l, this.#startMs, this.#host.now());
          }
          break;
        case 'tools':
          if (Array.isArray(v)) {
            this.#tools = [];
            this.#toolsDropped = 0;
            for (const t of v as ToolUseInput[]) this.#pushTool(t);
          }
          break;
        case 'counters':
          if (v && typeof v === 'object') mergeCounters(this.#counters, v as Record<string, number>, lim.maxCounters);
          break;
        default:
          (this.#input as unknown as Record<string, unknown>)[k] = v;
      }
    }
    this.#dirty = true;
  }

  #pushTool(use: ToolUseInput): void {
    if (this.#tools.length >= this.#host.limits.maxTools) {
      this.#toolsDropped += 1;
      return;
    }
    this.#tools.push(toolUse(use, this.#host.now(), this.#host.limits));
  }

  #recordingInfo(): RecordingInfo | null {
    const w = this.#wav;
    if (!w) return null;
    const s = this.#wavSummary;
    const frames = s ? s.frames : w.frames;
    const dropped = s ? s.droppedFrames : w.droppedFrames;
    return {
      file: `${this.path.slice(this.#dir.length + 1, -'.json'.length)}.wav`,
      sampleRate: w.sampleRate,
      channels: 2,
      layout: 'caller-left,agent-right',
      durationMs: Math.round((frames * 1000) / w.sampleRate),
      droppedMs: Math.round((dropped * 1000) / w.sampleRate),
      truncated: s ? s.truncated : false,
      error: s ? s.error : w.error,
    };
  }

  #build(): CallRecord {
    const lim = this.#host.limits;
    const i = this.#input;
    const endMs = toMs(i.endedAt);
    const ansMs = toMs(i.answeredAt);
    const ended = this.#status !== 'in_progress';
    const ai = i.ai && typeof i.ai === 'object'
      ? { backend: text(i.ai.backend, 64) ?? 'unknown', model: text(i.ai.model, 128), voice: text(i.ai.voice, 64) }
      : null;
    return {
      version: 1,
      status: this.#status,
      callId: this.callId,
      sipCallId: text(i.sipCallId, lim.maxTextChars),
      direction: i.direction === 'outbound' ? 'outbound' : 'inbound',
      from: text(i.from, lim.maxTextChars) ?? '',
      to: text(i.to, lim.maxTextChars) ?? '',
      account: text(i.account, 256),
      remoteAddress: text(i.remoteAddress, 256),
      instanceId: text(i.instanceId, 64),
      startedAt: new Date(this.#startMs).toISOString(),
      answeredAt: toIso(ansMs),
      endedAt: ended ? toIso(endMs) : null,
      durationMs: ended && endMs !== undefined ? Math.max(0, endMs - this.#startMs) : null,
      talkMs: ended && endMs !== undefined ? (ansMs === undefined ? 0 : Math.max(0, endMs - ansMs)) : null,
      endReason: text(i.endReason, lim.maxTextChars),
      sipStatus: typeof i.sipStatus === 'number' && Number.isInteger(i.sipStatus) ? i.sipStatus : null,
      sipReason: text(i.sipReason, lim.maxTextChars),
      ai,
      tools: this.#tools.slice(),
      toolsDropped: this.#toolsDropped,
      usage: i.usage && typeof i.usage === 'object' ? usage(i.usage) : null,
      counters: { ...this.#counters },
      transcript: this.#transcript ? this.#transcript.lines.slice() : null,
      transcriptDropped: this.#transcript?.dropped ?? 0,
      recording: this.#recordingInfo(),
      error: text(i.error, lim.maxTextChars),
      updatedAt: new Date(this.#host.now()).toISOString(),
    };
  }

  #persist(): Promise<boolean> {
    if (this.#queued) return this.#queued;
    const p = this.#tail.then(async () => {
      this.#queued = undefined;
      this.#dirty = false;
      const ok = await this.#host.persist(this.#build(), this.path, this.#dir);
      if (!ok) this.#dirty = true;
      return ok;
    });
    this.#queued = p;
    this.#tail = p;
    return p;
  }
}

/** The call-record store; see the module comment. */
export class RecordStore {
  /** Root directory. */
  readonly dir: string;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #limits: RecordLimits;
  readonly #sampleRate: number;
  readonly #maxRecordingMs: number;
  readonly #checkpointMs: number;
  readonly #journalMs: number;
  readonly #journalMaxBytes: number;
  readonly #pruneMs: number;
  readonly #pruneBatch: number;
  #retentionDays: number;
  #recordAudio: boolean;
  #transcripts: boolean;
  readonly #open = new Map<string, CallRecorder>();
  // callId -> JSON path of records this process wrote, newest last (bounded), so read() rarely scans.
  readonly #paths = new Map<string, string>();
  readonly #stats: RecordStoreStats = { writes: 0, writeErrors: 0, finished: 0, prunedFiles: 0 };
  readonly #errorLog = new Map<string, { at: number; suppressed: number }>();
  #checkpointTimer: NodeJS.Timeout | undefined;
  #journalTimer: NodeJS.Timeout | undefined;
  #pruneTimer: NodeJS.Timeout | undefined;
  #pruning: Promise<PruneResult> | undefined;
  #started = false;
  #closing: Promise<void> | undefined;

  /** Create the store; nothing touches the disk until start() or open(). */
  constructor(opts: RecordStoreOptions) {
    this.dir = opts.dir;
    this.#log = opts.logger ?? silentLogger();
    this.#now = opts.now ?? Date.now;
    this.#limits = { ...DEFAULT_RECORD_LIMITS, ...opts.limits };
    this.#retentionDays = Math.max(0, opts.retentionDays ?? 30);
    this.#recordAudio = opts.recordAudio ?? false;
    this.#transcripts = opts.transcripts ?? true;
    this.#sampleRate = opts.sampleRate ?? 8000;
    this.#maxRecordingMs = opts.maxRecordingMs ?? DEFAULT_MAX_RECORDING_MS;
    this.#checkpointMs = opts.checkpointIntervalMs ?? 15_000;
    this.#journalMs = opts.journalFlushMs ?? 1000;
    this.#journalMaxBytes = opts.journalMaxBytes ?? DEFAULT_JOURNAL_MAX_BYTES;
    this.#pruneMs = opts.pruneIntervalMs ?? 3_600_000;
    this.#pruneBatch = Math.max(1, opts.pruneBatch ?? 2000);
  }

  /** True once close() was called. */
  get closed(): boolean {
    return this.#closing !== undefined;
  }

  /** Calls whose record is open. */
  get active(): number {
    return this.#open.size;
  }

  /** Write and prune counters. */
  get stats(): Readonly<RecordStoreStats> {
    return { ...this.#stats };
  }

  /** Current retention, days (0: forever). */
  get retentionDays(): number {
    return this.#retentionDays;
  }

  /**
   * Create the directory, recover what a dead process left, prune, and start the checkpoint and
   * pruning timers. Call before the first call. Never rejects: an unusable directory is logged and
   * calls go on without records.
   */
  async start(): Promise<void> {
    if (this.#closing) throw new InvalidStateError(`start() after close() [dir:${this.dir}]`);
    if (this.#started) return;
    this.#started = true;
    try {
      await fsp.mkdir(this.dir, { recursive: true, mode: RECORD_DIR_MODE });
      await fsp.access(this.dir, 2 /* W_OK */);
    } catch (err) {
      this.#log.error({ err, dir: this.dir }, `records directory is not usable; calls go on without records [dir:${this.dir}, code:${codeOf(err)}]`);
    }
    const rec = await this.recover().catch((err: unknown) => {
      this.#log.warn({ err }, 'record recovery failed');
      return undefined;
    });
    if (rec && rec.records + rec.recordings + rec.tmpFiles > 0) this.#log.info(rec, 'recovered records left by an earlier run');
    await this.prune().catch(() => undefined);
    if (this.#journalMs > 0) {
      this.#journalTimer = setInterval(() => this.#flushJournals(), this.#journalMs);
      this.#journalTimer.unref();
    }
    if (this.#checkpointMs > 0) {
      this.#checkpointTimer = setInterval(() => void this.#checkpointDirty(), this.#checkpointMs);
      this.#checkpointTimer.unref();
    }
    if (this.#pruneMs > 0) {
      this.#pruneTimer = setInterval(() => void this.prune().catch(() => undefined), this.#pruneMs);
      this.#pruneTimer.unref();
    }
  }

  /** Apply changed settings (config reload); recording and transcript switches apply to new calls. */
  configure(s: RecordStoreSettings): void {
    if (s.retentionDays !== undefined && Number.isFinite(s.retentionDays)) this.#retentionDays = Math.max(0, s.retentionDays);
    if (s.recordAudio !== undefined) this.#recordAudio = s.recordAudio;
    if (s.transcripts !== undefined) this.#transcripts = s.transcripts;
  }

  /**
   * Open the record of a starting call and write it as `in_progress` (in the background).
   * @throws InvalidStateError after close(), or when a record for this call id is already open.
   */
  open(input: CallRecordInput, opts: OpenRecordOptions = {}): CallRecorder {
    if (this.#closing) throw new InvalidStateError(`record open after close() [callId:${input.callId}]`);
    if (typeof input.callId !== 'string' || input.callId.length === 0) throw new TypeError('record needs a callId');
    if (this.#open.has(input.callId)) throw new InvalidStateError(`record already open [callId:${input.callId}]`);
    const startMs = toMs(input.startedAt) ?? this.#now();
    const dayDir = join(this.dir, dayDirName(startMs));
    const stem = this.#uniqueStem(dayDir, fileStem(input.callId), input.callId);
    const recordAudio = opts.recordAudio ?? this.#recordAudio;
    let wav: StereoWavWriter | null = null;
    if (recordAudio) {
      try {
        wav = new StereoWavWriter(join(dayDir, `${stem}.wav`), {
          sampleRate: opts.sampleRate ?? this.#sampleRate,
          maxDurationMs: this.#maxRecordingMs,
          logger: this.#log.child({ callId: input.callId }),
        });
      } catch (err) {
        this.#log.error({ err, callId: input.callId }, `cannot record call [callId:${input.callId}]`);
      }
    }
    const host: RecorderHost = {
      log: this.#log,
      limits: this.#limits,
      now: this.#now,
      persist: (rec, path, dir) => this.#write(rec, path, dir),
      finished: (r) => this.#finished(r),
    };
    const journal = this.#journalMs > 0 ? new CallJournal(join(dayDir, `${stem}${JOURNAL_SUFFIX}`), this.#journalMaxBytes) : null;
    const r = new CallRecorder(host, { ...input, startedAt: startMs }, dayDir, stem, this.#transcripts, wav, journal);
    // The opening entry reaches the disk now, not at the next tick.
    void r.flushJournal().catch((err: unknown) => this.#logWriteError(err, journal?.path ?? dayDir, input.callId));
    this.#open.set(input.callId, r);
    this.#remember(input.callId, r.path);
    void r.checkpoint();
    return r;
  }

  /** The open recorder of a call, if any. */
  recorder(callId: string): CallRecorder | undefined {
    return this.#open.get(callId);
  }

  /**
   * One record by call id: the live state for an open call, else the file (searched newest day first).
   * Undefined when there is none or it cannot be read (logged).
   */
  async read(callId: string): Promise<CallRecord | undefined> {
    const live = this.#open.get(callId);
    if (live) return live.snapshot();
    if (typeof callId !== 'string' || callId.length === 0 || callId.length > 512) return undefined;
    const known = this.#paths.get(callId);
    if (known) {
      const rec = await this.#readFile(known);
      if (rec) return rec;
    }
    const stem = fileStem(callId);
    for (const day of await this.#days()) {
      const rec = await this.#readFile(join(this.dir, day, `${stem}.json`));
      if (rec && rec.callId === callId) return rec;
    }
    return undefined;
  }

  /**
   * The `n` most recently written records (newest first by start time), without transcripts. Open
   * calls show their live state. `n` is capped at {@link MAX_LIST}.
   */
  async listRecent(n: number): Promise<CallRecordSummary[]> {
    const want = Math.max(0, Math.min(MAX_LIST, Math.floor(n)));
    const out: CallRecord[] = [];
    if (want === 0) return [];
    for (const day of await this.#days()) {
      const dir = join(this.dir, day);
      const stats = await this.#recordFiles(dir);
      stats.sort((a, b) => b.m - a.m);
      for (const { f, m } of stats.slice(0, want - out.length)) {
        if (m < 0) continue;
        const rec = await this.#readFile(join(dir, f));
        if (rec) out.push(this.#open.get(rec.callId)?.snapshot() ?? rec);
      }
      if (out.length >= want) break;
    }
    out.sort((a, b) => Date.parse(b.startedAt) - Date.parse(a.startedAt));
    return out.map(summarize);
  }

  /**
   * Records matching a history query, newest first by start time (then by call id, as the database
   * orders them), a page at a time. Only the day directories the dates allow are read, and at most
   * {@link MAX_SEARCH_READS} files per call: past that the page says it is not complete.
   */
  async search(q: RecordQuery): Promise<RecordPage> {
    const want = q.offset + q.limit;
    const found: CallRecord[] = [];
    let reads = 0;
    for (const day of await this.#days()) {
      if (found.length > want) break;
      const dayStart = dayDirStart(day) ?? 0;
      if (q.until && dayStart >= q.until.getTime()) continue;
      if (q.since && dayStart + DAY_MS <= q.since.getTime()) break;
      const dir = join(this.dir, day);
      const matches: CallRecord[] = [];
      for (const { f, m } of await this.#recordFiles(dir)) {
        if (m < 0) continue;
        if (reads >= MAX_SEARCH_READS) {
          found.push(...matches.sort(newestFirst));
          return { records: found.slice(q.offset, want).map(summarize), next: null, complete: false };
        }
        reads += 1;
        const rec = await this.#readFile(join(dir, f));
        if (rec && matchesQuery(rec, q)) matches.push(rec);
      }
      found.push(...matches.sort(newestFirst));
    }
    return { records: found.slice(q.offset, want).map(summarize), next: found.length > want ? want : null, complete: true };
  }

  /** Call ids of the records written (or rewritten) at or after `ms` (epoch), newest days first. */
  async writtenSince(ms: number): Promise<string[]> {
    const out: string[] = [];
    for (const day of await this.#days()) {
      // A record lives in the directory of its start day; a call longer than a day is not kept apart.
      if ((dayDirStart(day) ?? 0) + 2 * DAY_MS < ms) break;
      const dir = join(this.dir, day);
      for (const { f, m } of await this.#recordFiles(dir)) {
        if (m < ms) continue;
        const rec = await this.#readFile(join(dir, f));
        if (rec) out.push(rec.callId);
      }
    }
    return out;
  }

  /**
   * Delete records whose call started more than retentionDays ago (whole day directories at a time),
   * at most `pruneBatch` files per run; a run that hits the cap schedules another one second later.
   */
  prune(): Promise<PruneResult> {
    if (this.#pruning) return this.#pruning;
    this.#pruning = this.#prune().finally(() => {
      this.#pruning = undefined;
    });
    return this.#pruning;
  }

  /**
   * Repair what a dead process left in the newest day directories: the record of a call that was
   * still up is rebuilt from its journal (answer, transcript, tools and counters, ended at the last
   * journal entry) or, without one, from its last checkpoint, and marked `interrupted`;
   * `.wav.part` recordings get a correct header and their final name; temporary files are
   * removed. Bounded to 2000 files.
   */
  async recover(): Promise<RecoverResult> {
    const res: RecoverResult = { records: 0, fromJournal: 0, recordings: 0, tmpFiles: 0 };
    let budget = 2000;
    const days = (await this.#days()).slice(0, 3);
    for (const day of days) {
      const dir = join(this.dir, day);
      let names: string[];
      try {
        names = await fsp.readdir(dir);
      } catch {
        continue;
      }
      const openPaths = new Set([...this.#open.values()].map((r) => r.path));
      const repaired = new Map<string, { durationMs: number; sampleRate: number }>();
      for (const f of names) {
        if (budget <= 0) break;
        const p = join(dir, f);
        if (f.endsWith(TMP_SUFFIX) && f.startsWith('.') && !f.includes(`.${process.pid}.`)) {
          budget -= 1;
          if (await fsp.unlink(p).then(() => true, () => false)) res.tmpFiles += 1;
        } else if (f.endsWith(`.wav${PART_SUFFIX}`)) {
          const stem = f.slice(0, -`.wav${PART_SUFFIX}`.length);
          if (openPaths.has(join(dir, `${stem}.json`))) continue;
          budget -= 1;
          try {
            const info = await repairWavHeader(p);
            if (!info) continue;
            await fsp.rename(p, join(dir, `${stem}.wav`));
            repaired.set(stem, { durationMs: Math.round((info.dataBytes / (2 * info.channels) / info.sampleRate) * 1000), sampleRate: info.sampleRate });
            res.recordings += 1;
          } catch (err) {
            this.#log.warn({ err, path: p }, `cannot repair recording [path:${p}]`);
          }
        }
      }
      const journals = new Set(names.filter((f) => f.endsWith(JOURNAL_SUFFIX)).map((f) => f.slice(0, -JOURNAL_SUFFIX.length)));
      const stems = new Set([...journals, ...names.filter((f) => f.endsWith('.json') && !f.startsWith('.')).map((f) => f.slice(0, -'.json'.length))]);
      for (const stem of stems) {
        if (budget <= 0) break;
        const p = join(dir, `${stem}.json`);
        if (openPaths.has(p)) continue;
        budget -= 1;
        const rec = await this.#readFile(p);
        const journalPath = join(dir, `${stem}${JOURNAL_SUFFIX}`);
        if (rec && rec.status !== 'in_progress') {
          // Finished, but the process died before deleting the journal.
          if (journals.has(stem)) await fsp.unlink(journalPath).catch(() => undefined);
          continue;
        }
        const wav = repaired.get(stem);
        const entries = journals.has(stem) ? parseJournal(await fsp.readFile(journalPath, 'utf8').catch(() => '')) : [];
        let fixed = entries.length > 0 ? await this.#rebuild(entries, dir, stem, rec) : undefined;
        if (fixed) res.fromJournal += 1;
        else if (rec) fixed = this.#fromCheckpoint(rec);
        if (!fixed) continue;
        if (wav && fixed.recording) fixed.recording = { ...fixed.recording, durationMs: wav.durationMs };
        if (await this.#write(fixed, p, dir)) {
          res.records += 1;
          if (journals.has(stem)) await fsp.unlink(journalPath).catch(() => undefined);
        }
      }
    }
    return res;
  }

  /** An `in_progress` record with no journal: it ends at its last checkpoint. */
  #fromCheckpoint(rec: CallRecord): CallRecord {
    const endMs = Date.parse(rec.updatedAt) || Date.parse(rec.startedAt);
    const startMs = Date.parse(rec.startedAt);
    const ansMs = rec.answeredAt ? Date.parse(rec.answeredAt) : undefined;
    return {
      ...rec,
      status: 'interrupted',
      endedAt: new Date(endMs).toISOString(),
      durationMs: Math.max(0, endMs - startMs),
      talkMs: ansMs === undefined ? 0 : Math.max(0, endMs - ansMs),
      endReason: rec.endReason ?? 'agent_stopped',
      error: rec.error ?? 'the agent stopped before the call ended; the record ends at its last checkpoint',
    };
  }

  /**
   * Replay a dead call's journal through a recorder of its own (same normalisation and caps as a
   * live call) and end it at the last entry. The recording, which the journal does not describe,
   * comes from the last checkpoint. Undefined when the journal has no opening entry.
   */
  async #rebuild(entries: JournalEntry[], dir: string, stem: string, checkpoint: CallRecord | undefined): Promise<CallRecord | undefined> {
    const open = entries.find((e): e is Extract<JournalEntry, { k: 'open' }> => e.k === 'open');
    if (!open || typeof open.input !== 'object' || typeof open.input?.callId !== 'string') return undefined;
    let now = open.at;
    let built: CallRecord | undefined;
    const host: RecorderHost = {
      log: this.#log,
      limits: this.#limits,
      now: () => now,
      persist: async (rec) => {
        built = rec;
        return true;
      },
      finished: () => undefined,
    };
    try {
      const r = new CallRecorder(host, open.input, dir, stem, open.transcripts !== false, null);
      for (const e of entries) {
        now = Math.max(now, e.at);
        if (e.k === 'update') r.update(e.p);
        else if (e.k === 'line') r.addTranscript(e.l);
        else if (e.k === 'tool') r.addTool(e.u);
        else if (e.k === 'count') r.count(e.n, e.by);
      }
      r.update({ endedAt: now });
      if (!r.snapshot().error) r.update({ error: 'the agent stopped before the call ended; the record ends at the last entry of its journal' });
      await r.interrupt('agent_stopped');
    } catch (err) {
      this.#log.warn({ err, stem }, `cannot rebuild a call record from its journal [stem:${stem}]`);
      return undefined;
    }
    if (!built) return undefined;
    return { ...built, recording: checkpoint?.recording ?? null, updatedAt: new Date(this.#now()).toISOString() };
  }

  /** Stop the checkpoint, journal and pruning timers without finishing anything (as a dying process would). */
  stopTimers(): void {
    for (const t of [this.#checkpointTimer, this.#journalTimer, this.#pruneTimer]) if (t) clearInterval(t);
  }

  /** Checkpoint every open record (recording headers included) and wait for all pending writes. Never rejects. */
  async flushAll(): Promise<void> {
    await Promise.all([...this.#open.values()].map((r) => r.checkpoint()));
  }

  /**
   * Stop the timers and finish every still-open record as `interrupted` (endReason `agent_shutdown`
   * unless one was set). Idempotent; never rejects.
   */
  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    if (this.#checkpointTimer) clearInterval(this.#checkpointTimer);
    if (this.#journalTimer) clearInterval(this.#journalTimer);
    if (this.#pruneTimer) clearInterval(this.#pruneTimer);
    this.#closing = (async () => {
      await Promise.all([...this.#open.values()].map((r) => r.interrupt('agent_shutdown')));
      await this.#pruning?.catch(() => undefined);
    })();
    return this.#closing;
  }

  async #checkpointDirty(): Promise<void> {
    await Promise.all([...this.#open.values()].filter((r) => r.dirty || r.recording).map((r) => r.checkpoint()));
  }

  #flushJournals(): void {
    for (const r of this.#open.values()) {
      r.flushJournal().catch((err: unknown) => this.#logWriteError(err, r.path.replace(/\.json$/, JOURNAL_SUFFIX), r.callId));
    }
  }

  #finished(r: CallRecorder): void {
    if (this.#open.get(r.callId) === r) this.#open.delete(r.callId);
    this.#stats.finished += 1;
  }

  #remember(callId: string, path: string): void {
    this.#paths.delete(callId);
    this.#paths.set(callId, path);
    if (this.#paths.size > 5000) this.#paths.delete(this.#paths.keys().next().value as string);
  }

  #uniqueStem(dayDir: string, stem: string, callId: string): string {
    try {
      mkdirSync(dayDir, { recursive: true, mode: RECORD_DIR_MODE });
      if (!existsSync(join(dayDir, `${stem}.json`))) return stem;
      // A call id reused across restarts must not overwrite the earlier call's record.
      for (let i = 2; i < 1000; i++) {
        const s = `${stem}~${i}`;
        if (!existsSync(join(dayDir, `${s}.json`))) {
          this.#log.warn({ callId, stem: s }, `call id already has a record today; writing a second one [callId:${callId}]`);
          return s;
        }
      }
    } catch (err) {
      this.#logWriteError(err, join(dayDir, `${stem}.json`), callId);
    }
    return stem;
  }

  async #write(rec: CallRecord, path: string, dir: string): Promise<boolean> {
    const data = JSON.stringify(rec, null, 2) + '\n';
    try {
      try {
        await writeFileAtomic(path, data);
      } catch (err) {
        if (codeOf(err) !== 'ENOENT') throw err;
        // The day directory vanished (or was never created): make it and try once more.
        await fsp.mkdir(dir, { recursive: true, mode: RECORD_DIR_MODE });
        await writeFileAtomic(path, data);
      }
      this.#stats.writes += 1;
      return true;
    } catch (err) {
      this.#stats.writeErrors += 1;
      this.#logWriteError(err, path, rec.callId);
      return false;
    }
  }

  #logWriteError(err: unknown, path: string, callId: string): void {
    const code = codeOf(err);
    const now = this.#now();
    const e = this.#errorLog.get(code);
    // One line per error code per minute: a full disk must not flood the journal as well.
    if (e && now - e.at < 60_000) {
      e.suppressed += 1;
      return;
    }
    this.#errorLog.set(code, { at: now, suppressed: 0 });
    this.#log.error(
      { err, path, callId, suppressedSinceLast: e?.suppressed ?? 0 },
      `call record write failed; the call goes on [callId:${callId}, path:${path}, code:${code}]`,
    );
  }

  async #readFile(path: string): Promise<CallRecord | undefined> {
    let raw: string;
    try {
      raw = await fsp.readFile(path, 'utf8');
    } catch (err) {
      if (codeOf(err) !== 'ENOENT') this.#log.warn({ err, path }, `cannot read call record [path:${path}]`);
      return undefined;
    }
    try {
      const rec = JSON.parse(raw) as CallRecord;
      if (!rec || typeof rec !== 'object' || typeof rec.callId !== 'string' || typeof rec.startedAt !== 'string') {
        throw new Error('not a call record');
      }
      return rec;
    } catch (err) {
      this.#log.warn({ err, path }, `unreadable call record [path:${path}]`);
      return undefined;
    }
  }

  /** The record files of a day directory with their modification times (-1: gone meanwhile). */
  async #recordFiles(dir: string): Promise<{ f: string; m: number }[]> {
    let names: string[];
    try {
      names = (await fsp.readdir(dir)).filter((f) => f.endsWith('.json') && !f.startsWith('.'));
    } catch {
      return [];
    }
    return Promise.all(names.map(async (f) => ({ f, m: await fsp.stat(join(dir, f)).then((st) => st.mtimeMs, () => -1) })));
  }

  /** Day directory names, newest first. */
  async #days(): Promise<string[]> {
    let names: string[];
    try {
      names = await fsp.readdir(this.dir);
    } catch {
      return [];
    }
    return names.filter((n) => dayDirStart(n) !== undefined).sort().reverse();
  }

  async #prune(): Promise<PruneResult> {
    const res: PruneResult = { removedFiles: 0, removedDirs: 0, more: false };
    if (this.#retentionDays <= 0 || this.#closing) return res;
    const cutoff = this.#now() - this.#retentionDays * DAY_MS;
    const openPaths = new Set([...this.#open.values()].map((r) => r.path));
    const days = (await this.#days()).reverse();
    for (const day of days) {
      // A day directory holds calls that started in [day, day + 1): all expired once day + 1 <= cutoff.
      if ((dayDirStart(day) as number) + DAY_MS > cutoff) break;
      const dir = join(this.dir, day);
      let names: string[];
      try {
        names = await fsp.readdir(dir);
      } catch {
        continue;
      }
      let kept = 0;
      for (const f of names) {
        if (res.removedFiles >= this.#pruneBatch) {
          res.more = true;
          break;
        }
        const p = join(dir, f);
        if (openPaths.has(p) || [...openPaths].some((o) => p.startsWith(o.slice(0, -'.json'.length) + '.'))) {
          kept += 1;
          continue;
        }
        try {
          await fsp.rm(p, { recursive: false, force: true });
          res.removedFiles += 1;
        } catch (err) {
          kept += 1;
          this.#log.warn({ err, path: p }, `cannot delete expired record file [path:${p}, code:${codeOf(err)}]`);
        }
      }
      if (res.more) break;
      if (kept === 0) {
        await fsp.rmdir(dir).then(
          () => {
            res.removedDirs += 1;
          },
          () => undefined,
        );
      }
    }
    this.#stats.prunedFiles += res.removedFiles;
    if (res.removedFiles > 0) this.#log.info({ ...res, retentionDays: this.#retentionDays }, 'pruned expired call records');
    if (res.more && !this.#closing) {
      const t = setTimeout(() => void this.prune().catch(() => undefined), 1000);
      t.unref();
    }
    return res;
  }
}

/** Later start first; the same start by call id, ascending (the database's ORDER BY). */
function newestFirst(a: CallRecord, b: CallRecord): number {
  return Date.parse(b.startedAt) - Date.parse(a.startedAt) || (a.callId < b.callId ? -1 : a.callId > b.callId ? 1 : 0);
}

function summarize(r: CallRecord): CallRecordSummary {
  const { transcript, ...rest } = r;
  return { ...rest, transcriptLines: transcript?.length ?? 0 };
}

function codeOf(err: unknown): string {
  return (err as NodeJS.ErrnoException | undefined)?.code ?? (err instanceof Error ? err.name : 'unknown');
}
