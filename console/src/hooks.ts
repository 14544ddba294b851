/** Small hooks: polling, a ticking clock, the hash route. */
import { useEffect, useRef, useState } from 'preact/hooks';

/** Run `load` now and every `everyMs` while mounted; keeps the last value and the last error. */
export function usePoll<T>(load: () => Promise<T>, everyMs: number, deps: unknown[] = []): { data: T | undefined; error: string | undefined; reload: () => void } {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const [n, setN] = useState(0);
  const loadRef = useRef(load);
  loadRef.current = load;
  useEffect(() => {
    let live = true;
    let timer: number | undefined;
    const run = async (): Promise<void> => {
      try {
        const v = await loadRef.current();
        if (!live) return;
        setData(v);
        setError(undefined);
      } catch (err) {
        if (live) setError((err as Error).message);
      }
      if (live && everyMs > 0) timer = window.setTimeout(run, everyMs);
    };
    void run();
    return () => {
      live = false;
      window.clearTimeout(timer);
    };
  }, [...deps, n, everyMs]);
  return { data, error, reload: () => setN((x) => x + 1) };
}

/** The current time, updated every `ms`. */
export function useNow(ms = 1000): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const t = window.setInterval(() => setNow(Date.now()), ms);
    return () => window.clearInterval(t);
  }, [ms]);
  return now;
}

/** The hash route (`#/history?caller=1000` -> `/history?caller=1000`). */
export function useRoute(): string {
  const read = (): string => decodeURI(location.hash.replace(/^#/, '')) || '/';
  const [route, setRoute] = useState(read());
  useEffect(() => {
    const on = (): void => setRoute(read());
    window.addEventListener('hashchange', on);
    return () => window.removeEventListener('hashchange', on);
  }, []);
  return route;
}
