/** Health: the last hours at one-minute resolution, from the daemon's in-memory history. */
import { useState } from 'preact/hooks';
import { get } from './api';
import { Chart } from './charts';
import { usePoll } from './hooks';
import type { HealthHistory, HealthSample } from './types';

const OUTCOME_COLOURS: Record<string, string> = {
  caller_hangup: '#2a9d8f',
  agent_hangup: '#457b9d',
  admin_hangup: '#8d99ae',
  transferred: '#6a4c93',
  ai_failure: '#e63946',
  error: '#9d0208',
  not_answered: '#f4a261',
  max_duration: '#e9c46a',
};
const PALETTE = ['#264653', '#b5838d', '#588157', '#bc6c25', '#3a86ff'];

export function HealthPage() {
  const [hours, setHours] = useState(6);
  const res = usePoll(() => get<HealthHistory>(`/health/history?minutes=${hours * 60}`), 30_000, [hours]);
  const h = res.data;
  const samples: HealthSample[] = h ? [...h.samples, h.current] : [];
  const times = samples.map((s) => s.t);
  const pick = (f: (s: HealthSample) => number | null): (number | null)[] => samples.map(f);
  const outcomes = [...new Set(samples.flatMap((s) => Object.keys(s.calls)))].sort();
  const intervalMs = (h?.intervalSec ?? 60) * 1000;
  const toMs = samples.length ? Date.parse(samples[samples.length - 1].t) + intervalMs : Date.now();
  const win = { fromMs: toMs - hours * 3600_000, toMs, intervalMs };
  return (
    <>
      <h1>Health</h1>
      <form class="inline" onSubmit={(e) => e.preventDefault()}>
        <label for="hours">Show the last</label>
        <select id="hours" value={String(hours)} onChange={(e) => setHours(Number((e.target as HTMLSelectElement).value))}>
          {[1, 3, 6].map((n) => (
            <option key={n} value={String(n)}>
              {n} hour{n > 1 ? 's' : ''}
            </option>
          ))}
        </select>
        <button type="button" class="secondary" onClick={res.reload}>
          Refresh
        </button>
        {h && <small class="muted"> one point per {h.intervalSec} s; the last point is the interval in progress</small>}
      </form>
      {res.error && (
        <p class="error" role="alert">
          {res.error}
        </p>
      )}
      {h && (
        <div class="charts">
          <Chart {...win} title="Active calls" unit="most at once" times={times} series={[{ name: 'active', colour: '#1d3557', values: pick((s) => s.activeCalls) }]} />
          <Chart
            {...win}
            title="Calls by outcome"
            unit="calls ended"
            kind="bars"
            times={times}
            series={outcomes.map((o, i) => ({ name: o.replace(/_/g, ' '), colour: OUTCOME_COLOURS[o] ?? PALETTE[i % PALETTE.length], values: pick((s) => s.calls[o] ?? 0) }))}
          />
          <Chart
            {...win}
            title="Turn latency"
            unit="ms"
            times={times}
            series={[
              { name: 'p50', colour: '#2a9d8f', values: pick((s) => s.turnLatencyMs.p50) },
              { name: 'p99', colour: '#e76f51', values: pick((s) => s.turnLatencyMs.p99) },
            ]}
          />
          <Chart
            {...win}
            title="Added latency of the audio path"
            unit="ms"
            times={times}
            series={[
              { name: 'uplink p50', colour: '#457b9d', values: pick((s) => s.uplinkMs.p50) },
              { name: 'uplink p99', colour: '#1d3557', values: pick((s) => s.uplinkMs.p99) },
              { name: 'downlink p50', colour: '#f4a261', values: pick((s) => s.downlinkMs.p50) },
              { name: 'downlink p99', colour: '#bc6c25', values: pick((s) => s.downlinkMs.p99) },
            ]}
          />
          <Chart {...win} title="Underruns" unit="frames of silence" kind="bars" times={times} series={[{ name: 'underruns', colour: '#e9c46a', values: pick((s) => s.underruns) }]} />
          <Chart
            {...win}
            title="Event-loop delay"
            unit="ms"
            times={times}
            series={[
              { name: 'p50', colour: '#2a9d8f', values: pick((s) => s.eventLoopDelayMs.p50) },
              { name: 'p99', colour: '#e76f51', values: pick((s) => s.eventLoopDelayMs.p99) },
              { name: 'max', colour: '#9d0208', values: pick((s) => s.eventLoopDelayMs.max) },
            ]}
          />
          <Chart {...win} title="AI errors" unit="errors" kind="bars" times={times} series={[{ name: 'errors', colour: '#e63946', values: pick((s) => s.aiErrors) }]} />
        </div>
      )}
    </>
  );
}
