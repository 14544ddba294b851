import { ConsoleSessions, SESSION_COOKIE, SignInLimiter, cookieValue, csrfProblem, sameOrigin, sessionCookie } from '../../../src/admin/console/sessions';

const cookieOf = (id: string) => `${SESSION_COOKIE}=${id}`;

describe('ConsoleSessions', () => {
  it('finds a session by its cookie and forgets it after sign-out', () => {
    const s = new ConsoleSessions();
    const a = s.create();
    expect(a.id).not.toBe(a.csrf);
    expect(s.fromCookie(`theme=dark; ${cookieOf(a.id)}`)).toBe(a);
    s.delete(a);
    expect(s.fromCookie(cookieOf(a.id))).toBeUndefined();
  });

  it('expires an idle session and an old one', () => {
    let now = 0;
    const s = new ConsoleSessions({ idleMs: 1000, maxAgeMs: 5000, now: () => now });
    const idle = s.create();
    now = 1001;
    expect(s.fromCookie(cookieOf(idle.id))).toBeUndefined();
    const old = s.create();
    for (now = 1001; now <= 6001; now += 900) expect(s.fromCookie(cookieOf(old.id))).toBe(old);
    now += 1000;
    expect(s.fromCookie(cookieOf(old.id))).toBeUndefined();
    expect(s.size).toBe(0);
  });

  it('keeps at most maxSessions, forgetting the least recently used', () => {
    const s = new ConsoleSessions({ maxSessions: 2 });
    const a = s.create();
    const b = s.create();
    expect(s.fromCookie(cookieOf(a.id))).toBe(a);
    s.create();
    expect(s.size).toBe(2);
    expect(s.fromCookie(cookieOf(b.id))).toBeUndefined();
    expect(s.fromCookie(cookieOf(a.id))).toBe(a);
  });

  it.each([undefined, '', 'other=1', `${SESSION_COOKIE}=`, `${SESSION_COOKIE}=short`, `${SESSION_COOKIE}=${'a'.repeat(20)};`, `${SESSION_COOKIE}=abc%20def0123456789`, 'x'.repeat(9000)])(
    'finds no session in the cookie header %p',
    (h) => {
      const s = new ConsoleSessions();
      s.create();
      expect(s.fromCookie(h)).toBeUndefined();
    },
  );
});

describe('cookies', () => {
  it('sets an HttpOnly, SameSite=Strict cookie for the whole server, and clears it', () => {
    expect(sessionCookie(SESSION_COOKIE, 'abc', 60)).toBe(`${SESSION_COOKIE}=abc; HttpOnly; SameSite=Strict; Path=/; Max-Age=60`);
    expect(sessionCookie(SESSION_COOKIE, undefined, 0)).toMatch(/Max-Age=0/);
    const s = new ConsoleSessions({ cookieName: 'c_8089' });
    const a = s.create();
    expect(s.setCookie(a)).toMatch(new RegExp(`^c_8089=${a.id}; HttpOnly`));
    expect(s.fromCookie(`${SESSION_COOKIE}=${a.id}`)).toBeUndefined();
    expect(s.fromCookie(`c_8089=${a.id}`)).toBe(a);
  });

  it('reads only well-formed values', () => {
    expect(cookieValue(`a=1; ${SESSION_COOKIE}=${'x'.repeat(43)}`, SESSION_COOKIE)).toBe('x'.repeat(43));
    expect(cookieValue(`${SESSION_COOKIE}=<script>aaaaaaaaaaaaaaaa`, SESSION_COOKIE)).toBeUndefined();
  });
});

describe('CSRF and Origin', () => {
  const s = new ConsoleSessions().create();
  it('lets a same-origin request with the session token through', () => {
    expect(csrfProblem(s, { origin: 'http://127.0.0.1:8089', host: '127.0.0.1:8089', csrf: s.csrf })).toBeUndefined();
  });
  it.each([
    [{ origin: undefined, host: '127.0.0.1:8089', csrf: 'x' }, /Origin/],
    [{ origin: 'null', host: '127.0.0.1:8089', csrf: 'x' }, /Origin/],
    [{ origin: 'http://evil.example', host: '127.0.0.1:8089', csrf: 'x' }, /Origin/],
    [{ origin: 'http://127.0.0.1:8090', host: '127.0.0.1:8089', csrf: 'x' }, /Origin/],
    [{ origin: 'http://127.0.0.1:8089', host: '127.0.0.1:8089', csrf: undefined }, /missing CSRF token/],
    [{ origin: 'http://127.0.0.1:8089', host: '127.0.0.1:8089', csrf: 'wrong' }, /invalid CSRF token/],
  ])('refuses %p', (h, msg) => {
    expect(csrfProblem(s, h)).toMatch(msg);
  });
  it.each([
    ['https://agent.example:8443', 'agent.example:8443', true],
    ['http://LOCALHOST:1', 'localhost:1', true],
    ['http://a.example/', 'a.example', true],
    ['http://a.example/path', 'a.example', false],
    ['ftp://a.example', 'a.example', false],
    ['http://user@a.example', 'a.example', false],
    ['not a url', 'a.example', false],
  ])('sameOrigin(%s, %s) is %s', (o, h, want) => {
    expect(sameOrigin(o, h)).toBe(want);
  });
});

describe('SignInLimiter', () => {
  it('refuses after max failures until the window ends', () => {
    let now = 0;
    const l = new SignInLimiter(3, 60_000, () => now);
    for (let i = 0; i < 3; i++) {
      expect(l.retryAfterSec()).toBe(0);
      l.failed();
    }
    expect(l.retryAfterSec()).toBe(60);
    now = 30_000;
    expect(l.retryAfterSec()).toBe(30);
    now = 60_000;
    expect(l.retryAfterSec()).toBe(0);
  });
});
