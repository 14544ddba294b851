/**
 * Keeps a second store (PostgreSQL) in step with the local records, off the audio path: a call's
 * record is marked dirty when something happens to it, and a flush once a second writes the dirty
 * records as they stand. A failed write leaves its record dirty; while the store is down the local
 * journal and record files keep every call, and the dirty set (persisted next to them) is written
 * when the store answers again, nothing lost. A restart reloads that set, and also rewrites every
 * record written since it was last saved (what a crash may have kept from it).
 */
import { promises as fsp } from 'node:fs';
import type { Logger } from '../logging/logger';
import { writeFileAtomic } from './atomic';
import type { CallRecord } from './types';

export interface RecordSyncOptions {
  /** Write one record (an idempotent upsert). */
  write(rec: CallRecord): Promise<void>;
  /** The record as it stands now (live or from disk); undefined when gone. */
  read(callId: string): Promise<CallRecord | undefined>;
  /** Call ids of records written since `ms` (epoch), for what a crash may have left unsynced. */
  writtenSince(ms: number): Promise<string[]>;
  /** Where the dirty set is kept between runs. */
  stateFile: string;
  logger: Logger;
  /** Flush period, ms (default 1000). */
  intervalMs?: number;
  /** Dirty records kept at most; older ones are dropped and counted (they stay on disk). Default 100 000. */
  maxPending?: number;
}

export interface RecordSyncStats {
  pending: number;
  written: number;
  failedWrites: number;
  dropped: number;
  /** The store failed its last write and has not taken one since. */
  down: boolean;
}

interface SavedState {
  savedAt: number;
  pending: string[];
}

export class RecordSync {
  readonly #o: RecordSyncOptions;
  /** Dirty call ids, oldest first, with a version bumped by each notify. */
  readonly #pending = new Map<string, number>();
  #version = 0;
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> | undefined;
  #stateDirty = false;
  #closed = false;
  readonly stats: RecordSyncStats = { pending: 0, written: 0, failedWrites: 0, dropped: 0, down: false };

  constructor(o: RecordSyncOptions) {
    this.#o = o;
  }

  /** Reload what the last run left dirty (and what it wrote after saving that), then flush periodically. */
  async start(): Promise<void> {
    const saved = await this.#load();
    for (const id of saved?.pending ?? []) this.notify(id);
    // Records written after the last save may have missed the store (a crash within a second).
    const since = saved ? saved.savedAt - 5_000 : Date.now() - 24 * 3600_000;
    for (const id of await this.#o.writtenSince(since)) this.notify(id);
    this.#timer = setInterval(() => void this.flush(), this.#o.intervalMs ?? 1000);
    this.#timer.unref();
  }

  /** Something happened to this call's record: write it at the next flush. */
  notify(callId: string): void {
    if (this.#closed) return;
    this.#pending.delete(callId);
    this.#pending.set(callId, ++this.#version);
    const max = this.#o.maxPending ?? 100_000;
    while (this.#pending.size > max) {
      const oldest = this.#pending.keys().next().value as string;
      this.#pending.delete(oldest);
      this.stats.dropped++;
    }
    this.stats.pending = this.#pending.size;
    this.#stateDirty = true;
  }

  /** Write every dirty record now (one flush at a time); resolves when done or the store failed. */
  flush(): Promise<void> {
    this.#flushing ??= this.#flush().finally(() => {
      this.#flushing = undefined;
    });
    return this.#flushing;
  }

  async #flush(): Promise<void> {
    for (const [id, version] of [...this.#pending]) {
      const rec = await this.#o.read(id).catch(() => undefined);
      if (rec) {
        try {
          await this.#o.write(rec);
        } catch (err) {
          this.stats.failedWrites++;
          if (!this.stats.down) this.#o.logger.warn({ err: (err as Error).message, pending: this.#pending.size }, 'record store unreachable: records stay on disk and are written when it answers');
          this.stats.down = true;
          break;
        }
        this.stats.written++;
        if (this.stats.down) this.#o.logger.info({ pending: this.#pending.size }, 'record store answers again: writing what waited');
        this.stats.down = false;
      }
      // Notified again while it was written: keep it for the next flush.
      if (this.#pending.get(id) === version) this.#pending.delete(id);
      this.#stateDirty = true;
    }
    this.stats.pending = this.#pending.size;
    if (this.#stateDirty) await this.#save();
  }

  /** A last flush (bounded), then save what is still dirty for the next run. */
  async close(timeoutMs = 5000): Promise<void> {
    if (this.#closed) return;
    if (this.#timer) clearInterval(this.#timer);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.flush(), new Promise((r) => (timer = setTimeout(r, timeoutMs)))]);
    clearTimeout(timer);
    this.#closed = true;
    this.#stateDirty = true;
    await this.#save();
  }

  async #save(): Promise<void> {
    this.#stateDirty = false;
    const state: SavedState = { savedAt: Date.now(), pending: [...this.#pending.keys()] };
    try {
      await writeFileAtomic(this.#o.stateFile, JSON.stringify(state));
    } catch (err) {
      this.#stateDirty = true;
      this.#o.logger.warn({ err: (err as Error).message, file: this.#o.stateFile }, 'could not save the record store backlog');
    }
  }

  async #load(): Promise<SavedState | undefined> {
    let text: string;
    try {
      text = await fsp.readFile(this.#o.stateFile, 'utf8');
    } catch {
      return undefined;
    }
    try {
      const s = JSON.parse(text) as Partial<SavedState>;
      if (typeof s.savedAt !== 'number' || !Array.isArray(s.pending)) throw new Error('not a backlog');
      return { savedAt: s.savedAt, pending: s.pending.filter((x): x is string => typeof x === 'string' && x.length > 0 && x.length <= 512) };
    } catch (err) {
      this.#o.logger.warn({ err: (err as Error).message, file: this.#o.stateFile }, 'record store backlog unreadable: rewriting the last day of records');
      return undefined;
    }
  }
}
