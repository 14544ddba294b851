/** Where records live: `<dir>/YYYY-MM-DD/<stem>.json|.wav`, the day being the call's UTC start date. */
import { createHash } from 'node:crypto';

/** Name pattern of a day directory. */
export const DAY_DIR_RE = /^(\d{4})-(\d{2})-(\d{2})$/;

const SAFE_ID_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** `YYYY-MM-DD` (UTC) of an epoch-ms time. */
export function dayDirName(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/** Epoch ms of the UTC midnight a day directory names, or undefined for other names. */
export function dayDirStart(name: string): number | undefined {
  const m = DAY_DIR_RE.exec(name);
  if (!m) return undefined;
  const ms = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
  return Number.isFinite(ms) && dayDirName(ms) === name ? ms : undefined;
}

/**
 * File stem for a call id: the id itself when it is a safe file name, else a readable slug plus a
 * short hash (so no id can climb out of the directory or collide with another by slugging).
 */
export function fileStem(callId: string): string {
  if (SAFE_ID_RE.test(callId) && !callId.endsWith('.tmp') && !callId.endsWith('.part')) return callId;
  const slug = callId.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 64);
  const hash = createHash('sha256').update(callId).digest('hex').slice(0, 10);
  return `${slug || 'call'}-${hash}`;
}
