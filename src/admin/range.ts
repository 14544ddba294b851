/**
 * HTTP Range requests (RFC 9110 §14) for recordings: one `bytes=` range per request. A header this
 * does not understand (another unit, several ranges, bad syntax) is ignored and the whole file is
 * sent, as the RFC allows; a well-formed range that starts past the end is unsatisfiable (416).
 */

/** What a Range header asks of a resource of `size` bytes. */
export type RangeRequest =
  /** No usable Range header: send the whole resource (200). */
  | { kind: 'whole' }
  /** Send bytes start..end, both inclusive (206). */
  | { kind: 'range'; start: number; end: number }
  /** The range lies outside the resource (416 with `Content-Range: bytes *\/size`). */
  | { kind: 'unsatisfiable' };

/** Longest Range header looked at; longer ones are ignored. */
const MAX_RANGE_HEADER = 200;
const SINGLE_RANGE_RE = /^bytes[ \t]*=[ \t]*(\d{0,15})[ \t]*-[ \t]*(\d{0,15})[ \t]*$/i;

/** Interpret a Range header for a resource of `size` bytes. */
export function parseRange(header: string | undefined, size: number): RangeRequest {
  if (header === undefined || header.length === 0 || header.length > MAX_RANGE_HEADER) return { kind: 'whole' };
  const m = SINGLE_RANGE_RE.exec(header);
  if (!m) return { kind: 'whole' };
  const [, first, last] = m;
  if (first === '' && last === '') return { kind: 'whole' };
  if (first === '') {
    // Suffix range: the last N bytes.
    const n = Number(last);
    if (n === 0 || size === 0) return { kind: 'unsatisfiable' };
    return { kind: 'range', start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(first);
  const end = last === '' ? size - 1 : Number(last);
  if (last !== '' && end < start) return { kind: 'whole' };
  if (start >= size) return { kind: 'unsatisfiable' };
  return { kind: 'range', start, end: Math.min(end, size - 1) };
}
