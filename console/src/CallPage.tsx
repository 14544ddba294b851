/**
 * One call: its facts (SIP, outcome, cost), the stereo recording with its waveform (caller and agent
 * lanes), and the transcript with tool calls inline, following the playback.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import { callPath, get } from './api';
import { dateTime, duration, party, usd } from './format';
import { usePoll } from './hooks';
import type { CallView, ToolView, TranscriptLine } from './types';
import { MAX_WAVEFORM_BYTES, drawWaveform, wavPeaks, type Peaks } from './waveform';

type Entry = { kind: 'line'; line: TranscriptLine; t: number } | { kind: 'tool'; tool: ToolView; t: number };

/** Seconds into the recording of an ISO time (the recording starts with the media, at the answer). */
function recordingTime(call: CallView, iso: string | undefined): number {
  const t0 = Date.parse(call.answeredAt ?? call.startedAt ?? '');
  const t = Date.parse(iso ?? '');
  return Number.isFinite(t0) && Number.isFinite(t) ? Math.max(0, (t - t0) / 1000) : Number.NaN;
}

function entries(call: CallView): Entry[] {
  const out: Entry[] = [
    ...(call.transcript ?? []).map((line): Entry => ({ kind: 'line', line, t: recordingTime(call, line.at) })),
    ...(call.tools ?? []).map((tool): Entry => ({ kind: 'tool', tool, t: recordingTime(call, tool.at) })),
  ];
  return out.sort((a, b) => (Number.isFinite(a.t) ? a.t : 0) - (Number.isFinite(b.t) ? b.t : 0));
}

function Facts(props: { call: CallView }) {
  const c = props.call;
  const rows: [string, string][] = [
    ['Direction', c.direction ?? '–'],
    ['Caller', party(c.from)],
    ['Called', party(c.to)],
    ['Started', dateTime(c.startedAt)],
    ['Answered', dateTime(c.answeredAt)],
    ['Ended', dateTime(c.endedAt)],
    ['Duration', duration(c.durationMs)],
    ['Talk time', duration(c.talkMs)],
    ['End reason', (c.endReason ?? '–').replace(/_/g, ' ')],
    ['SIP status', c.sipStatus ? `${c.sipStatus}${c.sipReason ? ` ${c.sipReason}` : ''}` : '–'],
    ['SIP Call-ID', c.sipCallId ?? '–'],
    ['Remote address', c.remoteAddress ?? '–'],
    ['Account', c.account ?? '–'],
    ['Cost (estimate)', usd(c.usage?.costUsd)],
    ['Tokens in / out', c.usage ? `${c.usage.inputTokens ?? 0} / ${c.usage.outputTokens ?? 0}` : '–'],
  ];
  return (
    <section aria-labelledby="facts-h" class="card">
      <h2 id="facts-h">Call</h2>
      <dl class="facts">
        {rows.map(([k, v]) => (
          <div key={k}>
            <dt>{k}</dt>
            <dd class={k.startsWith('SIP') || k === 'Remote address' ? 'mono' : undefined}>{v}</dd>
          </div>
        ))}
      </dl>
    </section>
  );
}

function Recording(props: { call: CallView; audio: { current: HTMLAudioElement | null }; position: number; onTime: (t: number) => void }) {
  const canvas = useRef<HTMLCanvasElement>(null);
  const [peaks, setPeaks] = useState<Peaks | undefined>(undefined);
  const [note, setNote] = useState<string | undefined>(undefined);
  const src = callPath(props.call.id, '/recording');
  useEffect(() => {
    let live = true;
    void (async () => {
      try {
        const head = await fetch(src, { method: 'HEAD', credentials: 'same-origin' });
        const size = Number(head.headers.get('content-length'));
        if (!head.ok) throw new Error(`the recording is not available (${head.status})`);
        if (size > MAX_WAVEFORM_BYTES) throw new Error('the recording is too long to draw; it plays without a waveform');
        const r = await fetch(src, { credentials: 'same-origin' });
        if (!r.ok) throw new Error(`the recording is not available (${r.status})`);
        const p = wavPeaks(await r.arrayBuffer(), 1200);
        if (live) setPeaks(p);
      } catch (err) {
        if (live) setNote((err as Error).message);
      }
    })();
    return () => {
      live = false;
    };
  }, [src]);
  useEffect(() => {
    const el = canvas.current;
    if (el && peaks) {
      drawWaveform(el, peaks, peaks.durationSec > 0 ? props.position / peaks.durationSec : 0);
      el.dataset.drawn = 'true';
    }
  }, [peaks, props.position]);
  const seek = (e: MouseEvent): void => {
    const a = props.audio.current;
    const el = canvas.current;
    if (!a || !el || !peaks) return;
    const rect = el.getBoundingClientRect();
    a.currentTime = ((e.clientX - rect.left) / rect.width) * peaks.durationSec;
  };
  return (
    <section aria-labelledby="rec-h" class="card wide">
      <h2 id="rec-h">Recording</h2>
      <audio
        ref={props.audio}
        controls
        preload="metadata"
        src={src}
        aria-label="Call recording: caller on the left channel, agent on the right"
        onTimeUpdate={(e) => props.onTime((e.target as HTMLAudioElement).currentTime)}
        onSeeked={(e) => props.onTime((e.target as HTMLAudioElement).currentTime)}
      />
      {props.call.recording?.truncated && <p class="muted">The recording reached its size limit; the end of the call is missing.</p>}
      <canvas
        ref={canvas}
        width={1200}
        height={160}
        class="waveform"
        role="img"
        aria-label="Waveform of the recording: caller in the upper lane, agent in the lower lane. Click to seek."
        onClick={seek}
      />
      {note && <p class="muted">{note}</p>}
    </section>
  );
}

export function CallPage(props: { id: string }) {
  const res = usePoll(() => get<CallView>(callPath(props.id)), 0, [props.id]);
  const audio = useRef<HTMLAudioElement | null>(null);
  const [position, setPosition] = useState(0);
  const c = res.data;
  if (res.error) {
    return (
      <>
        <h1>Call</h1>
        <p class="error" role="alert">
          {res.error}
        </p>
      </>
    );
  }
  if (!c) return <p>Loading…</p>;
  const list = entries(c);
  const current = list.reduce((acc, e, i) => (e.kind === 'line' && Number.isFinite(e.t) && e.t <= position ? i : acc), -1);
  const ended = c.state === 'ended';
  return (
    <>
      <p>
        <a href="#/history">← History</a>
      </p>
      <h1>
        Call with <span class="mono">{party(c.direction === 'outbound' ? c.to : c.from)}</span>
      </h1>
      {!ended && (
        <p class="muted">
          This call is in progress: follow it on <a href="#/">Now</a>.
        </p>
      )}
      <div class="grid">
        {ended && c.recording && <Recording call={c} audio={audio} position={position} onTime={setPosition} />}
        {ended && !c.recording && (
          <section class="card">
            <h2>Recording</h2>
            <p class="muted">No recording was kept for this call.</p>
          </section>
        )}
        <Facts call={c} />
        <section aria-labelledby="tr-h" class="card">
          <h2 id="tr-h">Transcript</h2>
          {list.length === 0 ? (
            <p class="muted">No transcript.</p>
          ) : (
            <ol class="transcript">
              {list.map((e, i) =>
                e.kind === 'line' ? (
                  <li key={i} class={`${e.line.speaker}${i === current ? ' current' : ''}`} aria-current={i === current ? 'true' : undefined}>
                    <button
                      type="button"
                      class="stamp"
                      disabled={!Number.isFinite(e.t) || !ended || !c.recording}
                      onClick={() => {
                        if (audio.current) {
                          audio.current.currentTime = e.t;
                          void audio.current.play().catch(() => undefined);
                        }
                      }}
                      aria-label={`Play from ${duration(e.t * 1000)}`}
                    >
                      {Number.isFinite(e.t) ? duration(e.t * 1000) : '–'}
                    </button>{' '}
                    <b>{e.line.speaker === 'caller' ? 'Caller' : 'Agent'}</b> <span class="text">{e.line.text}</span>
                    {e.line.interrupted && <em class="muted"> (interrupted)</em>}
                  </li>
                ) : (
                  <li key={i} class="tool">
                    <span class="stamp">{Number.isFinite(e.t) ? duration(e.t * 1000) : '–'}</span> <b>Tool</b> <code>{e.tool.name}</code>
                    {e.tool.args ? <code class="args"> {e.tool.args}</code> : null}
                    {e.tool.error ? <span class="error"> failed: {e.tool.error}</span> : e.tool.durationMs != null ? <span class="muted"> ({e.tool.durationMs} ms)</span> : null}
                  </li>
                ),
              )}
            </ol>
          )}
        </section>
      </div>
    </>
  );
}
