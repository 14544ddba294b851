/**
 * The console's only door to the admin API: same-origin fetches that carry the session cookie, with
 * the session's CSRF token on every request that changes something. A 401 means the session is gone
 * (expired, daemon restarted): the app shows the sign-in again.
 */

/** An error answered by the admin API (`{"error", "field"?}`). */
export class ApiError extends Error {
  constructor(readonly status: number, message: string, readonly field?: string) {
    super(message);
    this.name = 'ApiError';
  }
}

/** What GET /console/session says. */
export interface SessionState {
  authenticated: boolean;
  tokenRequired: boolean;
  csrf?: string;
}

let csrf: string | undefined;
let onSignedOut: () => void = () => undefined;

/** Call `fn` whenever the API says the session is not (or no longer) valid. */
export function whenSignedOut(fn: () => void): void {
  onSignedOut = fn;
}

async function request<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && csrf) headers['X-CSRF-Token'] = csrf;
  const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'same-origin', cache: 'no-store' });
  const json = (await r.json().catch(() => undefined)) as { error?: string; field?: string } | undefined;
  if (!r.ok) {
    if (r.status === 401 && !path.startsWith('/console/session')) {
      csrf = undefined;
      onSignedOut();
    }
    throw new ApiError(r.status, json?.error ?? `${r.status} ${r.statusText}`, json?.field);
  }
  return json as T;
}

/** GET a JSON resource. */
export const get = <T>(path: string): Promise<T> => request<T>('GET', path);
/** POST JSON. */
export const post = <T>(path: string, body: unknown): Promise<T> => request<T>('POST', path, body);
/** DELETE. */
export const del = <T>(path: string): Promise<T> => request<T>('DELETE', path);

/** The session of this browser, if any (and its CSRF token, kept in memory only). */
export async function currentSession(): Promise<SessionState> {
  const s = await get<SessionState>('/console/session');
  csrf = s.csrf;
  return s;
}

/** Trade the admin token (none on a token-less loopback API) for a session. */
export async function signIn(token?: string): Promise<void> {
  const r = await post<{ csrf: string }>('/console/session', token === undefined ? {} : { token });
  csrf = r.csrf;
}

/** End the session. */
export async function signOut(): Promise<void> {
  await del('/console/session').catch(() => undefined);
  csrf = undefined;
}

/** Path of a call's resource. */
export function callPath(id: string, sub = ''): string {
  return `/calls/${encodeURIComponent(id)}${sub}`;
}
