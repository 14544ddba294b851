/**
 * `transfer_call`: the model transfers the caller (blind transfer, SIP REFER, RFC 3515) to a target
 * named in the configuration. The handler checks the target and answers at once with a follow-up
 * asking the model to tell the caller; once that has played, the REFER goes out. On success our leg
 * hangs up (`transferred`); on failure the model is told (a system note and a response) and the
 * conversation goes on. A function call gets exactly one output, and it was already sent when the
 * announcement was requested, so the failure cannot travel as a second output.
 */
import type { ToolRegistration } from '../../ai/types';
import { within, type ToolHost } from './host';

/** Options of the transfer_call tool. */
export interface TransferCallToolOptions {
  /** Target name (what the model picks) to SIP URI. */
  targets: Readonly<Record<string, string>>;
  /** Target used when the model names none (must be a key of `targets`). */
  defaultTarget?: string;
  /** Longest wait for the announcement response, ms (default 20000). */
  maxAnnounceMs?: number;
}

/** Tool name. */
export const TRANSFER_CALL_TOOL = 'transfer_call';

/** The transfer_call tool bound to one call. */
export function transferCallTool(host: ToolHost, opts: TransferCallToolOptions): ToolRegistration {
  const names = Object.keys(opts.targets);
  const maxAnnounceMs = opts.maxAnnounceMs ?? 20_000;
  const def = opts.defaultTarget !== undefined && opts.targets[opts.defaultTarget] !== undefined ? opts.defaultTarget : undefined;
  return {
    name: TRANSFER_CALL_TOOL,
    description:
      `Transfer the caller to a person or department. Targets: ${names.join(', ')}. ` +
      'Use it when the caller asks for someone you cannot replace, or when the instructions say so.',
    parameters: {
      type: 'object',
      properties: {
        target: { type: 'string', enum: names, description: 'Who to transfer the caller to.' },
        reason: { type: 'string', description: 'Why, in a few words.' },
      },
      required: def === undefined ? ['target'] : [],
      additionalProperties: false,
    },
    async handler(args, ctx) {
      const a = (args ?? {}) as { target?: unknown };
      const name = typeof a.target === 'string' && a.target !== '' ? a.target : def;
      const uri = name !== undefined ? opts.targets[name] : undefined;
      if (name === undefined || uri === undefined) {
        return {
          output: JSON.stringify({ ok: false, error: name === undefined ? 'no target given' : `unknown target '${name}'`, targets: names }),
        };
      }
      if (!host.claimEnd('transferred')) {
        return { output: JSON.stringify({ ok: false, error: 'the call is already ending' }), followUp: 'none' };
      }
      host.log.info({ target: name }, 'transfer_call: transferring after the announcement');
      void (async () => {
        await within(ctx.followUp, maxAnnounceMs);
        await host.whenPlayoutDrained();
        const result = await host.transfer(uri);
        if (result.ok) {
          await host.end('transferred', { transferredTo: uri });
          return;
        }
        host.log.warn({ target: name, sipCode: result.sipCode }, `transfer failed [target:${name}, status:${result.sipCode}] ${result.reason}`);
        host.releaseEnd();
        host.tellModel(
          `The transfer to ${name} failed (SIP ${result.sipCode} ${result.reason}). ` +
            'The caller is still on the line with you: tell them briefly and offer another way to help.',
        );
      })();
      return {
        output: JSON.stringify({ ok: true, status: 'transferring', target: name }),
        followUp: { instructions: `Tell the caller in one short sentence that you are transferring them to ${name} now. Do not call any tool.` },
      };
    },
  };
}
