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

/** The health history's shapes are the server's own (a type-only import: no server code is bundled). */
export type { HealthHistoryReport as HealthHistory, HealthSample, QuantileSample } from '../../src/admin/HealthHistory';

/** Why a call ended, as the daemon names it (a pure constant of the call layer, bundled as it is). */
export { END_REASONS } from '../../src/calls/state';
