import { Metrics } from '../../../src/admin/Metrics';
import { parseExposition } from './helpers';
import { AudioLatency } from '../../../src/calls/latency';

describe('Metrics', () => {
  it('renders valid Prometheus exposition text with every daemon metric', async () => {
    const m = new Metrics();
    m.callStarted();
    m.callStarted();
    m.callEnded('completed');
    m.setRegistration('office "main"\\ext', true);
    m.setRegistration('trunk', false);
    m.observeConnect(420);
    m.observeResponseLatency(850);
    m.bargeIn();
    m.truncate(2);
    m.aiError('session_expired');
    m.underruns(7);
    m.overflows(3);
    m.addUsage({ inputAudioTokens: 100, inputTextTokens: 20, cachedTokens: 10, outputAudioTokens: 300, outputTextTokens: 40, costUsd: 0.25 });
    m.aiReconnect();
    m.toolCall('function', 'ok');
    m.toolCall('mcp', 'ok');
    m.toolCall('mcp', 'ok');
    m.toolCall('mcp', 'refused');
    const text = await m.text();
    const s = parseExposition(text);
    expect(s.get('sip_ai_agent_active_calls')).toBe(1);
    expect(s.get('sip_ai_agent_calls_total{outcome="completed"}')).toBe(1);
    expect(s.get('sip_ai_agent_registration_state{account="office \\"main\\"\\\\ext"}')).toBe(1);
    expect(s.get('sip_ai_agent_registration_state{account="trunk"}')).toBe(0);
    expect(s.get('sip_ai_agent_realtime_connect_seconds_bucket{le="0.5"}')).toBe(1);
    expect(s.get('sip_ai_agent_realtime_connect_seconds_bucket{le="0.25"}')).toBe(0);
    expect(s.get('sip_ai_agent_realtime_connect_seconds_sum')).toBeCloseTo(0.42);
    expect(s.get('sip_ai_agent_response_latency_seconds_count')).toBe(1);
    expect(s.get('sip_ai_agent_barge_ins_total')).toBe(1);
    expect(s.get('sip_ai_agent_truncates_total')).toBe(2);
    expect(s.get('sip_ai_agent_ai_errors_total{code="session_expired"}')).toBe(1);
    expect(s.get('sip_ai_agent_audio_underruns_total')).toBe(7);
    expect(s.get('sip_ai_agent_audio_overflows_total')).toBe(3);
    expect(s.get('sip_ai_agent_tokens_total{kind="output_audio"}')).toBe(300);
    expect(s.get('sip_ai_agent_tokens_total{kind="cached_input"}')).toBe(10);
    expect(s.get('sip_ai_agent_cost_usd_total')).toBeCloseTo(0.25);
    expect(s.get('sip_ai_agent_ai_reconnects_total')).toBe(1);
    expect(s.get('sip_ai_agent_tool_calls_total{kind="function",outcome="ok"}')).toBe(1);
    expect(s.get('sip_ai_agent_tool_calls_total{kind="mcp",outcome="ok"}')).toBe(2);
    expect(s.get('sip_ai_agent_tool_calls_total{kind="mcp",outcome="refused"}')).toBe(1);
    expect([...s.keys()].some((k) => k.startsWith('process_cpu_seconds_total'))).toBe(true);
    expect(m.contentType).toMatch(/^text\/plain; version=0\.0\.4/);
  });

  it('the exposition checker rejects malformed lines', () => {
    expect(() => parseExposition('# TYPE x counter\nx{a="1"} 1\n')).not.toThrow();
    expect(() => parseExposition('# TYPE x counter\nx{a="1} 1\n')).toThrow(/neither a comment nor a sample/);
    expect(() => parseExposition('# TYPE x counter\nx 1 2 3\n')).toThrow(/neither/);
    expect(() => parseExposition('y 1\n')).toThrow(/undeclared family/);
  });

  it('labels every series with instance_id when the instance is named', async () => {
    const m = new Metrics({ instanceId: 'agent-2', defaultMetrics: false });
    m.setActiveCalls(3);
    const text = await m.text();
    expect(text).toMatch(/^sip_ai_agent_active_calls\{instance_id="agent-2"\} 3$/m);
    expect(text).not.toMatch(/^sip_ai_agent_\w+ /m);
  });

  it('keeps its own registry: two instances do not collide', async () => {
    const a = new Metrics({ defaultMetrics: false });
    const b = new Metrics({ defaultMetrics: false });
    a.bargeIn(5);
    expect(parseExposition(await b.text()).get('sip_ai_agent_barge_ins_total')).toBe(0);
    expect(parseExposition(await a.text()).get('sip_ai_agent_barge_ins_total')).toBe(5);
  });

  it('folds label values past the cap into "other"', async () => {
    const m = new Metrics({ defaultMetrics: false, maxLabelValues: 2 });
    for (const code of ['a', 'b', 'c', 'd', 'a']) m.aiError(code);
    const s = parseExposition(await m.text());
    expect(s.get('sip_ai_agent_ai_errors_total{code="a"}')).toBe(2);
    expect(s.get('sip_ai_agent_ai_errors_total{code="other"}')).toBe(2);
    expect(s.has('sip_ai_agent_ai_errors_total{code="c"}')).toBe(false);
  });

  it('ignores negative and non-finite amounts, and never lets active calls go below zero', async () => {
    const m = new Metrics({ defaultMetrics: false });
    m.underruns(-5);
    m.cost(Number.NaN);
    m.observeConnect(-1);
    m.callEnded('failed');
    const s = parseExposition(await m.text());
    expect(s.get('sip_ai_agent_audio_underruns_total')).toBe(0);
    expect(s.get('sip_ai_agent_cost_usd_total')).toBe(0);
    expect(s.get('sip_ai_agent_realtime_connect_seconds_count')).toBe(0);
    expect(s.get('sip_ai_agent_active_calls')).toBe(0);
    m.setActiveCalls(4);
    expect(parseExposition(await m.text()).get('sip_ai_agent_active_calls')).toBe(4);
  });

  it('drops the series of a removed account', async () => {
    const m = new Metrics({ defaultMetrics: false });
    m.setRegistration('gone', true);
    m.removeAccount('gone');
    expect(parseExposition(await m.text()).has('sip_ai_agent_registration_state{account="gone"}')).toBe(false);
  });

  it('exports the audio latency histograms in seconds, cumulative, and an event-loop delay histogram', async () => {
    const m = new Metrics({ defaultMetrics: false });
    const l = new AudioLatency();
    m.trackAudioLatency(l);
    l.uplinkMs.observe(0.7);
    l.uplinkMs.observe(21.5);
    l.downlinkMs.observe(12);
    l.bargeInCutoffMs.observe(9);
    l.bargeInStaleFrames.observe(1);
    l.unmeasured.downlink = 2;
    const s = parseExposition(await m.text());
    m.close();
    expect(s.get('sip_ai_agent_audio_uplink_latency_seconds_bucket{le="0.001"}')).toBe(1);
    expect(s.get('sip_ai_agent_audio_uplink_latency_seconds_bucket{le="0.022"}')).toBe(2);
    expect(s.get('sip_ai_agent_audio_uplink_latency_seconds_bucket{le="+Inf"}')).toBe(2);
    expect(s.get('sip_ai_agent_audio_uplink_latency_seconds_count')).toBe(2);
    expect(s.get('sip_ai_agent_audio_uplink_latency_seconds_sum')).toBeCloseTo(0.0222, 6);
    expect(s.get('sip_ai_agent_audio_downlink_latency_seconds_bucket{le="0.011"}')).toBe(0);
    expect(s.get('sip_ai_agent_audio_downlink_latency_seconds_bucket{le="0.012"}')).toBe(1);
    expect(s.get('sip_ai_agent_barge_in_cutoff_seconds_count')).toBe(1);
    expect(s.get('sip_ai_agent_barge_in_stale_frames_bucket{le="0"}')).toBe(0);
    expect(s.get('sip_ai_agent_barge_in_stale_frames_bucket{le="1"}')).toBe(1);
    expect(s.has('sip_ai_agent_event_loop_delay_seconds_count')).toBe(true);
    expect(s.get('sip_ai_agent_audio_latency_unmeasured_total{kind="downlink"}')).toBe(2);
    expect(s.get('sip_ai_agent_audio_latency_unmeasured_total{kind="uplink"}')).toBe(0);
  });

  it('runs beforeScrape hooks on every rendering, so live counters are current', async () => {
    const m = new Metrics({ defaultMetrics: false });
    let live = 0;
    let reported = 0;
    m.beforeScrape(() => {
      m.underruns(live - reported);
      reported = live;
    });
    live = 3;
    expect(parseExposition(await m.text()).get('sip_ai_agent_audio_underruns_total')).toBe(3);
    live = 5;
    expect(parseExposition(await m.text()).get('sip_ai_agent_audio_underruns_total')).toBe(5);
    m.close();
  });
});
