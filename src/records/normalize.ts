/** Turning the call layer's loose input into the stored shapes, with every field bounded. */
import type { CallCounters, TimeInput, ToolUse, ToolUseInput, TranscriptLine, TranscriptLineInput, Usage, UsageInput } from './types';

/** Caps applied to one record; every cut is counted in the record. */
export interface RecordLimits {
  /** Most transcript lines kept per call. */
  maxTranscriptLines: number;
  /** Longest transcript line kept, characters (longer ones are cut). */
  maxLineChars: number;
  /** Most transcript characters kept per call. */
  maxTranscriptChars: number;
  /** Most tool calls kept per call. */
  maxTools: number;
  /** Longest tool-argument summary, characters. */
  maxArgsChars: number;
  /** Longest free-text field (from, to, reasons, error), characters. */
  maxTextChars: number;
  /** Most distinct counters kept. */
  maxCounters: number;
}

/** Default {@link RecordLimits}: roomy for a long call, small enough for a JSON file. */
export const DEFAULT_RECORD_LIMITS: Readonly<RecordLimits> = Object.freeze({
  maxTranscriptLines: 5000,
  maxLineChars: 4000,
  maxTranscriptChars: 1_000_000,
  maxTools: 500,
  maxArgsChars: 300,
  maxTextChars: 1024,
  maxCounters: 64,
});

/** Epoch ms of a time input, or undefined when it is missing or not a valid time. */
export function toMs(t: TimeInput | undefined | null): number | undefined {
  if (t === undefined || t === null) return undefined;
  const ms = t instanceof Date ? t.getTime() : typeof t === 'number' ? t : Date.parse(t);
  return Number.isFinite(ms) ? ms : undefined;
}

/** ISO string of a time input, or null. */
export function toIso(t: TimeInput | undefined | null): string | null {
  const ms = toMs(t);
  return ms === undefined ? null : new Date(ms).toISOString();
}

/** A string cut to `max` characters (with an ellipsis), or null for anything that is not a non-empty string. */
export function text(v: unknown, max: number): string | null {
  if (typeof v !== 'string' || v.length === 0) return null;
  return v.length > max ? v.slice(0, Math.max(0, max - 1)) + '…' : v;
}

/** Compact JSON of tool arguments, cut to `max` characters. */
export function argsSummary(args: unknown, max: number): string | null {
  if (args === undefined) return null;
  let s: string;
  try {
    s = typeof args === 'string' ? args : JSON.stringify(args) ?? String(args);
  } catch {
    s = '[unserializable]';
  }
  return text(s, max) ?? '';
}

/** A stored tool use. */
export function toolUse(t: ToolUseInput, nowMs: number, lim: RecordLimits): ToolUse {
  const d = t.durationMs;
  return {
    name: text(t.name, 128) ?? '(unnamed)',
    argsSummary: argsSummary(t.args, lim.maxArgsChars),
    durationMs: typeof d === 'number' && Number.isFinite(d) && d >= 0 ? Math.round(d) : null,
    error: text(t.error, lim.maxTextChars),
    at: new Date(toMs(t.at) ?? nowMs).toISOString(),
  };
}

function count(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : 0;
}

/** Stored usage (every field a finite number ≥ 0). */
export function usage(u: UsageInput): Usage {
  return {
    responses: count(u.responses),
    inputTokens: count(u.inputTokens),
    outputTokens: count(u.outputTokens),
    totalTokens: count(u.totalTokens) || count(u.inputTokens) + count(u.outputTokens),
    inputTextTokens: count(u.inputTextTokens),
    inputAudioTokens: count(u.inputAudioTokens),
    cachedTokens: count(u.cachedTokens),
    outputTextTokens: count(u.outputTextTokens),
    outputAudioTokens: count(u.outputAudioTokens),
    // Micro-dollar rounding keeps float noise out of the file.
    costUsd: Math.round(count(u.costUsd) * 1e6) / 1e6,
    ...(count(u.audioSeconds) > 0 ? { audioSeconds: Math.round(count(u.audioSeconds) * 1000) / 1000 } : {}),
  };
}

/** Merge counters into `into` (finite numbers ≥ 0 only, at most `max` names). */
export function mergeCounters(into: Record<string, number>, c: CallCounters, max: number): void {
  for (const [k, v] of Object.entries(c)) {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) continue;
    if (!(k in into) && Object.keys(into).length >= max) continue;
    into[k] = v;
  }
}

/** Accumulates transcript lines under the caps; counts what it cuts or drops. */
export class TranscriptBuffer {
  readonly lines: TranscriptLine[] = [];
  dropped = 0;
  #chars = 0;
  readonly #lim: RecordLimits;

  constructor(lim: RecordLimits) {
    this.#lim = lim;
  }

  /** Add one line; `startMs` is the call's start (for offsets), `nowMs` the default time. */
  add(l: TranscriptLineInput, startMs: number, nowMs: number): void {
    const raw = typeof l.text === 'string' ? l.text.trim() : '';
    if (raw.length === 0) return;
    if (this.lines.length >= this.#lim.maxTranscriptLines || this.#chars >= this.#lim.maxTranscriptChars) {
      this.dropped += 1;
      return;
    }
    const room = Math.min(this.#lim.maxLineChars, this.#lim.maxTranscriptChars - this.#chars);
    const t = text(raw, room) ?? '';
    if (t.length < raw.length) this.dropped += 1;
    const at = toMs(l.at) ?? nowMs;
    const line: TranscriptLine = {
      speaker: l.speaker === 'agent' ? 'agent' : 'caller',
      text: t,
      at: new Date(at).toISOString(),
      offsetMs: Math.max(0, Math.round(at - startMs)),
    };
    if (l.interrupted) line.interrupted = true;
    this.lines.push(line);
    this.#chars += t.length;
  }

  /** Forget everything (before a whole transcript replaces it). */
  clear(): void {
    this.lines.length = 0;
    this.#chars = 0;
    this.dropped = 0;
  }
}
