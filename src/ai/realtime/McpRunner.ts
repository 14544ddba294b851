/**
 * The remote MCP servers of one Realtime conversation. The Realtime API itself lists each server's
 * tools (`mcp_list_tools.*`) and makes the calls (`response.mcp_call*`, `mcp_call` items); this
 * part declares the servers, reports every finished call like a function call (`toolCall`, named
 * `mcp:<label>.<tool>`), and answers the API's approval requests by the configured policy: a call
 * to a tool in the server's `approvedTools` is approved, any other is refused (nobody on a phone
 * line can be asked) and reported as a refused call. Once the response carrying approval requests
 * is done, one follow-up response is asked for so the model goes on (an approved call runs in it).
 *
 * Headers and tokens go into `session.update` only; nothing here logs them.
 *
 * Threading: JS thread only.
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Logger } from '../../logging/logger';
import type { ServerEvent, WireItem, WireMcpTool } from '../events';
import type { AiServerError, AiSessionStats, McpServerOptions, ResponseCreateOptions, ResponseOutcome, ToolCallRecord } from '../types';
import { followUpRequest } from './ToolRunner';
import { wireMcpTool, type ServerLink } from './wire';

/** Calls and list items remembered at once; a server that never finishes them cannot grow this. */
const MAX_TRACKED = 256;

/** Name of an MCP call in records and metrics. */
export function mcpToolName(label: string, tool: string): string {
  return `mcp:${label}.${tool}`;
}

/** Whether a tool name (as in records) is an MCP call's. */
export function isMcpToolName(name: string): boolean {
  return name.startsWith('mcp:');
}

interface TrackedCall {
  label: string;
  name: string;
  args: string;
  t0: number;
}

/** What an McpRunner needs from its session. */
export interface McpRunnerOptions {
  servers: readonly McpServerOptions[];
  /** Where approval responses go. */
  link: ServerLink;
  /** Server VAD starts a response by itself when the caller's turn ends. */
  vadResponds: boolean;
  /** Ask for the follow-up response, ahead of any waiting request. */
  followUp(opts: ResponseCreateOptions): Promise<ResponseOutcome>;
  /** A call finished or was refused (the session emits `toolCall`). */
  onToolCall(record: ToolCallRecord): void;
  /** A server's tools could not be listed (the session emits `error`: the model cannot use that server). */
  onError(error: AiServerError): void;
}

/** The MCP servers and calls of one Realtime conversation (see the file header). */
export class McpRunner {
  readonly #opts: McpRunnerOptions;
  readonly #stats: AiSessionStats;
  readonly #log: Logger;
  readonly #servers = new Map<string, McpServerOptions>();
  readonly #calls = new Map<string, TrackedCall>();
  readonly #done = new Set<string>();
  /** Responses that carried approval requests we answered: each gets one follow-up once done. */
  readonly #answered = new Set<string>();
  /** mcp_list_tools item id → server label (the list events name only the item). */
  readonly #lists = new Map<string, string>();
  #evicted = 0;

  constructor(opts: McpRunnerOptions, stats: AiSessionStats, log: Logger) {
    this.#opts = opts;
    this.#stats = stats;
    this.#log = log;
    for (const s of opts.servers) this.#servers.set(s.label, s);
  }

  /** Whether any server is declared. */
  get enabled(): boolean {
    return this.#servers.size > 0;
  }

  /** The servers as `session.tools` entries (secrets included: never log them). */
  wireTools(): WireMcpTool[] {
    return [...this.#servers.values()].map(wireMcpTool);
  }

  /** The server session was lost: calls and approvals in flight belong to it and will not finish. */
  sessionLost(): void {
    this.#calls.clear();
    this.#answered.clear();
    this.#lists.clear();
  }

  /** Look at a server event; MCP ones are handled here. */
  onEvent(ev: ServerEvent): void {
    switch (ev.type) {
      case 'mcp_list_tools.in_progress':
        this.#log.debug({ itemId: ev.item_id }, 'MCP server tools being listed');
        return;
      case 'mcp_list_tools.completed':
        this.#log.debug({ itemId: ev.item_id }, 'MCP server tools listed');
        return;
      case 'mcp_list_tools.failed': {
        const server = this.#lists.get(ev.item_id) ?? 'unknown';
        this.#log.warn({ server, itemId: ev.item_id }, `listing the tools of an MCP server failed: the model cannot call it [server:${server}]`);
        this.#opts.onError({ code: 'mcp_list_tools_failed', message: `listing the tools of MCP server ${server} failed` });
        return;
      }
      case 'conversation.item.added':
        if (ev.item.type === 'mcp_list_tools' && typeof ev.item.id === 'string' && name(ev.item.server_label)) {
          this.#lists.set(ev.item.id, name(ev.item.server_label)!);
          if (this.#lists.size > MAX_TRACKED) this.#lists.delete(this.#lists.keys().next().value as string);
        }
        return;
      case 'conversation.item.done':
        // A failed listing was reported by mcp_list_tools.failed already.
        if (ev.item.type === 'mcp_list_tools' && ev.item.status !== 'incomplete' && ev.item.status !== 'failed') {
          const listed: unknown = ev.item.tools;
          const tools = (Array.isArray(listed) ? listed : []).map((t: { name?: unknown } | null) => name(t?.name)).filter((n): n is string => n !== undefined);
          const server = name(ev.item.server_label) ?? '?';
          this.#log.info({ server, tools }, `MCP server offers ${tools.length} tool(s) [server:${server}]`);
        }
        return;
      case 'response.output_item.added':
        if (ev.item.type === 'mcp_call' && typeof ev.item.id === 'string') this.#track(ev.item.id, ev.item);
        return;
      case 'response.mcp_call_arguments.done': {
        const c = this.#calls.get(ev.item_id);
        if (c) c.args = text(ev.arguments) ?? '';
        return;
      }
      case 'response.mcp_call.in_progress': {
        const c = this.#calls.get(ev.item_id);
        if (c) c.t0 = performance.now();
        return;
      }
      case 'response.output_item.done':
        this.#item(ev.response_id, ev.item);
        return;
      case 'response.done': {
        const r = ev.response;
        for (const item of r.output ?? []) this.#item(r.id, item);
        if (this.#answered.delete(r.id)) {
          const reason = r.status_details?.reason;
          const opts = followUpRequest([{ output: '' }], reason, this.#opts.vadResponds);
          if (opts !== undefined) void this.#opts.followUp(opts);
        }
        return;
      }
      default:
        return;
    }
  }

  #track(id: string, item: WireItem): TrackedCall {
    let c = this.#calls.get(id);
    if (!c) {
      c = { label: name(item.server_label) ?? '?', name: name(item.name) ?? '?', args: text(item.arguments) ?? '', t0: performance.now() };
      this.#calls.set(id, c);
      if (this.#calls.size > MAX_TRACKED) {
        this.#calls.delete(this.#calls.keys().next().value as string);
        this.#evicted += 1;
        this.#log.warn({ evicted: this.#evicted }, 'MCP calls that never finished dropped from tracking');
      }
    }
    return c;
  }

  /** A finished output item: an MCP call to report, or an approval request to answer (once each). */
  #item(responseId: string, item: WireItem): void {
    if (item.type !== 'mcp_call' && item.type !== 'mcp_approval_request') return;
    const id = item.id;
    if (typeof id !== 'string' || id === '' || this.#done.has(id)) return;
    if (item.type === 'mcp_call' && item.status !== undefined && item.status !== 'completed' && item.status !== 'failed' && item.status !== 'incomplete') return;
    this.#done.add(id);
    if (this.#done.size > 2 * MAX_TRACKED) this.#done.delete(this.#done.values().next().value as string);
    if (item.type === 'mcp_call') this.#finished(id, item);
    else this.#approval(responseId, id, item);
  }

  #finished(id: string, item: WireItem): void {
    const c = this.#track(id, item);
    this.#calls.delete(id);
    const label = name(item.server_label) ?? c.label;
    const tool = mcpToolName(label, name(item.name) ?? c.name);
    const argsText = text(item.arguments) ?? c.args;
    const error = describeError(item.error);
    const durationMs = Math.round(performance.now() - c.t0);
    this.#report({ name: tool, callId: id, args: parseArgs(argsText), result: { output: text(item.output) ?? '' }, durationMs, ...(error ? { error } : {}) });
  }

  #approval(responseId: string, id: string, item: WireItem): void {
    const label = name(item.server_label) ?? '';
    const tool = name(item.name) ?? '';
    const server = this.#servers.get(label);
    const approve = server !== undefined && server.approvedTools.includes(tool);
    const reason = approve ? undefined : server ? `${tool} is not among the tools this agent may approve` : `unknown MCP server ${label}`;
    this.#opts.link.send({
      type: 'conversation.item.create',
      // The reference requires the client to name the item it creates.
      item: { type: 'mcp_approval_response', id: `mcpr_${randomBytes(12).toString('hex')}`, approval_request_id: id, approve, ...(reason ? { reason } : {}) },
    });
    this.#answered.add(responseId);
    this.#log.info({ server: label, tool, approve }, `MCP call ${approve ? 'approved' : 'refused'} [server:${label}, tool:${tool}]`);
    if (!approve) {
      this.#report({
        name: mcpToolName(label, tool),
        callId: id,
        args: parseArgs(text(item.arguments) ?? ''),
        result: { output: '' },
        durationMs: 0,
        error: `not approved: ${reason}`,
        refused: true,
      });
    }
  }

  #report(record: ToolCallRecord): void {
    this.#stats.toolCalls += 1;
    if (record.error !== undefined) {
      this.#stats.toolErrors += 1;
      this.#log.warn({ tool: record.name, callId: record.callId, durationMs: record.durationMs }, `MCP call failed [tool:${record.name}]: ${record.error}`);
    } else {
      this.#log.info({ tool: record.name, callId: record.callId, durationMs: record.durationMs }, 'MCP call done');
    }
    this.#opts.onToolCall(record);
  }
}

/** Longest server label or tool name kept (records, logs, metrics labels). */
const MAX_NAME = 128;

/** A string field of a server event, or undefined when the server sent anything else. */
function text(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

/** A label or tool name: a non-empty string, cut to MAX_NAME. */
function name(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v.slice(0, MAX_NAME) : undefined;
}

/** An MCP call's `error` as one line: `type code: message`, whatever shape the server gave it. */
function describeError(e: unknown): string | undefined {
  if (e === undefined || e === null || e === false) return undefined;
  if (typeof e !== 'object') return String(e).slice(0, 1000);
  const f = e as { type?: unknown; code?: unknown; message?: unknown };
  const code = typeof f.code === 'string' || typeof f.code === 'number' ? ` ${f.code}` : '';
  return `${text(f.type) ?? 'error'}${code}: ${text(f.message) ?? ''}`.trim().slice(0, 1000);
}

function parseArgs(text: string): unknown {
  if (text.trim() === '') return {};
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
