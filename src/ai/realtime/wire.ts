/**
 * What the parts of a Realtime session share on the wire: the link to the current server session
 * they send on, and the mapping of the backend-neutral session options to the GA shapes
 * (turn detection, tool choice, truncation).
 */
import type { ClientEvent, WireMcpTool, WireToolChoice, WireTruncation, WireTurnDetection } from '../events';
import type { McpServerOptions, ToolChoice, TruncationOptions, TurnDetectionOptions } from '../types';

/** The current server session, as the parts of a Realtime session send on it. */
export interface ServerLink {
  /** Generation of the current server session: it changes with every connection opened or lost. */
  readonly generation: number;
  /** Send one client event; undefined (nothing sent) when there is no open socket, whose loss drives the reconnect. */
  send(event: ClientEvent): string | undefined;
}

/** A copy of `obj` without its undefined fields (the server rejects explicit nulls it does not expect). */
export function omitUndefined<T extends object>(obj: T): T {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj)) if (v !== undefined) out[k] = v;
  return out as T;
}

/** Map turn-detection options to the GA wire shape. */
export function wireTurnDetection(td: TurnDetectionOptions): WireTurnDetection | null {
  if (td === null) return null;
  if (td.type === 'server_vad') {
    return omitUndefined({
      type: 'server_vad',
      threshold: td.threshold,
      prefix_padding_ms: td.prefixPaddingMs,
      silence_duration_ms: td.silenceDurationMs,
      idle_timeout_ms: td.idleTimeoutMs,
      create_response: td.createResponse,
      interrupt_response: td.interruptResponse,
    }) as WireTurnDetection;
  }
  return omitUndefined({
    type: 'semantic_vad',
    eagerness: td.eagerness,
    create_response: td.createResponse,
    interrupt_response: td.interruptResponse,
  }) as WireTurnDetection;
}

/** Map a tool choice to the GA wire shape. */
export function wireToolChoice(c: ToolChoice): WireToolChoice {
  return typeof c === 'string' ? c : { type: 'function', name: c.name };
}

/** Map the context overflow policy to the GA wire shape. */
export function wireTruncation(t: TruncationOptions): WireTruncation {
  if (typeof t === 'string') return t;
  return omitUndefined({
    type: 'retention_ratio',
    retention_ratio: t.retentionRatio,
    token_limits: t.postInstructionsTokens === undefined ? undefined : { post_instructions: t.postInstructionsTokens },
  }) as WireTruncation;
}

/** Map an MCP server to the GA `{type: "mcp"}` tool (headers and token included: never log the result). */
export function wireMcpTool(m: McpServerOptions): WireMcpTool {
  const r = m.requireApproval;
  const tool: WireMcpTool = {
    type: 'mcp',
    server_label: m.label,
    server_url: m.url,
    require_approval:
      typeof r === 'string'
        ? r
        : omitUndefined({
            always: r.always.length > 0 ? { tool_names: [...r.always] } : undefined,
            never: r.never.length > 0 ? { tool_names: [...r.never] } : undefined,
          }),
  };
  if (m.description !== undefined) tool.server_description = m.description;
  if (m.headers !== undefined && Object.keys(m.headers).length > 0) tool.headers = { ...m.headers };
  if (m.authorization !== undefined) tool.authorization = m.authorization;
  if (m.allowedTools !== undefined && m.allowedTools.length > 0) tool.allowed_tools = [...m.allowedTools];
  return tool;
}
