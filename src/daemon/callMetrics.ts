/**
 * The call layer's figures on /metrics, and the daemon's one log line per call start and end:
 * calls by outcome, live underrun and overflow growth, audio latency histograms, AI timings,
 * usage and cost, and the refusals the message guard and the call manager counted.
 */
import type { Metrics } from '../admin';
import type { CallManager } from '../calls/CallManager';
import type { CallCounters } from '../calls/types';
import type { Logger } from '../logging/logger';
import { isMcpToolName } from '../ai/realtime/McpRunner';
import type { UserAgent } from '../sip/UserAgent';

export function trackCallMetrics(o: { metrics: Metrics; calls: CallManager; ua: UserAgent; clockRate: number; log: Logger }): void {
  const { metrics, calls, ua, clockRate, log } = o;
  metrics.trackAudioLatency(calls.audioLatency);
  // Underruns and dropped agent audio reach /metrics while calls are up (growth since the last
  // scrape), not only when a call ends; dropped samples are counted in 20 ms frames.
  const reported = new Map<string, { underruns: number; overflowFrames: number }>();
  const reportCounters = (callId: string, c: CallCounters): void => {
    const prev = reported.get(callId) ?? { underruns: 0, overflowFrames: 0 };
    const now = { underruns: c.underruns, overflowFrames: Math.ceil(c.playoutDroppedSamples / (clockRate / 50)) };
    metrics.underruns(now.underruns - prev.underruns);
    metrics.overflows(now.overflowFrames - prev.overflowFrames);
    reported.set(callId, now);
  };
  metrics.beforeScrape(() => {
    for (const [callId, c] of calls.liveCounters()) reportCounters(callId, c);
  });
  metrics.trackRefusals(() => {
    const n = ua.admissionStats();
    const c = calls.metrics().callsRejected;
    return {
      forbidden: n.forbidden + c.forbidden,
      not_found: n.notFound,
      rate_limited: n.rateLimited,
      dropped: n.dropped,
      busy: n.busy + c.busy,
      draining: n.draining + c.draining,
    };
  });
  calls.on('callStarted', (info) => {
    metrics.callStarted();
    metrics.setActiveCalls(calls.active);
    log.info({ callId: info.callId, from: info.from, to: info.to, direction: info.direction }, 'call started');
  });
  calls.on('toolUse', ({ use }) => {
    metrics.toolCall(isMcpToolName(use.name) ? 'mcp' : 'function', use.refused ? 'refused' : use.error !== undefined ? 'error' : 'ok');
  });
  calls.on('timing', ({ metric, valueMs }) => {
    if (metric === 'ai_connect_ms') metrics.observeConnect(valueMs);
    else if (metric === 'turn_latency_ms') metrics.observeResponseLatency(valueMs);
  });
  calls.on('callEnded', (s) => {
    metrics.callEnded(s.endReason ?? 'unknown');
    metrics.setActiveCalls(calls.active);
    metrics.bargeIn(s.counters.bargeIns);
    metrics.truncate(s.counters.truncates);
    reportCounters(s.callId, s.counters);
    reported.delete(s.callId);
    metrics.aiReconnect(s.counters.aiReconnects);
    metrics.addUsage({
      inputAudioTokens: s.usage.inputAudioTokens,
      inputTextTokens: s.usage.inputTextTokens,
      cachedTokens: s.usage.cachedTokens,
      outputAudioTokens: s.usage.outputAudioTokens,
      outputTextTokens: s.usage.outputTextTokens,
      costUsd: s.usage.costUsd,
    });
    if (s.error) metrics.aiError(s.endReason === 'ai_failure' ? 'ai_failure' : 'error');
    log.info({ callId: s.callId, endReason: s.endReason, sipStatus: s.sipStatus, durationMs: s.durationMs, costUsd: s.usage.costUsd }, 'call ended');
  });
}
