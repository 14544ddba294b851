/**
 * The MCP client side of the fake Realtime server: what the real service does with a session's
 * `{type: "mcp"}` tool. Streamable HTTP: POST JSON-RPC to `server_url` with the tool's `headers`
 * (and `authorization` as a bearer token), `initialize` then `notifications/initialized`, then
 * `tools/list` and `tools/call` with the session id the server gave.
 */

/** A tool as an MCP server lists it. */
export interface McpListedTool {
  name: string;
  description?: string;
  inputSchema: unknown;
  annotations?: Record<string, unknown>;
}

/** Why an MCP exchange failed, in the shapes of the Realtime `mcp_call.error` union. */
export type McpError =
  | { type: 'http_error'; code: number; message: string }
  | { type: 'protocol_error'; code: number; message: string }
  | { type: 'tool_execution_error'; message: string };

/** Thrown by {@link McpConnection} with the error to report. */
export class McpFailure extends Error {
  constructor(readonly error: McpError) {
    super(error.message);
  }
}

const TIMEOUT_MS = 5000;

/** One connection (MCP session) to a server. */
export class McpConnection {
  private sessionId: string | undefined;
  private nextId = 1;
  private ready: Promise<void> | undefined;

  constructor(
    private readonly url: string,
    private readonly headers: Record<string, string>,
  ) {}

  private async post(body: Record<string, unknown>): Promise<{ status: number; json: Record<string, unknown> | undefined; sessionId: string | null }> {
    const headers: Record<string, string> = {
      ...this.headers,
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
    };
    if (this.sessionId) {
      headers['mcp-session-id'] = this.sessionId;
      headers['mcp-protocol-version'] = '2025-06-18';
    }
    let res: Response;
    try {
      res = await fetch(this.url, { method: 'POST', headers, body: JSON.stringify(body), signal: AbortSignal.timeout(TIMEOUT_MS) });
    } catch (err) {
      throw new McpFailure({ type: 'http_error', code: 0, message: `connection failed: ${err instanceof Error ? err.message : String(err)}` });
    }
    const text = await res.text();
    if (res.status >= 400) throw new McpFailure({ type: 'http_error', code: res.status, message: `${res.status} ${res.statusText}` });
    let json: Record<string, unknown> | undefined;
    if (text !== '') {
      try {
        json = JSON.parse(text) as Record<string, unknown>;
      } catch {
        throw new McpFailure({ type: 'protocol_error', code: -32700, message: 'response is not JSON' });
      }
    }
    return { status: res.status, json, sessionId: res.headers.get('mcp-session-id') };
  }

  private async rpc(method: string, params: Record<string, unknown>): Promise<Record<string, unknown>> {
    await this.initialize();
    const { json } = await this.post({ jsonrpc: '2.0', id: this.nextId++, method, params });
    const err = json?.['error'] as { code?: number; message?: string } | undefined;
    if (err) throw new McpFailure({ type: 'protocol_error', code: err.code ?? -32603, message: err.message ?? 'error' });
    const result = json?.['result'];
    if (typeof result !== 'object' || result === null) throw new McpFailure({ type: 'protocol_error', code: -32603, message: 'no result' });
    return result as Record<string, unknown>;
  }

  private initialize(): Promise<void> {
    this.ready ??= (async () => {
      const r = await this.post({
        jsonrpc: '2.0',
        id: this.nextId++,
        method: 'initialize',
        params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'fake-realtime', version: '1.0.0' } },
      });
      const err = r.json?.['error'] as { code?: number; message?: string } | undefined;
      if (err) throw new McpFailure({ type: 'protocol_error', code: err.code ?? -32603, message: err.message ?? 'initialize failed' });
      this.sessionId = r.sessionId ?? undefined;
      await this.post({ jsonrpc: '2.0', method: 'notifications/initialized' });
    })();
    return this.ready;
  }

  /** `tools/list`. */
  async listTools(): Promise<McpListedTool[]> {
    const r = await this.rpc('tools/list', {});
    return Array.isArray(r['tools']) ? (r['tools'] as McpListedTool[]) : [];
  }

  /** `tools/call`: the text of the result; a result flagged `isError` becomes a tool_execution_error. */
  async callTool(name: string, args: unknown): Promise<string> {
    const r = await this.rpc('tools/call', { name, arguments: args });
    const content = Array.isArray(r['content']) ? (r['content'] as { type?: string; text?: string }[]) : [];
    const text = content
      .filter((c) => c.type === 'text' && typeof c.text === 'string')
      .map((c) => c.text)
      .join('\n');
    if (r['isError'] === true) throw new McpFailure({ type: 'tool_execution_error', message: text || 'tool failed' });
    return text;
  }
}
