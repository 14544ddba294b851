/** Display helpers: durations, times, money. */

/** `m:ss` or `h:mm:ss` of a duration in ms. */
export function duration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '–';
  const s = Math.max(0, Math.round(ms / 1000));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

/** Local date and time of an ISO string. */
export function dateTime(iso: string | null | undefined): string {
  if (!iso) return '–';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
}

/** Local time of an ISO string. */
export function time(iso: string | null | undefined): string {
  if (!iso) return '–';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

/** USD with enough digits for small amounts. */
export function usd(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '–';
  return `$${n < 1 ? n.toFixed(4) : n.toFixed(2)}`;
}

/** A number of ms, or a dash. */
export function ms(n: number | null | undefined): string {
  return n === null || n === undefined || !Number.isFinite(n) ? '–' : `${Math.round(n)} ms`;
}

/** The user part of a SIP URI, with the host when it helps (`sip:1000@pbx` -> `1000@pbx`). */
export function party(uri: string | undefined): string {
  if (!uri) return '–';
  return uri.replace(/^<|>$/g, '').replace(/^sips?:/, '');
}
