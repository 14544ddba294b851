/**
 * Browser sessions of the operator console. A browser trades the admin token (or, on a loopback API
 * without a token, nothing) once for a session: a random id in an HttpOnly, SameSite=Strict cookie
 * that scripts cannot read, plus a CSRF token the page keeps in memory. A request that relies on the
 * cookie and changes state must carry that CSRF token in `X-CSRF-Token` and come from a page of the
 * same origin (Origin matches Host): a cross-site page can neither read the token nor forge Origin.
 *
 * Bounded: at most `maxSessions` (the least recently used is forgotten first), each expiring after
 * `idleMs` unused or `maxAgeMs` in all. Sessions live in memory: a restart signs everyone out.
 */
import { randomBytes } from 'node:crypto';
import { tokenMatches } from '../auth';

/**
 * Name of the session cookie; the admin server adds its port (`sip_ai_agent_console_8089`), since
 * browsers keep cookies per host, not per port, and two daemons on one host must not sign each
 * other's console out.
 */
export const SESSION_COOKIE = 'sip_ai_agent_console';
/** Header that carries the CSRF token. */
export const CSRF_HEADER = 'x-csrf-token';

/** Options of {@link ConsoleSessions}. */
export interface ConsoleSessionsOptions {
  /** Most sessions kept (default 64). */
  maxSessions?: number;
  /** A session unused this long expires, ms (default 12 h). */
  idleMs?: number;
  /** A session expires this long after sign-in whatever its use, ms (default 24 h). */
  maxAgeMs?: number;
  /** Clock (tests). */
  now?: () => number;
  /** Cookie name (default {@link SESSION_COOKIE}). */
  cookieName?: string;
}

/** One signed-in browser. */
export interface ConsoleSession {
  readonly id: string;
  readonly csrf: string;
  readonly createdAt: number;
  lastSeen: number;
}

/** The console's sessions; see the module comment. */
export class ConsoleSessions {
  readonly #byId = new Map<string, ConsoleSession>();
  readonly #max: number;
  readonly #idleMs: number;
  readonly #maxAgeMs: number;
  readonly #now: () => number;
  /** The session cookie's name (the admin server sets it to include its port once listening). */
  cookieName: string;

  constructor(opts: ConsoleSessionsOptions = {}) {
    this.cookieName = opts.cookieName ?? SESSION_COOKIE;
    this.#max = Math.max(1, opts.maxSessions ?? 64);
    this.#idleMs = opts.idleMs ?? 12 * 3600_000;
    this.#maxAgeMs = opts.maxAgeMs ?? 24 * 3600_000;
    this.#now = opts.now ?? Date.now;
  }

  /** Sessions kept. */
  get size(): number {
    return this.#byId.size;
  }

  /** Seconds a new session's cookie may live. */
  get cookieMaxAgeSec(): number {
    return Math.floor(this.#maxAgeMs / 1000);
  }

  /** Open a session (forgetting the least recently used one when full). */
  create(): ConsoleSession {
    if (this.#byId.size >= this.#max) {
      const oldest = this.#byId.keys().next().value as string;
      this.#byId.delete(oldest);
    }
    const now = this.#now();
    const s: ConsoleSession = { id: randomBytes(32).toString('base64url'), csrf: randomBytes(32).toString('base64url'), createdAt: now, lastSeen: now };
    this.#byId.set(s.id, s);
    return s;
  }

  /** The live session of a Cookie header, or undefined (unknown, expired, malformed). */
  fromCookie(cookieHeader: string | undefined): ConsoleSession | undefined {
    const id = cookieValue(cookieHeader, this.cookieName);
    if (!id) return undefined;
    const s = this.#byId.get(id);
    if (!s) return undefined;
    const now = this.#now();
    if (now - s.lastSeen > this.#idleMs || now - s.createdAt > this.#maxAgeMs) {
      this.#byId.delete(id);
      return undefined;
    }
    s.lastSeen = now;
    // Most recently used last, so the first key is the one to forget.
    this.#byId.delete(id);
    this.#byId.set(id, s);
    return s;
  }

  /** The Set-Cookie value that stores a session's id (or clears the cookie, with none); `secure` adds Secure. */
  setCookie(s: ConsoleSession | undefined, secure = false): string {
    return sessionCookie(this.cookieName, s?.id, this.cookieMaxAgeSec) + (secure ? '; Secure' : '');
  }

  /** Forget a session (sign out). */
  delete(s: ConsoleSession): void {
    this.#byId.delete(s.id);
  }
}

/** The value of cookie `name` in a Cookie header (the first one), or undefined. Bounded input. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header || header.length > 8192) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() !== name) continue;
    const v = part.slice(eq + 1).trim();
    return /^[A-Za-z0-9_-]{16,128}$/.test(v) ? v : undefined;
  }
  return undefined;
}

/** The Set-Cookie value that stores session `id` in cookie `name` (or clears it, with `id` undefined). */
export function sessionCookie(name: string, id: string | undefined, maxAgeSec: number): string {
  // Path=/: the API the console calls (/calls, /status...) lies outside /console/.
  return id === undefined
    ? `${name}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0`
    : `${name}=${id}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${maxAgeSec}`;
}

/** Why a state-changing, cookie-authenticated request is refused, or undefined when it may go on. */
export function csrfProblem(session: ConsoleSession, headers: { origin?: string; host?: string; csrf?: string }): string | undefined {
  if (!sameOrigin(headers.origin, headers.host)) return 'cross-origin request refused: the Origin header must name this server';
  if (!headers.csrf) return `missing CSRF token: send the ${CSRF_HEADER} header the session gave`;
  if (!tokenMatches(headers.csrf, session.csrf)) return 'invalid CSRF token';
  return undefined;
}

/** Whether an Origin header names the host the request was sent to (http or https). */
export function sameOrigin(origin: string | undefined, host: string | undefined): boolean {
  if (!origin || !host || origin === 'null' || origin.length > 512) return false;
  let u: URL;
  try {
    u = new URL(origin);
  } catch {
    return false;
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return false;
  // An Origin is scheme://host[:port] only; anything more is not a browser's Origin.
  if (`${u.protocol}//${u.host}` !== origin.replace(/\/$/, '').toLowerCase()) return false;
  return u.host.toLowerCase() === host.trim().toLowerCase();
}

/**
 * Failed sign-ins allowed per window across all clients; beyond that sign-in answers 429 until the
 * window ends (a token is long and random, this only keeps a guesser from burning CPU and log).
 */
export class SignInLimiter {
  readonly #max: number;
  readonly #windowMs: number;
  readonly #now: () => number;
  #windowStart = 0;
  #failures = 0;

  constructor(max = 20, windowMs = 60_000, now: () => number = Date.now) {
    this.#max = max;
    this.#windowMs = windowMs;
    this.#now = now;
  }

  /** Seconds to wait before trying again, or 0 when a try is allowed now. */
  retryAfterSec(): number {
    const now = this.#now();
    if (now - this.#windowStart >= this.#windowMs) {
      this.#windowStart = now;
      this.#failures = 0;
    }
    return this.#failures >= this.#max ? Math.ceil((this.#windowStart + this.#windowMs - now) / 1000) : 0;
  }

  /** Count one failed sign-in. */
  failed(): void {
    this.#failures += 1;
  }
}
