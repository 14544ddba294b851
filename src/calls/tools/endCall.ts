/**
 * `end_call`: the model hangs up. The handler answers at once and asks for a follow-up response
 * (the goodbye); the call is hung up only after that response is done and its audio has actually
 * played to the caller (LiveKit #1988: cutting the tail is what users notice).
 */
import type { ToolRegistration } from '../../ai/types';
import { within, type ToolHost } from './host';

/** Options of the end_call tool. */
export interface EndCallToolOptions {
  /** Instructions of the goodbye response (default: a brief goodbye). */
  goodbyeInstructions?: string;
  /** Longest wait for the goodbye response, ms (default 20000); the call is hung up anyway after it. */
  maxGoodbyeMs?: number;
}

/** Tool name. */
export const END_CALL_TOOL = 'end_call';

/** The end_call tool bound to one call. */
export function endCallTool(host: ToolHost, opts: EndCallToolOptions = {}): ToolRegistration {
  const goodbye = opts.goodbyeInstructions ?? 'Say a brief, friendly goodbye to the caller. Do not call any tool.';
  const maxGoodbyeMs = opts.maxGoodbyeMs ?? 20_000;
  return {
    name: END_CALL_TOOL,
    description:
      'Hang up the phone call. Use it when the conversation is over: the caller said goodbye, asked to end the call, ' +
      'or there is nothing more to do. You will be asked to say goodbye; the line is hung up after that.',
    parameters: {
      type: 'object',
      properties: { reason: { type: 'string', description: 'Why the call ends, in a few words.' } },
      additionalProperties: false,
    },
    async handler(_args, ctx) {
      if (!host.claimEnd('agent_hangup')) {
        return { output: JSON.stringify({ ok: false, error: 'the call is already ending' }), followUp: 'none' };
      }
      host.log.info('end_call: hanging up after the goodbye');
      // The follow-up response only starts after this handler returns, so the wait runs detached.
      void (async () => {
        await within(ctx.followUp, maxGoodbyeMs);
        await host.whenPlayoutDrained();
        await host.end('agent_hangup');
      })();
      return { output: JSON.stringify({ ok: true, status: 'the call ends after your goodbye' }), followUp: { instructions: goodbye } };
    },
  };
}
