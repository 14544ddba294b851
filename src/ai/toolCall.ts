/**
 * Running one function call the model made, the same way for every backend: find the tool, parse
 * its arguments, run its handler under a timeout and an AbortSignal, and whatever happens produce an
 * output the model can read, plus the record logs, metrics and call records keep.
 */
import { performance } from 'node:perf_hooks';
import type { Logger } from '../logging/logger';
import { AiSessionError } from '../util/errors';
import type { AiSessionStats, ResponseOutcome, ToolCallRecord, ToolRegistration, ToolResult } from './types';

/** One call to run. */
export interface ToolCallRequest {
  name: string;
  callId: string;
  /** The arguments as the model sent them (JSON text; empty means `{}`). */
  argsText: string;
  /** Aborted by the caller (session ended, server session lost); a timeout aborts it too. */
  abort: AbortController;
  /** Resolves with the outcome of the response asked for after this call (see ToolContext.followUp). */
  followUp: Promise<ResponseOutcome | undefined>;
}

/** Where to find tools and what to count. */
export interface ToolCallEnv {
  /** The registered tool of this name. */
  tool(name: string): ToolRegistration | undefined;
  /** True when the tool was declared to the model (so a missing handler is ours, not the model's mistake). */
  declared(name: string): boolean;
  timeoutMs: number;
  /** `toolCalls` and `toolErrors` are counted here. */
  stats: AiSessionStats;
  log: Logger;
}

/** Run one call (see the file header); never rejects. */
export async function runToolCall(env: ToolCallEnv, req: ToolCallRequest): Promise<ToolCallRecord> {
  const { name, callId, abort } = req;
  const t0 = performance.now();
  let args: unknown;
  let error: string | undefined;
  let result: ToolResult | undefined;
  const tool = env.tool(name);
  if (!tool) {
    error = env.declared(name) ? `no handler registered for tool '${name}'` : `unknown tool '${name}'`;
  } else {
    try {
      args = req.argsText.trim() === '' ? {} : JSON.parse(req.argsText);
    } catch (err) {
      error = `invalid JSON arguments for tool '${name}': ${(err as Error).message}`;
    }
  }
  if (tool && error === undefined) {
    const timeoutMs = env.timeoutMs;
    const timer = setTimeout(
      () => abort.abort(new AiSessionError(`tool timed out [tool:${name}, callId:${callId}, timeoutMs:${timeoutMs}]`, 'tool_timeout')),
      timeoutMs,
    );
    try {
      // Race the abort so a handler that ignores its signal cannot hold the caller forever.
      const got = await Promise.race([tool.handler(args, { callId, signal: abort.signal, followUp: req.followUp }), rejectOnAbort(abort.signal)]);
      if (got === null || typeof got !== 'object' || typeof got.output !== 'string') {
        error = `tool '${name}' returned no output string`;
      } else {
        result = got;
      }
    } catch (err) {
      error = err instanceof Error ? err.message : String(err);
    } finally {
      clearTimeout(timer);
    }
  }
  if (result === undefined) result = { output: JSON.stringify({ error: error ?? 'tool failed' }) };
  const durationMs = Math.round(performance.now() - t0);
  env.stats.toolCalls += 1;
  if (error !== undefined) env.stats.toolErrors += 1;
  if (error !== undefined) env.log.warn({ tool: name, callId, durationMs }, `tool call failed [tool:${name}, callId:${callId}]: ${error}`);
  else env.log.info({ tool: name, callId, durationMs }, 'tool call done');
  return { name, callId, args, result, durationMs, ...(error !== undefined ? { error } : {}) };
}

function rejectOnAbort(signal: AbortSignal): Promise<never> {
  return new Promise<never>((_, reject) => {
    const fail = (): void => reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
    if (signal.aborted) fail();
    else signal.addEventListener('abort', fail, { once: true });
  });
}
