/**
 * The query string of GET /calls when it asks for the call history: parsed and validated here (pure),
 * so every bad parameter is a 400 naming it, before anything is read.
 *
 *   since, until   ISO date (`2026-12-05`, whole days, UTC) or date-time; until is exclusive
 *                  (a bare date includes that whole day)
 *   caller         text found in the From or To URI (case-insensitive)
 *   outcome        end reasons, comma-separated (`caller_hangup,admin_hangup`)
 *   minDuration, maxDuration   seconds, start to end
 *   q              text found in the transcript (case-insensitive)
 *   limit          calls per page, 1..200 (default 50)
 *   offset         calls skipped, 0..10000 (default 0)
 */
import type { HistoryQuery } from './types';
import { HttpError } from './validate';

/** Most calls in one page. */
export const MAX_HISTORY_LIMIT = 200;
/** Calls per page when `limit` is not given. */
export const DEFAULT_HISTORY_LIMIT = 50;
/** Deepest page offset accepted. */
export const MAX_HISTORY_OFFSET = 10_000;
/** Longest `caller` and `q` accepted. */
export const MAX_HISTORY_TEXT = 200;

const PARAMS = ['since', 'until', 'caller', 'outcome', 'minDuration', 'maxDuration', 'q', 'limit', 'offset'] as const;
const DATE_RE = /^(\d{4})-(\d{2})-(\d{2})$/;
const DATE_TIME_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2})$/;
const OUTCOME_RE = /^[a-z][a-z_]{0,31}$/;
const CONTROL_RE = /[\u0000-\u001f\u007f]/;

function bad(param: string, message: string): HttpError {
  return new HttpError(400, `invalid query: ${param} ${message}`, { field: param });
}

function parseTime(param: string, v: string, endOfDay: boolean): Date {
  const d = DATE_RE.exec(v);
  if (d) {
    const ms = Date.UTC(Number(d[1]), Number(d[2]) - 1, Number(d[3]));
    if (!Number.isFinite(ms) || new Date(ms).toISOString().slice(0, 10) !== v) throw bad(param, `is not a real date [value:${v}]`);
    return new Date(endOfDay ? ms + 86_400_000 : ms);
  }
  if (!DATE_TIME_RE.test(v)) throw bad(param, 'must be an ISO date (2026-12-05) or date-time (2026-12-05T14:30:00Z)');
  const ms = Date.parse(v);
  if (!Number.isFinite(ms)) throw bad(param, `is not a real time [value:${v}]`);
  return new Date(ms);
}

function parseNumber(param: string, v: string, min: number, max: number, integer: boolean): number {
  if (!/^\d+(\.\d+)?$/.test(v)) throw bad(param, `must be a ${integer ? 'whole ' : ''}number from ${min} to ${max}`);
  const n = Number(v);
  if (!Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n))) {
    throw bad(param, `must be a ${integer ? 'whole ' : ''}number from ${min} to ${max}`);
  }
  return n;
}

function parseText(param: string, v: string): string {
  const t = v.trim();
  if (t.length === 0) throw bad(param, 'must not be empty');
  if (t.length > MAX_HISTORY_TEXT) throw bad(param, `must be at most ${MAX_HISTORY_TEXT} characters`);
  if (CONTROL_RE.test(t)) throw bad(param, 'must not contain control characters');
  return t;
}

/**
 * The history query of a GET /calls query string, or undefined when there is none (the plain list).
 * @throws HttpError 400 naming the first parameter at fault (unknown, repeated, or out of range).
 */
export function parseHistoryQuery(search: URLSearchParams): HistoryQuery | undefined {
  const keys = [...search.keys()];
  if (keys.length === 0) return undefined;
  const seen = new Set<string>();
  for (const k of keys) {
    if (!(PARAMS as readonly string[]).includes(k)) throw bad(k.slice(0, 64), `is not a known parameter (${PARAMS.join(', ')})`);
    if (seen.has(k)) throw bad(k, 'is given more than once');
    seen.add(k);
  }
  const get = (k: (typeof PARAMS)[number]): string | undefined => search.get(k) ?? undefined;
  const q: HistoryQuery = {
    limit: DEFAULT_HISTORY_LIMIT,
    offset: 0,
  };
  const since = get('since');
  if (since !== undefined) q.since = parseTime('since', since, false);
  const until = get('until');
  if (until !== undefined) q.until = parseTime('until', until, true);
  if (q.since && q.until && q.since.getTime() >= q.until.getTime()) throw bad('until', 'must be after since');
  const caller = get('caller');
  if (caller !== undefined) q.caller = parseText('caller', caller);
  const outcome = get('outcome');
  if (outcome !== undefined) {
    const list = outcome.split(',').map((s) => s.trim()).filter(Boolean);
    if (list.length === 0) throw bad('outcome', 'must name at least one end reason');
    if (list.length > 16) throw bad('outcome', 'must name at most 16 end reasons');
    for (const o of list) if (!OUTCOME_RE.test(o)) throw bad('outcome', `has an invalid end reason [value:${o.slice(0, 40)}]`);
    q.outcomes = [...new Set(list)];
  }
  const min = get('minDuration');
  if (min !== undefined) q.minDurationMs = Math.round(parseNumber('minDuration', min, 0, 864_000, false) * 1000);
  const max = get('maxDuration');
  if (max !== undefined) q.maxDurationMs = Math.round(parseNumber('maxDuration', max, 0, 864_000, false) * 1000);
  if (q.minDurationMs !== undefined && q.maxDurationMs !== undefined && q.minDurationMs > q.maxDurationMs) {
    throw bad('maxDuration', 'must not be less than minDuration');
  }
  const text = get('q');
  if (text !== undefined) q.text = parseText('q', text);
  const limit = get('limit');
  if (limit !== undefined) q.limit = parseNumber('limit', limit, 1, MAX_HISTORY_LIMIT, true);
  const offset = get('offset');
  if (offset !== undefined) q.offset = parseNumber('offset', offset, 0, MAX_HISTORY_OFFSET, true);
  return q;
}
