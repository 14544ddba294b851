/**
 * The operator console: Now (live calls), History (finished calls and their recordings) and Health
 * (the last hours). A single page with hash routes, talking only to the admin API of the daemon that
 * served it.
 */
import { render } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, currentSession, signIn, signOut, whenSignedOut } from './api';
import { CallPage } from './CallPage';
import { HealthPage } from './HealthPage';
import { HistoryPage } from './HistoryPage';
import { useRoute } from './hooks';
import { NowPage } from './NowPage';

/**
 * A sign-in link (`sip-ai-agent console` prints one) carries the admin token in the fragment, which
 * browsers never send to a server, so no access log sees it. It is taken out of the address bar and
 * the history entry at once, before the router reads the fragment.
 */
const linkToken = ((): string | undefined => {
  const m = /^#token=([^&/]+)$/.exec(location.hash);
  if (!m) return undefined;
  history.replaceState(null, '', `${location.pathname}${location.search}#/`);
  try {
    return decodeURIComponent(m[1]);
  } catch {
    return undefined;
  }
})();

type Auth = { kind: 'checking' } | { kind: 'signin'; error?: string } | { kind: 'ready'; tokenRequired: boolean } | { kind: 'failed'; error: string };

function SignIn(props: { error?: string; onDone: () => void }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState(props.error);
  const [busy, setBusy] = useState(false);
  const input = useRef<HTMLInputElement>(null);
  useEffect(() => input.current?.focus(), []);
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    setBusy(true);
    try {
      await signIn(token.trim());
      props.onDone();
    } catch (err) {
      setError(err instanceof ApiError && err.status === 401 ? 'That token is not valid.' : (err as Error).message);
      input.current?.select();
    } finally {
      setBusy(false);
    }
  };
  return (
    <main id="main" class="signin">
      <h1>sip-ai-agent console</h1>
      <form onSubmit={submit} aria-describedby="signin-help" class="card">
        <h2>Sign in</h2>
        <p id="signin-help">
          Enter the admin token: <code>admin.token</code> of the configuration, or the file <code>.admin-token</code> in the records
          directory when none is configured.
        </p>
        <label for="token">Admin token</label>
        <input id="token" name="token" type="password" autocomplete="current-password" required value={token} onInput={(e) => setToken((e.target as HTMLInputElement).value)} aria-invalid={error ? 'true' : undefined} aria-describedby={error ? 'signin-error' : undefined} />
        {error && (
          <p id="signin-error" class="error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
    </main>
  );
}

const PAGES: { href: string; label: string; match: (r: string) => boolean }[] = [
  { href: '#/', label: 'Now', match: (r) => r === '/' || r.startsWith('/now') },
  { href: '#/history', label: 'History', match: (r) => r.startsWith('/history') || r.startsWith('/calls/') },
  { href: '#/health', label: 'Health', match: (r) => r.startsWith('/health') },
];

function Page(props: { route: string }) {
  const r = props.route;
  const call = /^\/calls\/([^?]+)/.exec(r);
  if (call) return <CallPage id={decodeURIComponent(call[1])} />;
  if (r.startsWith('/history')) {
    const query = r.includes('?') ? r.slice(r.indexOf('?') + 1) : '';
    // Keyed by the query: a new search (or a link to one) starts from its own filters.
    return <HistoryPage key={query} query={query} />;
  }
  if (r.startsWith('/health')) return <HealthPage />;
  return <NowPage />;
}

function App() {
  const [auth, setAuth] = useState<Auth>({ kind: 'checking' });
  const route = useRoute();
  const check = async (): Promise<void> => {
    try {
      const s = await currentSession();
      if (s.authenticated) setAuth({ kind: 'ready', tokenRequired: s.tokenRequired });
      else if (!s.tokenRequired) {
        // A loopback API without a token lets anyone on this host in; the session only carries the CSRF token.
        await signIn();
        setAuth({ kind: 'ready', tokenRequired: false });
      } else if (linkToken !== undefined) {
        try {
          await signIn(linkToken);
          setAuth({ kind: 'ready', tokenRequired: true });
        } catch (err) {
          setAuth({ kind: 'signin', error: err instanceof ApiError && err.status === 401 ? 'The token of that sign-in link is not valid.' : (err as Error).message });
        }
      } else setAuth({ kind: 'signin' });
    } catch (err) {
      setAuth({ kind: 'failed', error: (err as Error).message });
    }
  };
  useEffect(() => {
    whenSignedOut(() => setAuth({ kind: 'signin', error: 'Your session ended; sign in again.' }));
    void check();
  }, []);
  const firstRoute = useRef(true);
  useEffect(() => {
    const current = PAGES.find((p) => p.match(route));
    document.title = `${current?.label ?? 'Console'} · sip-ai-agent`;
    // After a navigation, keyboard and screen-reader users start at the new page's content.
    if (!firstRoute.current) document.getElementById('main')?.focus();
    firstRoute.current = false;
  }, [route]);

  if (auth.kind === 'checking') return <p class="boot">Loading the console…</p>;
  if (auth.kind === 'failed') {
    return (
      <main id="main" class="signin">
        <p class="error" role="alert">
          The admin API did not answer: {auth.error}
        </p>
      </main>
    );
  }
  if (auth.kind === 'signin') return <SignIn error={auth.error} onDone={() => void check()} />;
  return (
    <>
      <header class="top">
        <span class="brand" aria-hidden="true">
          ☎
        </span>
        <span class="title">sip-ai-agent</span>
        <nav aria-label="Console">
          <ul>
            {PAGES.map((p) => (
              <li key={p.href}>
                <a href={p.href} aria-current={p.match(route) ? 'page' : undefined}>
                  {p.label}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        {auth.tokenRequired && (
          <button
            type="button"
            class="link"
            onClick={async () => {
              await signOut();
              setAuth({ kind: 'signin' });
            }}
          >
            Sign out
          </button>
        )}
      </header>
      <main id="main" tabIndex={-1}>
        <Page route={route} />
      </main>
    </>
  );
}

render(<App />, document.getElementById('app') as HTMLElement);
