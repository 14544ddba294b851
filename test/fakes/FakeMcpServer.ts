/**
 * A tiny real MCP server for tests: the Streamable HTTP transport (one POST endpoint, JSON-RPC 2.0
 * answered as `application/json`) with `initialize`, `notifications/initialized`, `tools/list` and
 * `tools/call`. Strict where the MCP specification says MUST: the client accepts both
 * `application/json` and `text/event-stream`, initializes first, and sends back the
 * `Mcp-Session-Id` it was given. Headers the test requires (an API key, a bearer token) are checked
 * on every request: without them the answer is 401. Every request is recorded (method, tool,
 * arguments, headers), so a test can see what the Realtime side actually called.
 *
 * ```ts
 * const mcp = new FakeMcpServer({ tools: [{ name: 'lookup_order', inputSchema: {...}, handler: (a) => 'shipped' }], requireHeaders: { 'x-api-key': 'k' } });
 * const { url } = await mcp.listen();   // http://127.0.0.1:PORT/mcp
 * ```
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A tool the server offers. `handler` returns the text result, or throws to report a tool error. */
export interface FakeMcpTool {
  name: string;
  description?: string;
  inputSchema: Record<string, unknown>;
  annotations?: Record<string, unknown>;
  handler(args: Record<string, unknown>): string | Promise<string>;
}

/** One request the server received. */
export interface McpRequestRecord {
  method: string;
  /** `tools/call`: the tool name and arguments. */
  tool?: string;
  args?: Record<string, unknown>;
  /** Request headers, lower-case names. */
  headers: Record<string, string | string[] | undefined>;
  /** HTTP status of the answer. */
  status: number;
}

/** Options of {@link FakeMcpServer}. */
export interface FakeMcpServerOptions {
  tools: FakeMcpTool[];
  /** Headers every request must carry with exactly these values (names in any case). */
  requireHeaders?: Record<string, string>;
  /** Name in `serverInfo`; default `fake-mcp`. */
  name?: string;
  /** Requests kept in {@link FakeMcpServer.requests}; default 1000 (oldest dropped, counted). */
  maxRecords?: number;
}

const PROTOCOL_VERSIONS = ['2025-06-18', '2025-03-26'];
const MAX_BODY = 1024 * 1024;

/** The fake MCP server. See the module comment. */
export class FakeMcpServer {
  /** Requests received, oldest first (bounded). */
  readonly requests: McpRequestRecord[] = [];
  /** Requests dropped from {@link requests} by the bound. */
  droppedRecords = 0;
  private readonly opts: FakeMcpServerOptions;
  private readonly http: Server;
  private readonly sessions = new Set<string>();

  constructor(opts: FakeMcpServerOptions) {
    this.opts = opts;
    this.http = createServer((req, res) => void this.onRequest(req, res));
  }

  /** Start listening on 127.0.0.1; resolves with the endpoint URL. */
  async listen(): Promise<{ url: string }> {
    await new Promise<void>((resolve) => this.http.listen(0, '127.0.0.1', resolve));
    return { url: this.url };
  }

  /** The endpoint, `http://127.0.0.1:PORT/mcp`. */
  get url(): string {
    const a = this.http.address() as AddressInfo;
    return `http://127.0.0.1:${a.port}/mcp`;
  }

  /** The `tools/call` requests, in order. */
  get calls(): { tool: string; args: Record<string, unknown>; headers: McpRequestRecord['headers'] }[] {
    return this.requests.filter((r) => r.method === 'tools/call' && r.status === 200).map((r) => ({ tool: r.tool!, args: r.args ?? {}, headers: r.headers }));
  }

  async close(): Promise<void> {
    this.http.closeAllConnections();
    await new Promise<void>((resolve) => this.http.close(() => resolve()));
  }

  private record(r: McpRequestRecord): void {
    this.requests.push(r);
    if (this.requests.length > (this.opts.maxRecords ?? 1000)) {
      this.requests.shift();
      this.droppedRecords++;
    }
  }

  private async onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const headers = { ...req.headers };
    const fail = (status: number, method: string, message: string, id: unknown = null): void => {
      this.record({ method, headers, status });
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ jsonrpc: '2.0', id, error: { code: status === 404 ? -32601 : -32600, message } }));
    };
    if (new URL(req.url ?? '/', 'http://x').pathname !== '/mcp') return fail(404, '?', 'not found');
    if (req.method !== 'POST') {
      // This server offers no SSE stream for server-initiated messages (the spec allows 405).
      res.writeHead(405, { allow: 'POST' }).end();
      return;
    }
    let body = '';
    for await (const chunk of req) {
      body += String(chunk);
      if (body.length > MAX_BODY) return fail(413, '?', 'body too large');
    }
    let msg: { jsonrpc?: unknown; id?: unknown; method?: unknown; params?: Record<string, unknown> };
    try {
      msg = JSON.parse(body);
    } catch {
      return fail(400, '?', 'parse error');
    }
    const method = typeof msg.method === 'string' ? msg.method : '?';
    if (msg.jsonrpc !== '2.0' || method === '?') return fail(400, method, 'not a JSON-RPC 2.0 request', msg.id ?? null);
    const accept = String(req.headers.accept ?? '');
    if (!accept.includes('application/json') || !accept.includes('text/event-stream')) {
      return fail(406, method, 'Accept must list application/json and text/event-stream', msg.id ?? null);
    }
    for (const [name, want] of Object.entries(this.opts.requireHeaders ?? {})) {
      if (req.headers[name.toLowerCase()] !== want) return fail(401, method, `missing or wrong ${name}`, msg.id ?? null);
    }

    if (method === 'initialize') {
      const asked = String(msg.params?.['protocolVersion'] ?? '');
      const session = randomUUID();
      this.sessions.add(session);
      this.record({ method, headers, status: 200 });
      res.writeHead(200, { 'content-type': 'application/json', 'mcp-session-id': session });
      res.end(
        JSON.stringify({
          jsonrpc: '2.0',
          id: msg.id,
          result: {
            protocolVersion: PROTOCOL_VERSIONS.includes(asked) ? asked : PROTOCOL_VERSIONS[0],
            capabilities: { tools: { listChanged: false } },
            serverInfo: { name: this.opts.name ?? 'fake-mcp', version: '1.0.0' },
          },
        }),
      );
      return;
    }
    const sid = req.headers['mcp-session-id'];
    if (typeof sid !== 'string' || !this.sessions.has(sid)) return fail(sid === undefined ? 400 : 404, method, 'unknown or missing Mcp-Session-Id', msg.id ?? null);
    if (msg.id === undefined) {
      // A notification (notifications/initialized): accepted, no body.
      this.record({ method, headers, status: 202 });
      res.writeHead(202).end();
      return;
    }
    const answer = (result: unknown): void => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ jsonrpc: '2.0', id: msg.id, result }));
    };
    if (method === 'tools/list') {
      this.record({ method, headers, status: 200 });
      answer({ tools: this.opts.tools.map((t) => ({ name: t.name, description: t.description, inputSchema: t.inputSchema, ...(t.annotations ? { annotations: t.annotations } : {}) })) });
      return;
    }
    if (method === 'tools/call') {
      const name = String(msg.params?.['name'] ?? '');
      const args = (msg.params?.['arguments'] as Record<string, unknown> | undefined) ?? {};
      const tool = this.opts.tools.find((t) => t.name === name);
      if (!tool) {
        this.record({ method, tool: name, args, headers, status: 200 });
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ jsonrpc: '2.0', id: msg.id, error: { code: -32602, message: `Unknown tool: ${name}` } }));
        return;
      }
      this.record({ method, tool: name, args, headers, status: 200 });
      try {
        const text = await tool.handler(args);
        answer({ content: [{ type: 'text', text }], isError: false });
      } catch (err) {
        answer({ content: [{ type: 'text', text: err instanceof Error ? err.message : String(err) }], isError: true });
      }
      return;
    }
    this.record({ method, headers, status: 200 });
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ jsonrpc: '2.0', id: msg.id, error: { code: -32601, message: `Method not found: ${method}` } }));
  }
}
