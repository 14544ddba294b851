/**
 * The per-call state machine: states as a discriminated union, the reasons a call ends, and the
 * allowed transitions. {@link CallSession} has the single setter that applies them.
 *
 * ringing ──▶ connecting ──▶ greeting ──▶ conversing ──▶ ending ──▶ ended
 *    │            │              └──────────────┴───────────▲          ▲
 *    └────────────┴──────────────────────────────────────────┴──────────┘
 */

/** Why a call ended. */
export type EndReason =
  /** The other party hung up (or cancelled before the answer). */
  | 'caller_hangup'
  /** The model ended the call with `end_call`, after its goodbye played. */
  | 'agent_hangup'
  /** The caller was transferred (REFER accepted) and our leg hung up. */
  | 'transferred'
  /** Refused: too many calls (486 Busy Here, or the busy prompt). */
  | 'rejected_busy'
  /** Refused: caller not on the allow-list (403). */
  | 'rejected_forbidden'
  /** Refused: the agent is draining for shutdown (503). */
  | 'rejected_draining'
  /** The AI backend failed (at start or mid-call); the fallback prompt played. */
  | 'ai_failure'
  /** The call reached its maximum duration. */
  | 'max_duration'
  /** The daemon shut down (drain timeout passed). */
  | 'shutdown'
  /** Hung up through the admin API. */
  | 'admin_hangup'
  /** Outbound: the called party did not answer or refused. */
  | 'not_answered'
  /** An unexpected local error. */
  | 'error';

/** Every end reason (for metrics with a zero for each). */
export const END_REASONS: readonly EndReason[] = [
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
];

/** State of one call. `ending` and `ended` carry the reason; `ended` also the SIP cause. */
export type CallState =
  /** INVITE received (180 sent), or sent and not yet answered (outbound); the AI session is starting. */
  | { name: 'ringing' }
  /** Answered (200 OK sent, or received for outbound); media and the AI are coming up. */
  | { name: 'connecting' }
  /** The greeting prompt is playing (the AI may still be starting). */
  | { name: 'greeting' }
  /** The caller talks with the AI. */
  | { name: 'conversing' }
  /** Winding down: prompt, drain, transfer or hangup in progress. */
  | { name: 'ending'; reason: EndReason }
  /** Over. */
  | { name: 'ended'; reason: EndReason; sipStatus: number; sipReason: string };

/** A state's name. */
export type CallStateName = CallState['name'];

const NEXT: Readonly<Record<CallStateName, readonly CallStateName[]>> = {
  ringing: ['connecting', 'ending', 'ended'],
  connecting: ['greeting', 'conversing', 'ending', 'ended'],
  greeting: ['conversing', 'ending', 'ended'],
  conversing: ['ending', 'ended'],
  ending: ['ended'],
  ended: [],
};

/** Whether `from` may move to `to`. */
export function canTransition(from: CallStateName, to: CallStateName): boolean {
  return NEXT[from].includes(to);
}

/** True for the states in which the call is over or winding down. */
export function isFinishing(state: CallState): boolean {
  return state.name === 'ending' || state.name === 'ended';
}
