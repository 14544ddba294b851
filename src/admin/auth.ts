/** Admin API access: loopback detection, bearer tokens compared in constant time, Host checks. */
import { createHash, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';

/** True for addresses only this host can reach: 127.0.0.0/8, ::1, `localhost`, and IPv4-mapped loopback. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h === '::1') return true;
  const v4 = h.startsWith('::ffff:') ? h.slice(7) : h;
  return isIP(v4) === 4 && v4.startsWith('127.');
}

/** Compare a presented token with the configured one without leaking where they differ (or their lengths). */
export function tokenMatches(presented: string, expected: string): boolean {
  // Hashing first makes both sides the same length, which timingSafeEqual requires.
  const a = createHash('sha256').update(presented, 'utf8').digest();
  const b = createHash('sha256').update(expected, 'utf8').digest();
  return timingSafeEqual(a, b);
}

/** The token of an `Authorization: Bearer <token>` header, or undefined. */
export function bearerToken(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const m = /^Bearer[ ]+([^\s]+)\s*$/i.exec(header);
  return m ? m[1] : undefined;
}

/**
 * Whether a Host header names this host by a loopback name. A loopback API without a token accepts
 * only these, so a web page cannot reach it through DNS rebinding.
 */
export function isLoopbackHostHeader(hostHeader: string | undefined): boolean {
  if (!hostHeader) return false;
  const m = /^(\[[^\]]+\]|[^:]+)(?::\d+)?$/.exec(hostHeader.trim());
  return m !== null && isLoopback(m[1]);
}
