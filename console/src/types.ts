/** The admin API's JSON as the console reads it (see src/admin/types.ts for the server's side). */

export interface TranscriptLine {
  speaker: 'caller' | 'agent';
  text: string;
  at?: string;
  seq?: number;
  offsetMs?: number;
  interrupted?: boolean;
}

export interface ToolView {
  name: string;
  durationMs?: number | null;
  error?: string | null;
  at?: string;
  args?: string | null;
}

export interface LiveFigures {
  turns: number;
  lastTurnLatencyMs: number | null;
  meanTurnLatencyMs: number | null;
  underruns: number;
  bargeIns: number;
  inputDroppedSamples: number;
}

export interface CallView {
  id: string;
  state: string;
  status?: string;
  direction?: 'inbound' | 'outbound';
  from?: string;
  to?: string;
  account?: string;
  sipCallId?: string | null;
  remoteAddress?: string | null;
  startedAt?: string;
  answeredAt?: string | null;
  endedAt?: string | null;
  endReason?: string | null;
  sipStatus?: number | null;
  sipReason?: string | null;
  durationMs?: number | null;
  talkMs?: number | null;
  usage?: { costUsd?: number; inputTokens?: number; outputTokens?: number; totalTokens?: number } | null;
  tools?: ToolView[];
  transcript?: TranscriptLine[];
  transcriptLines?: number;
  figures?: LiveFigures;
  recording?: { durationMs: number; sampleRate: number; layout: string; truncated: boolean } | null;
  counters?: Record<string, number>;
}

export interface StatusReport {
  version: string;
  uptimeSec: number;
  accounts: { uri: string; registers: boolean; registered: boolean; sipCode?: number; reason?: string; registrarReachable?: boolean }[];
  calls: { active: number; draining: boolean };
  ai: { provider: string; model?: string; url?: string; down?: string | null };
  transports: Record<string, string>;
}

export interface QuantileSample {
  n: number;
  p50: number | null;
  p99: number | null;
}

export interface HealthSample {
  t: string;
  activeCalls: number;
  calls: Record<string, number>;
  turnLatencyMs: QuantileSample;
  uplinkMs: QuantileSample;
  downlinkMs: QuantileSample;
  underruns: number;
  eventLoopDelayMs: QuantileSample & { max: number | null };
  aiErrors: number;
}

export interface HealthHistory {
  intervalSec: number;
  samples: HealthSample[];
  current: HealthSample;
}

/** Why a call ended, as the daemon names it. */
export const END_REASONS = [
  'caller_hangup',
  'agent_hangup',
  'transferred',
  'rejected_busy',
  'rejected_forbidden',
  'rejected_draining',
  'ai_failure',
  'max_duration',
  'shutdown',
  'admin_hangup',
  'not_answered',
  'error',
] as const;
