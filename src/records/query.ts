/**
 * History queries over call records: the filter (pure, shared by the file store and tests) and the
 * page shape. The PostgreSQL store expresses the same filter in SQL (PostgresRecords.search).
 */
import type { CallRecord, CallRecordSummary } from './types';

/** Which records a history query wants (every field optional but the page). */
export interface RecordQuery {
  /** Started at or after. */
  since?: Date;
  /** Started before. */
  until?: Date;
  /** Text found in the From or To URI, case-insensitive. */
  caller?: string;
  /** End reasons, any of. */
  outcomes?: readonly string[];
  /** Start-to-end duration bounds, ms, inclusive. */
  minDurationMs?: number;
  maxDurationMs?: number;
  /** Text found in a transcript line, case-insensitive. */
  text?: string;
  limit: number;
  offset: number;
}

/** One page of records matching a query, newest first. */
export interface RecordPage {
  records: CallRecordSummary[];
  /** Offset of the next page, or null on the last one. */
  next: number | null;
  /** False when the search stopped at its bound (records read) before the end of the history. */
  complete: boolean;
}

/** Whether a record matches a query (the page fields are ignored). */
export function matchesQuery(r: CallRecord, q: RecordQuery): boolean {
  const start = Date.parse(r.startedAt);
  if (q.since && !(start >= q.since.getTime())) return false;
  if (q.until && !(start < q.until.getTime())) return false;
  if (q.caller) {
    const c = q.caller.toLowerCase();
    if (!r.from.toLowerCase().includes(c) && !r.to.toLowerCase().includes(c)) return false;
  }
  if (q.outcomes && !q.outcomes.includes(r.endReason ?? '')) return false;
  if (q.minDurationMs !== undefined && !(r.durationMs !== null && r.durationMs >= q.minDurationMs)) return false;
  if (q.maxDurationMs !== undefined && !(r.durationMs !== null && r.durationMs <= q.maxDurationMs)) return false;
  if (q.text) {
    const t = q.text.toLowerCase();
    if (!(r.transcript ?? []).some((l) => typeof l.text === 'string' && l.text.toLowerCase().includes(t))) return false;
  }
  return true;
}

/** The pattern of an ILIKE that finds `text` anywhere (its % _ and \ taken literally). */
export function likePattern(text: string): string {
  return `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}
