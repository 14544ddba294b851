/** Now: registrations, the AI backend, live calls with their figures and transcript, hang up, dial out. */
import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, callPath, del, get, post } from './api';
import { duration, ms, party, time } from './format';
import { useNow, usePoll } from './hooks';
import { TableHead } from './ui';
import type { CallView, StatusReport, TranscriptLine } from './types';

function Registrations(props: { status: StatusReport | undefined }) {
  const s = props.status;
  return (
    <section aria-labelledby="reg-h" class="card">
      <h2 id="reg-h">Registrations</h2>
      {!s ? (
        <p>…</p>
      ) : (
        <ul class="plain">
          {s.accounts.map((a) => (
            <li key={a.uri}>
              <span class={`dot ${!a.registers ? 'neutral' : a.registered ? 'ok' : 'bad'}`} aria-hidden="true" />
              <span class="mono">{a.uri}</span>{' '}
              {!a.registers ? 'takes direct calls (no registration)' : a.registered ? 'registered' : `not registered${a.sipCode ? ` (${a.sipCode}${a.reason ? ` ${a.reason}` : ''})` : ''}`}
              {a.registers && a.registrarReachable === false ? '; the registrar does not answer' : ''}
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

function Backend(props: { status: StatusReport | undefined; active: number | undefined }) {
  const s = props.status;
  return (
    <section aria-labelledby="ai-h" class="card">
      <h2 id="ai-h">AI backend</h2>
      {!s ? (
        <p>…</p>
      ) : (
        <p>
          <span class={`dot ${s.ai.down ? 'bad' : 'ok'}`} aria-hidden="true" />
          <strong>{s.ai.provider}</strong>
          {s.ai.model ? ` · ${s.ai.model}` : ''} — {s.ai.down ? `down: ${s.ai.down}` : 'up'}
          <br />
          <small>
            version {s.version} · up {duration(s.uptimeSec * 1000)} · {props.active ?? s.calls.active} active {s.calls.draining ? '· draining' : ''}
          </small>
        </p>
      )}
    </section>
  );
}

/** The transcript of one live call, streamed by server-sent events. */
function LiveTranscript(props: { call: CallView }) {
  const [lines, setLines] = useState<TranscriptLine[]>([]);
  const [state, setState] = useState(props.call.state);
  const [ended, setEnded] = useState<string | undefined>(undefined);
  const box = useRef<HTMLOListElement>(null);
  useEffect(() => {
    setLines([]);
    setEnded(undefined);
    const es = new EventSource(callPath(props.call.id, '/events'));
    es.addEventListener('transcript', (e) => {
      const line = JSON.parse((e as MessageEvent<string>).data) as TranscriptLine;
      // Bounded: a long call keeps its last 500 lines here.
      setLines((l) => (l.some((x) => x.seq !== undefined && x.seq === line.seq) ? l : [...l.slice(-499), line]));
    });
    es.addEventListener('state', (e) => setState((JSON.parse((e as MessageEvent<string>).data) as { state: string }).state));
    es.addEventListener('ended', (e) => {
      setEnded((JSON.parse((e as MessageEvent<string>).data) as { reason?: string }).reason ?? 'ended');
      es.close();
    });
    return () => es.close();
  }, [props.call.id]);
  useEffect(() => {
    const el = box.current;
    if (el) el.scrollTop = el.scrollHeight;
  }, [lines.length]);
  return (
    <section aria-labelledby="live-h" class="card">
      <h2 id="live-h">
        Live transcript · <span class="mono">{party(props.call.direction === 'outbound' ? props.call.to : props.call.from)}</span>
      </h2>
      <p class="muted" aria-live="polite">
        {ended ? `Call ended: ${ended}` : `State: ${state}`}
      </p>
      <ol class="transcript live" ref={box} aria-live="polite" aria-label="Live transcript">
        {lines.length === 0 && <li class="muted">Nothing said yet.</li>}
        {lines.map((l, i) => (
          <li key={l.seq ?? i} class={l.speaker}>
            <time>{time(l.at)}</time> <b>{l.speaker === 'caller' ? 'Caller' : 'Agent'}</b> <span class="text">{l.text}</span>
          </li>
        ))}
      </ol>
    </section>
  );
}

function ActiveCalls(props: { calls: CallView[] | undefined; selected: string | undefined; onSelect: (id: string) => void; onChanged: () => void }) {
  const now = useNow(1000);
  const [message, setMessage] = useState<string | undefined>(undefined);
  const hangup = async (c: CallView): Promise<void> => {
    try {
      await del(callPath(c.id));
      setMessage(`Hanging up ${party(c.direction === 'outbound' ? c.to : c.from)}.`);
      props.onChanged();
    } catch (err) {
      setMessage(`Hang-up failed: ${(err as Error).message}`);
    }
  };
  const calls = props.calls;
  return (
    <section aria-labelledby="calls-h" class="card wide">
      <h2 id="calls-h">Active calls {calls ? `(${calls.length})` : ''}</h2>
      {message && (
        <p role="status" class="muted">
          {message}
        </p>
      )}
      {!calls ? (
        <p>…</p>
      ) : calls.length === 0 ? (
        <p class="muted">No call in progress.</p>
      ) : (
        <table>
          <TableHead cols={['Caller', 'Called', 'State', 'Duration', 'Turn latency (last / mean)', 'Underruns', 'sr:Actions']} />
          <tbody>
            {calls.map((c) => {
              const since = Date.parse(c.answeredAt ?? c.startedAt ?? '');
              return (
                <tr key={c.id} class={c.id === props.selected ? 'selected' : undefined} data-call-id={c.id}>
                  <td class="mono">{party(c.from)}</td>
                  <td class="mono">{party(c.to)}</td>
                  <td>
                    <span class={`badge ${c.state}`}>{c.state}</span>
                  </td>
                  <td class="num">{Number.isFinite(since) ? duration(now - since) : '–'}</td>
                  <td class="num">
                    {ms(c.figures?.lastTurnLatencyMs)} / {ms(c.figures?.meanTurnLatencyMs)}
                  </td>
                  <td class="num">{c.figures?.underruns ?? 0}</td>
                  <td class="actions">
                    <button type="button" class="secondary" aria-pressed={c.id === props.selected} onClick={() => props.onSelect(c.id)}>
                      Transcript
                    </button>
                    <button type="button" class="danger" onClick={() => void hangup(c)} aria-label={`Hang up the call with ${party(c.direction === 'outbound' ? c.to : c.from)}`}>
                      Hang up
                    </button>
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </section>
  );
}

function PlaceCall(props: { onPlaced: (id: string) => void }) {
  const [uri, setUri] = useState('');
  const [instructions, setInstructions] = useState('');
  const [result, setResult] = useState<{ ok: boolean; text: string; field?: string } | undefined>(undefined);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    setBusy(true);
    try {
      const body: { uri: string; instructions?: string } = { uri: uri.trim() };
      if (instructions.trim()) body.instructions = instructions;
      const r = await post<{ id: string }>('/calls', body);
      setResult({ ok: true, text: `Dialling ${uri.trim()} (call ${r.id}).` });
      props.onPlaced(r.id);
    } catch (err) {
      setResult({ ok: false, text: (err as Error).message, field: err instanceof ApiError ? err.field : undefined });
    } finally {
      setBusy(false);
    }
  };
  const invalid = (f: string): 'true' | undefined => (result && !result.ok && result.field === f ? 'true' : undefined);
  return (
    <section aria-labelledby="place-h" class="card">
      <h2 id="place-h">Place a call</h2>
      <form onSubmit={submit}>
        <label for="place-uri">Number or SIP URI</label>
        <input id="place-uri" name="uri" required placeholder="sip:1000@pbx.example.com" value={uri} onInput={(e) => setUri((e.target as HTMLInputElement).value)} aria-invalid={invalid('uri')} />
        <label for="place-instructions">Instructions for this call (optional)</label>
        <textarea id="place-instructions" name="instructions" rows={3} value={instructions} onInput={(e) => setInstructions((e.target as HTMLTextAreaElement).value)} aria-invalid={invalid('instructions')} />
        <button type="submit" disabled={busy}>
          {busy ? 'Dialling…' : 'Call'}
        </button>
        {result && (
          <p role={result.ok ? 'status' : 'alert'} class={result.ok ? 'ok' : 'error'}>
            {result.text}
          </p>
        )}
      </form>
    </section>
  );
}

export function NowPage() {
  const status = usePoll(() => get<StatusReport>('/status'), 5000);
  const calls = usePoll(() => get<{ active: CallView[] }>('/calls').then((r) => r.active), 2000);
  const [selected, setSelected] = useState<string | undefined>(undefined);
  const active = calls.data;
  // Follow the first call when none is chosen, or when the chosen one is gone.
  const shown = active?.find((c) => c.id === selected) ?? active?.[0];
  return (
    <>
      <h1>Now</h1>
      {(status.error || calls.error) && (
        <p class="error" role="alert">
          {status.error ?? calls.error}
        </p>
      )}
      <div class="grid">
        <Registrations status={status.data} />
        <Backend status={status.data} active={active?.length} />
        <ActiveCalls calls={active} selected={shown?.id} onSelect={setSelected} onChanged={calls.reload} />
        {shown && <LiveTranscript call={shown} />}
        <PlaceCall
          onPlaced={(id) => {
            setSelected(id);
            calls.reload();
          }}
        />
      </div>
    </>
  );
}
