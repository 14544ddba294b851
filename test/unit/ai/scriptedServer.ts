/**
 * A minimal loopback WebSocket peer for unit tests of the Realtime client and session: each test plays
 * the server's side by hand (reads what the client sent, answers with chosen events). It is not the
 * strict fake Realtime server of test/fakes; it knows nothing of the protocol beyond `session.created`.
 */
import http, { type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';

/** Per-connection behaviour, read when the upgrade arrives (change it between connections). */
export interface Behaviour {
  /** Refuse the upgrade with this HTTP status and body. */
  refuse?: { status: number; body: string };
  /** Accept the upgrade but send nothing (no session.created). */
  silent?: boolean;
}

/** One accepted socket, seen from the server side. */
export class Peer {
  readonly ws: WebSocket;
  readonly index: number;
  /** Every parsed client message, in order. */
  readonly received: Record<string, any>[] = [];
  #unread: Record<string, any>[] = [];
  #waiters: { pred: (m: Record<string, any>) => boolean; resolve: (m: Record<string, any>) => void }[] = [];
  #closed: Promise<{ code: number }>;

  constructor(ws: WebSocket, index: number) {
    this.ws = ws;
    this.index = index;
    this.#closed = new Promise((resolve) => ws.on('close', (code: number) => resolve({ code })));
    ws.on('message', (data) => {
      const msg = JSON.parse(data.toString()) as Record<string, any>;
      this.received.push(msg);
      const w = this.#waiters.findIndex((x) => x.pred(msg));
      if (w >= 0) {
        const [waiter] = this.#waiters.splice(w, 1);
        waiter.resolve(msg);
      } else {
        this.#unread.push(msg);
      }
    });
  }

  /** The next unread client message of this type (others stay unread). */
  next(type: string, timeoutMs = 2000): Promise<Record<string, any>> {
    const pred = (m: Record<string, any>): boolean => m.type === type;
    const i = this.#unread.findIndex(pred);
    if (i >= 0) return Promise.resolve(this.#unread.splice(i, 1)[0]);
    return new Promise((resolve, reject) => {
      const waiter = {
        pred,
        resolve: (m: Record<string, any>) => {
          clearTimeout(timer);
          resolve(m);
        },
      };
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((x) => x !== waiter);
        reject(new Error(`peer ${this.index}: no '${type}' within ${timeoutMs} ms; got ${this.received.map((m) => m.type).join(', ')}`));
      }, timeoutMs);
      this.#waiters.push(waiter);
    });
  }

  /** Client messages received so far, of these types, in order. */
  ofTypes(...types: string[]): Record<string, any>[] {
    return this.received.filter((m) => types.includes(m.type));
  }

  /** Send one server event. */
  send(ev: Record<string, unknown>): void {
    this.ws.send(JSON.stringify(ev));
  }

  /** Wait for session.update and answer session.updated echoing its audio config. */
  async acceptUpdate(): Promise<Record<string, any>> {
    const upd = await this.next('session.update');
    this.send({ type: 'session.updated', event_id: `sev_${this.index}`, session: { id: `sess_${this.index}`, ...upd.session } });
    return upd;
  }

  /** Resolves when the socket closes. */
  closed(): Promise<{ code: number }> {
    return this.#closed;
  }
}

/** Loopback HTTP server that upgrades to WebSocket and hands out {@link Peer}s. */
export class ScriptedServer {
  readonly server: http.Server;
  readonly wss = new WebSocketServer({ noServer: true });
  readonly peers: Peer[] = [];
  /** Request line path and headers of every upgrade attempt. */
  readonly upgrades: { url: string; headers: IncomingHttpHeaders }[] = [];
  behaviour: Behaviour = {};
  #waiting: ((p: Peer) => void)[] = [];

  private constructor() {
    this.server = http.createServer((_, res) => res.writeHead(404).end());
    this.server.on('upgrade', (req, socket, head) => {
      this.upgrades.push({ url: req.url ?? '', headers: req.headers });
      const b = this.behaviour;
      if (b.refuse) {
        const body = b.refuse.body;
        socket.end(
          `HTTP/1.1 ${b.refuse.status} Refused\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
        );
        return;
      }
      this.wss.handleUpgrade(req, socket, head, (ws) => {
        const peer = new Peer(ws, this.peers.length + 1);
        this.peers.push(peer);
        if (!b.silent) peer.send({ type: 'session.created', event_id: `sev_c${peer.index}`, session: { id: `sess_${peer.index}`, type: 'realtime' } });
        const w = this.#waiting.shift();
        if (w) w(peer);
      });
    });
  }

  /** Start on an ephemeral loopback port. */
  static async start(): Promise<ScriptedServer> {
    const s = new ScriptedServer();
    await new Promise<void>((resolve) => s.server.listen(0, '127.0.0.1', resolve));
    return s;
  }

  /** ws:// URL of this server with the given path. */
  url(path = '/v1/realtime'): string {
    return `ws://127.0.0.1:${(this.server.address() as AddressInfo).port}${path}`;
  }

  /** The connection with this 1-based index, once it exists. */
  peer(index: number, timeoutMs = 2000): Promise<Peer> {
    if (this.peers.length >= index) return Promise.resolve(this.peers[index - 1]);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no connection #${index} within ${timeoutMs} ms`)), timeoutMs);
      const check = (): void => {
        if (this.peers.length >= index) {
          clearTimeout(timer);
          resolve(this.peers[index - 1]);
        } else {
          this.#waiting.push(check as (p: Peer) => void);
        }
      };
      check();
    });
  }

  /** Stop accepting and drop every socket. */
  async stop(): Promise<void> {
    for (const c of this.wss.clients) c.terminate();
    this.wss.close();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
