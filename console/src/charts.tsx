/** Hand-drawn SVG charts: lines (with gaps for missing values) and stacked bars, over time. */

/** One series of a chart. */
export interface Series {
  name: string;
  colour: string;
  values: (number | null)[];
}

const W = 640;
const H = 180;
const PAD = { left: 46, right: 10, top: 10, bottom: 24 };

function niceMax(v: number): number {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

function label(v: number): string {
  return v >= 1000 ? `${+(v / 1000).toFixed(1)}k` : `${+v.toFixed(v < 10 ? 1 : 0)}`;
}

function hhmm(iso: string | undefined): string {
  if (!iso) return '';
  const d = new Date(iso);
  return d.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
}

/**
 * A chart with a title, a legend and a text summary for screen readers. The x axis spans the window
 * `fromMs`..`toMs`; each point sits at its interval's start and a bar is one interval wide.
 */
export function Chart(props: { title: string; unit: string; times: string[]; series: Series[]; kind?: 'line' | 'bars'; fromMs: number; toMs: number; intervalMs: number }) {
  const n = props.times.length;
  const span = Math.max(1, props.toMs - props.fromMs);
  const kind = props.kind ?? 'line';
  const sums = props.times.map((_, i) => props.series.reduce((s, x) => s + (x.values[i] ?? 0), 0));
  const peak = kind === 'bars' ? Math.max(0, ...sums) : Math.max(0, ...props.series.flatMap((s) => s.values.filter((v): v is number => v !== null)));
  const max = niceMax(peak);
  const iw = W - PAD.left - PAD.right;
  const ih = H - PAD.top - PAD.bottom;
  const x = (i: number): number => PAD.left + Math.min(1, Math.max(0, (Date.parse(props.times[i]) - props.fromMs) / span)) * iw;
  const y = (v: number): number => PAD.top + ih - (v / max) * ih;
  const last = props.series.map((s) => `${s.name} ${s.values[n - 1] ?? 'none'}`).join(', ');
  const summary = `${props.title}, ${n} points from ${hhmm(props.times[0])} to ${hhmm(props.times[n - 1])}; latest: ${last}${props.unit ? ` (${props.unit})` : ''}; highest ${label(peak)}.`;
  const bw = Math.max(1.5, (props.intervalMs / span) * iw - 1);
  return (
    <figure class="chart card">
      <figcaption>
        <strong>{props.title}</strong> {props.unit && <small>({props.unit})</small>}
        <span class="legend">
          {props.series.map((s) => (
            <span key={s.name}>
              <i style={{ background: s.colour }} aria-hidden="true" />
              {s.name}
            </span>
          ))}
        </span>
      </figcaption>
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={summary} preserveAspectRatio="none">
        {[0, 0.5, 1].map((f) => (
          <g key={f}>
            <line x1={PAD.left} x2={W - PAD.right} y1={y(max * f)} y2={y(max * f)} class="grid" />
            <text x={PAD.left - 6} y={y(max * f) + 4} text-anchor="end" class="axis">
              {label(max * f)}
            </text>
          </g>
        ))}
        {[0, 0.5, 1].map((f) => (
          <text key={f} x={PAD.left + f * iw} y={H - 6} text-anchor={f === 0 ? 'start' : f === 1 ? 'end' : 'middle'} class="axis">
            {hhmm(new Date(props.fromMs + f * span).toISOString())}
          </text>
        ))}
        {kind === 'bars'
          ? props.times.map((_, i) => {
              let base = 0;
              return props.series.map((s) => {
                const v = s.values[i] ?? 0;
                if (v <= 0) return null;
                const top = y(base + v);
                const r = <rect key={`${s.name}-${i}`} x={Math.min(x(i), W - PAD.right - bw)} y={top} width={bw} height={y(base) - top} fill={s.colour} />;
                base += v;
                return r;
              });
            })
          : props.series.map((s) => {
              let d = '';
              let pen = false;
              s.values.forEach((v, i) => {
                if (v === null || !Number.isFinite(v)) {
                  pen = false;
                  return;
                }
                d += `${pen ? 'L' : 'M'}${x(i).toFixed(1)},${y(v).toFixed(1)}`;
                pen = true;
              });
              const dots = s.values.map((v, i) => (v !== null && (i === 0 || s.values[i - 1] === null) && (i === n - 1 || s.values[i + 1] === null) ? <circle key={i} cx={x(i)} cy={y(v)} r={2.5} fill={s.colour} /> : null));
              return (
                <g key={s.name}>
                  <path d={d} fill="none" stroke={s.colour} stroke-width={1.8} />
                  {dots}
                </g>
              );
            })}
      </svg>
    </figure>
  );
}
