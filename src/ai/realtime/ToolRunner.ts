/**
 * The function tools of one Realtime conversation: the tools declared and registered, and the
 * calls the model makes. Each call's arguments are parsed, its handler runs with a timeout and an
 * AbortSignal (aborted on timeout, when the session ends, or when the server session is lost for
 * good), and whatever happens the model gets an output it can read. The calls of one response form
 * a batch: once that response is done, every output is sent, then at most one follow-up response
 * is asked for (see followUpRequest()).
 *
 * Calls keep running across a reconnect: when the server session that asked is gone, the finished
 * calls go to the new one as function_call / function_call_output pairs (and into every later
 * re-seed, from the ConversationHistory), then the follow-up.
 *
 * Threading: JS thread only; handlers are awaited, never run on another thread.
 */
import type { Logger } from '../../logging/logger';
import { AiSessionError } from '../../util/errors';
import type { WireFunctionTool, WireItem } from '../events';
import type {
  AiSessionState,
  AiSessionStats,
  FunctionToolDefinition,
  ResponseCreateOptions,
  ResponseOutcome,
  ToolCallRecord,
  ToolRegistration,
  ToolResult,
} from '../types';
import { runToolCall, type ToolCallEnv } from '../toolCall';
import type { ConversationHistory } from './ConversationHistory';
import type { ServerLink } from './wire';

/** Tool call ids remembered to ignore duplicates (output_item.done and response.done both carry them). */
const SEEN_CALLS_CAP = 512;
const TOOL_NAME_RE = /^[a-zA-Z0-9_-]{1,64}$/;

interface PendingCall {
  callId: string;
  result: Promise<ToolResult>;
  abort: AbortController;
}

interface ToolBatch {
  responseId: string;
  generation: number;
  calls: PendingCall[];
  reason: string | undefined;
  /** #flush has started on it (once). */
  flushing?: boolean;
  resolveFollowUp: (o: ResponseOutcome | undefined) => void;
  followUp: Promise<ResponseOutcome | undefined>;
}

/** What a ToolRunner needs from its session. */
export interface ToolRunnerOptions {
  /** Tools declared to the model by the session options (handlers come with register()). */
  declared: readonly FunctionToolDefinition[];
  /** A handler running longer than this is aborted and reported to the model, ms. */
  timeoutMs: number;
  /** Server VAD starts a response by itself when the caller's turn ends. */
  vadResponds: boolean;
  history: ConversationHistory;
  /** Where the outputs and carried pairs go. */
  link: ServerLink;
  /** The session's state now: outputs go only to a ready session, and a reconnecting one is waited for. */
  state(): AiSessionState['name'];
  /** Resolves once the session is ready, closed or died. */
  settled(): Promise<void>;
  /** Ask for the follow-up response, ahead of any waiting request. */
  followUp(opts: ResponseCreateOptions): Promise<ResponseOutcome>;
  /** A call finished (the session emits `toolCall`). */
  onToolCall(record: ToolCallRecord): void;
  /** A batch's outputs have been dealt with: responses held back for them, and a due rotation, may go. */
  onFlushed(): void;
}

/**
 * The follow-up a batch of tool results asks for: none when every result says `none`, or when a
 * barge-in cancelled the carrying response and server VAD answers the caller's new turn itself
 * (unless a result brings instructions); otherwise one response with the results' instructions.
 */
export function followUpRequest(results: readonly ToolResult[], reason: string | undefined, vadResponds: boolean): ResponseCreateOptions | undefined {
  const instructions = results.flatMap((r) => (typeof r.followUp === 'object' && r.followUp !== null ? [r.followUp.instructions] : []));
  let wanted = !results.every((r) => r.followUp === 'none');
  // A barge-in cancelled the carrying response: the caller's new turn brings its own reply.
  if (wanted && instructions.length === 0 && reason === 'turn_detected' && vadResponds) wanted = false;
  if (!wanted) return undefined;
  return instructions.length > 0 ? { instructions: instructions.join('\n\n') } : {};
}

/** @throws TypeError unless `name` is a valid tool name. */
export function assertToolName(name: string): void {
  if (typeof name !== 'string' || !TOOL_NAME_RE.test(name)) {
    throw new TypeError(`invalid tool name [name:${String(name)}] (letters, digits, _ and -, at most 64)`);
  }
}

/** The tools and tool calls of one Realtime conversation (see the file header). */
export class ToolRunner {
  readonly #opts: ToolRunnerOptions;
  readonly #stats: AiSessionStats;
  readonly #log: Logger;
  readonly #declared = new Map<string, FunctionToolDefinition>();
  readonly #tools = new Map<string, ToolRegistration>();
  readonly #batches = new Map<string, ToolBatch>();
  readonly #seenCalls = new Set<string>();
  #flushing = 0;
  readonly #env: ToolCallEnv;

  /**
   * Keep the declared tools; calls are counted in `stats` (`toolCalls`, `toolErrors`).
   * @throws TypeError when a declared tool has an invalid name.
   */
  constructor(opts: ToolRunnerOptions, stats: AiSessionStats, log: Logger) {
    this.#opts = opts;
    this.#stats = stats;
    this.#log = log;
    this.#env = { tool: (n) => this.#tools.get(n), declared: (n) => this.#declared.has(n), timeoutMs: opts.timeoutMs, stats, log };
    for (const t of opts.declared) {
      assertToolName(t.name);
      this.#declared.set(t.name, { name: t.name, description: t.description, parameters: t.parameters });
    }
  }

  /** True while outputs are being sent: no response may be created before they are. */
  get flushing(): boolean {
    return this.#flushing > 0;
  }

  /** True while any call runs or any outputs wait to be sent. */
  get busy(): boolean {
    return this.#flushing > 0 || this.#batches.size > 0;
  }

  /** Attach a handler (a registered tool replaces a declared one of the same name). @throws TypeError on a bad name or handler. */
  register(tool: ToolRegistration): void {
    assertToolName(tool.name);
    if (typeof tool.handler !== 'function') throw new TypeError(`registerTool() needs a handler [tool:${tool.name}]`);
    this.#tools.set(tool.name, tool);
  }

  /** The tool list as the server takes it in `session.update`. */
  wireTools(): WireFunctionTool[] {
    const byName = new Map<string, FunctionToolDefinition>(this.#declared);
    for (const [name, t] of this.#tools) byName.set(name, t);
    return [...byName.values()].map((t) => ({ type: 'function', name: t.name, description: t.description, parameters: t.parameters }));
  }

  /** An output item of response `responseId`: a completed function call starts running (once per call id). */
  call(responseId: string, item: WireItem): void {
    if (item.type !== 'function_call') return;
    if (item.status !== undefined && item.status !== 'completed') return;
    const callId = item.call_id;
    if (typeof callId !== 'string' || callId === '' || this.#seenCalls.has(callId)) return;
    this.#seenCalls.add(callId);
    if (this.#seenCalls.size > SEEN_CALLS_CAP) this.#seenCalls.delete(this.#seenCalls.values().next().value as string);

    const generation = this.#opts.link.generation;
    let batch = this.#batches.get(responseId);
    if (!batch) {
      let resolveFollowUp!: (o: ResponseOutcome | undefined) => void;
      const followUp = new Promise<ResponseOutcome | undefined>((r) => (resolveFollowUp = r));
      batch = { responseId, generation, calls: [], reason: undefined, resolveFollowUp, followUp };
      this.#batches.set(responseId, batch);
    }
    this.#opts.history.recordToolCall(callId, item.name ?? '', item.arguments ?? '', generation);
    const abort = new AbortController();
    const result = this.#run(item.name ?? '', callId, item.arguments ?? '', abort, batch.followUp);
    batch.calls.push({ callId, result, abort });
  }

  /** The carrying response is done (`reason` from its status details): send its batch's outputs once they are all in. */
  responseDone(responseId: string, reason: string | undefined): void {
    const batch = this.#batches.get(responseId);
    if (!batch) return;
    batch.reason = reason;
    void this.#flush(batch);
  }

  /** The server session was lost: the response.done of every batch will never come, so each is flushed when it finishes. */
  sessionLost(): void {
    for (const batch of this.#batches.values()) {
      if (batch.flushing) continue;
      batch.reason = 'session_lost';
      void this.#flush(batch);
    }
  }

  /** The session ends: abort every running call and release its follow-up waiters. */
  abandon(reason: string): void {
    for (const batch of this.#batches.values()) {
      for (const c of batch.calls) c.abort.abort(new AiSessionError(`tool call abandoned [callId:${c.callId}, reason:${reason}]`, reason));
      batch.resolveFollowUp(undefined);
    }
    this.#batches.clear();
  }

  async #run(name: string, callId: string, argsText: string, abort: AbortController, followUp: Promise<ResponseOutcome | undefined>): Promise<ToolResult> {
    const record = await runToolCall(this.#env, { name, callId, argsText, abort, followUp });
    this.#opts.onToolCall(record);
    return record.result;
  }

  /** After the carrying response is done (or lost): every output, then at most one response.create. */
  async #flush(batch: ToolBatch): Promise<void> {
    if (batch.flushing) return;
    batch.flushing = true;
    this.#flushing += 1;
    const o = this.#opts;
    try {
      const results = await Promise.all(batch.calls.map((c) => c.result));
      this.#batches.delete(batch.responseId);
      batch.calls.forEach((c, i) => o.history.setToolOutput(c.callId, results[i].output));
      // Lost mid-call: the new session gets the finished pairs (from the re-seed, or here), then the follow-up.
      if (o.state() === 'reconnecting') await o.settled();
      if (o.state() !== 'ready') {
        batch.resolveFollowUp(undefined);
        return;
      }
      if (batch.generation === o.link.generation) {
        batch.calls.forEach((c, i) => {
          o.link.send({ type: 'conversation.item.create', item: { type: 'function_call_output', call_id: c.callId, output: results[i].output } });
        });
      } else {
        let carried = 0;
        for (const c of batch.calls) if (o.history.sendToolPair(c.callId, o.link)) carried += 1;
        this.#log.info({ responseId: batch.responseId, calls: results.length, carried }, 'tool calls carried over to the new server session');
      }
      const opts = followUpRequest(results, batch.reason, o.vadResponds);
      if (opts === undefined) {
        batch.resolveFollowUp(undefined);
        return;
      }
      void o.followUp(opts).then(batch.resolveFollowUp);
    } finally {
      this.#flushing -= 1;
      o.onFlushed();
    }
  }
}
