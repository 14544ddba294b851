/**
 * A call's journal: what happened to the call, appended as it happens (NDJSON, one entry per
 * line, next to the record as `<stem>.journal`), so a process killed mid-call loses at most the
 * last flush interval. The store flushes every open journal about once a second; a flush with
 * nothing new writes an `alive` entry, so the last entry tells when the process was last seen
 * with the call up. The journal is deleted once the final record is on disk; recovery at start
 * rebuilds the record of a dead call from it (see RecordStore.recover).
 *
 * Entries: `{"at": epochMs, "k": kind, ...}` with kinds
 *   open   {input, transcripts}   the record's opening fields (first line)
 *   update {p}                    fields merged into the record (answeredAt, endReason, ...)
 *   line   {l}                    one transcript line
 *   tool   {u}                    one finished tool call
 *   count  {n, by}                a counter grew
 *   alive  {}                     still up, nothing new
 *
 * Bounded: past `maxBytes` only `alive` entries are kept (so the end time stays right) and the
 * rest are counted as dropped. Write errors are logged by the store, never thrown.
 */
import { promises as fsp } from 'node:fs';
import { dirname } from 'node:path';
import { RECORD_DIR_MODE } from './atomic';
import type { CallRecordInput, ToolUseInput, TranscriptLineInput } from './types';

/** Journal file suffix (after the record's stem). */
export const JOURNAL_SUFFIX = '.journal';
/** Default cap on one journal. */
export const DEFAULT_JOURNAL_MAX_BYTES = 4 * 1024 * 1024;
/** Room kept past the cap for `alive` entries. */
const ALIVE_RESERVE_BYTES = 512 * 1024;

/** One journal entry as written. */
export type JournalEntry =
  | { at: number; k: 'open'; input: CallRecordInput; transcripts: boolean }
  | { at: number; k: 'update'; p: Partial<CallRecordInput> }
  | { at: number; k: 'line'; l: TranscriptLineInput }
  | { at: number; k: 'tool'; u: ToolUseInput }
  | { at: number; k: 'count'; n: string; by: number }
  | { at: number; k: 'alive' };

/** The append side of one journal. */
export class CallJournal {
  readonly path: string;
  readonly #maxBytes: number;
  #pending: string[] = [];
  #bytes = 0;
  #dropped = 0;
  #fh: fsp.FileHandle | undefined;
  #opening: Promise<fsp.FileHandle> | undefined;
  #tail: Promise<void> = Promise.resolve();
  #closed = false;

  constructor(path: string, maxBytes = DEFAULT_JOURNAL_MAX_BYTES) {
    this.path = path;
    this.#maxBytes = maxBytes;
  }

  /** Entries dropped past the size cap. */
  get dropped(): number {
    return this.#dropped;
  }

  /** True when entries wait for the next flush. */
  get pending(): boolean {
    return this.#pending.length > 0;
  }

  /** Queue one entry for the next flush. */
  append(e: JournalEntry): void {
    if (this.#closed) return;
    const line = `${JSON.stringify(e)}\n`;
    const cap = e.k === 'alive' ? this.#maxBytes + ALIVE_RESERVE_BYTES : this.#maxBytes;
    if (this.#bytes + line.length > cap) {
      this.#dropped++;
      return;
    }
    this.#bytes += line.length;
    this.#pending.push(line);
  }

  /** Write what is queued (one write; `alive` first when nothing is). Rejects on a disk error. */
  flush(at: number, alive = false): Promise<void> {
    if (this.#closed) return this.#tail;
    if (alive && this.#pending.length === 0) this.append({ at, k: 'alive' });
    if (this.#pending.length === 0) return this.#tail;
    const data = this.#pending.join('');
    this.#pending = [];
    const p = this.#tail.then(async () => {
      const fh = await this.#handle();
      await fh.write(data);
    });
    this.#tail = p.catch(() => undefined);
    return p;
  }

  /** Flush, close the file and (when `remove`) delete it. Never rejects. */
  async close(remove: boolean): Promise<void> {
    if (this.#closed) return;
    await this.flush(Date.now()).catch(() => undefined);
    this.#closed = true;
    await this.#tail;
    const fh = this.#fh ?? (this.#opening ? await this.#opening.catch(() => undefined) : undefined);
    await fh?.close().catch(() => undefined);
    if (remove) await fsp.unlink(this.path).catch(() => undefined);
  }

  #handle(): Promise<fsp.FileHandle> {
    if (this.#fh) return Promise.resolve(this.#fh);
    this.#opening ??= (async () => {
      await fsp.mkdir(dirname(this.path), { recursive: true, mode: RECORD_DIR_MODE });
      const fh = await fsp.open(this.path, 'a', 0o640);
      this.#fh = fh;
      return fh;
    })();
    const opening = this.#opening;
    // A failed open is retried at the next flush.
    opening.catch(() => {
      if (this.#opening === opening) this.#opening = undefined;
    });
    return opening;
  }
}

/** Parse a journal's text; a torn last line (the process died mid-write) and bad lines are skipped. */
export function parseJournal(text: string): JournalEntry[] {
  const out: JournalEntry[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    try {
      const e = JSON.parse(line) as JournalEntry;
      if (e && typeof e === 'object' && typeof e.at === 'number' && typeof e.k === 'string') out.push(e);
    } catch {
      // torn or corrupt line
    }
  }
  return out;
}
