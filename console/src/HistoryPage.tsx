/** History: finished calls filtered by date, caller, outcome, duration and transcript text, a page at a time. */
import { useState } from 'preact/hooks';
import { get } from './api';
import { dateTime, duration, party } from './format';
import { usePoll } from './hooks';
import { TableHead } from './ui';
import { END_REASONS, type CallView } from './types';

interface HistoryAnswer {
  recent: CallView[];
  page: { limit: number; offset: number; next: number | null; complete: boolean };
}

const FIELDS = ['since', 'until', 'caller', 'outcome', 'minDuration', 'maxDuration', 'q'] as const;
const PAGE = 25;

export function HistoryPage(props: { query: string }) {
  const params = new URLSearchParams(props.query);
  const [form, setForm] = useState<Record<string, string>>(() => Object.fromEntries(FIELDS.map((f) => [f, params.get(f) ?? ''])));
  const offset = Number(params.get('offset') ?? '0') || 0;
  const api = new URLSearchParams();
  for (const f of FIELDS) {
    const v = params.get(f);
    if (v) api.set(f, v);
  }
  api.set('limit', String(PAGE));
  api.set('offset', String(offset));
  const res = usePoll(() => get<HistoryAnswer>(`/calls?${api.toString()}`), 0, [api.toString()]);
  const go = (values: Record<string, string>, off: number): void => {
    const p = new URLSearchParams();
    for (const f of FIELDS) if (values[f]?.trim()) p.set(f, values[f].trim());
    if (off > 0) p.set('offset', String(off));
    location.hash = `#/history${p.toString() ? `?${p.toString()}` : ''}`;
  };
  const set = (f: string) => (e: Event) => setForm({ ...form, [f]: (e.target as HTMLInputElement).value });
  const badField = res.error && /invalid query: (\w+)/.exec(res.error)?.[1];
  const field = (f: string): 'true' | undefined => (badField === f ? 'true' : undefined);
  const data = res.data;
  return (
    <>
      <h1>History</h1>
      <form
        class="card filters"
        role="search"
        aria-label="Filter calls"
        onSubmit={(e) => {
          e.preventDefault();
          go(form, 0);
        }}
      >
        <div>
          <label for="f-since">From date</label>
          <input id="f-since" type="date" value={form.since} onInput={set('since')} aria-invalid={field('since')} />
        </div>
        <div>
          <label for="f-until">To date</label>
          <input id="f-until" type="date" value={form.until} onInput={set('until')} aria-invalid={field('until')} />
        </div>
        <div>
          <label for="f-caller">Caller or called</label>
          <input id="f-caller" type="search" value={form.caller} onInput={set('caller')} placeholder="1000" aria-invalid={field('caller')} />
        </div>
        <div>
          <label for="f-outcome">Outcome</label>
          <select id="f-outcome" value={form.outcome} onChange={set('outcome')} aria-invalid={field('outcome')}>
            <option value="">any</option>
            {END_REASONS.map((r) => (
              <option key={r} value={r}>
                {r.replace(/_/g, ' ')}
              </option>
            ))}
          </select>
        </div>
        <div>
          <label for="f-min">Min. duration (s)</label>
          <input id="f-min" type="number" min="0" step="1" value={form.minDuration} onInput={set('minDuration')} aria-invalid={field('minDuration')} />
        </div>
        <div>
          <label for="f-max">Max. duration (s)</label>
          <input id="f-max" type="number" min="0" step="1" value={form.maxDuration} onInput={set('maxDuration')} aria-invalid={field('maxDuration')} />
        </div>
        <div class="span2">
          <label for="f-q">Transcript contains</label>
          <input id="f-q" type="search" value={form.q} onInput={set('q')} aria-invalid={field('q')} />
        </div>
        <div class="buttons">
          <button type="submit">Search</button>
          <button
            type="button"
            class="secondary"
            onClick={() => {
              const empty = Object.fromEntries(FIELDS.map((f) => [f, '']));
              setForm(empty);
              go(empty, 0);
            }}
          >
            Clear
          </button>
        </div>
      </form>
      {res.error && (
        <p class="error" role="alert">
          {res.error}
        </p>
      )}
      <section aria-labelledby="results-h" class="card wide">
        <h2 id="results-h">Calls {data && data.recent.length > 0 ? `${offset + 1}–${offset + data.recent.length}` : ''}</h2>
        {data && !data.page.complete && <p class="muted">The search stopped early: narrow the dates to see every match.</p>}
        {!data ? (
          <p>…</p>
        ) : data.recent.length === 0 ? (
          <p class="muted">No call matches.</p>
        ) : (
          <table>
            <TableHead cols={['Started', 'Direction', 'Caller', 'Called', 'Duration', 'Outcome', 'Lines']} />
            <tbody>
              {data.recent.map((c) => (
                <tr key={c.id} data-call-id={c.id}>
                  <td>
                    <a href={`#/calls/${encodeURIComponent(c.id)}`}>{dateTime(c.startedAt)}</a>
                  </td>
                  <td>{c.direction}</td>
                  <td class="mono">{party(c.from)}</td>
                  <td class="mono">{party(c.to)}</td>
                  <td class="num">{duration(c.durationMs)}</td>
                  <td>
                    <span class={`badge ${c.endReason ?? c.status ?? ''}`}>{(c.endReason ?? c.status ?? '–').replace(/_/g, ' ')}</span>
                  </td>
                  <td class="num">{c.transcriptLines ?? '–'}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        <nav aria-label="Pages" class="pager">
          <button type="button" class="secondary" disabled={offset === 0} onClick={() => go(Object.fromEntries(FIELDS.map((f) => [f, params.get(f) ?? ''])), Math.max(0, offset - PAGE))}>
            Newer
          </button>
          <button type="button" class="secondary" disabled={!data || data.page.next === null} onClick={() => data?.page.next !== null && go(Object.fromEntries(FIELDS.map((f) => [f, params.get(f) ?? ''])), data?.page.next ?? 0)}>
            Older
          </button>
        </nav>
      </section>
    </>
  );
}
