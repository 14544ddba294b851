/**
 * Run the fake OpenAI Realtime server as its own process (for benchmarks and manual runs).
 *
 *   node -r ./test/fakes/ts-register.js test/fakes/fake-realtime-cli.ts --port 0 --key sk-test --burst 4
 *
 * Prints one line `listening <url>` on stdout once bound, then one JSON line per session on
 * close; SIGINT/SIGTERM close it cleanly (exit 0).
 */
import { Command, InvalidArgumentError } from 'commander';
import { FakeRealtimeServer, toneReply } from './FakeRealtimeServer';

function num(name: string, opts: { min?: number; integer?: boolean } = {}): (v: string) => number {
  return (v: string) => {
    const n = v === 'inf' || v === 'Infinity' ? Infinity : Number(v);
    if (Number.isNaN(n) || (opts.integer && Number.isFinite(n) && !Number.isInteger(n)) || (opts.min !== undefined && n < opts.min)) {
      throw new InvalidArgumentError(`${name} must be a number${opts.min !== undefined ? ` >= ${opts.min}` : ''} [value:${v}]`);
    }
    return n;
  };
}

/** Parse argv, start the server, and wire signals. Resolves with the running server. */
export async function main(argv: string[] = process.argv): Promise<FakeRealtimeServer> {
  const program = new Command()
    .name('fake-realtime')
    .description('Fake OpenAI Realtime (GA) server for tests and benchmarks')
    .option('--host <host>', 'bind address', '127.0.0.1')
    .option('--port <port>', 'port (0 = any free port)', num('--port', { min: 0, integer: true }), 0)
    .option('--key <key>', 'expected API key (default: any non-empty key)')
    .option('--burst <factor>', 'audio delivery speed as a multiple of real time ("inf" = back to back)', num('--burst', { min: 0.01 }), 4)
    .option('--chunk-ms <ms>', 'audio per output_audio.delta', num('--chunk-ms', { min: 1 }), 100)
    .option('--tone-hz <hz>', 'reply tone frequency', num('--tone-hz', { min: 0 }), 1000)
    .option('--reply-ms <ms>', 'reply tone duration', num('--reply-ms', { min: 0 }), 1500)
    .option('--latency-ms <ms>', 'delay before the first output item of a response', num('--latency-ms', { min: 0 }), 0)
    .option('--rate-limited', 'refuse every handshake with 429', false)
    .configureOutput({ writeErr: () => undefined })
    .exitOverride();
  program.parse(argv);
  const o = program.opts<{
    host: string;
    port: number;
    key?: string;
    burst: number;
    chunkMs: number;
    toneHz: number;
    replyMs: number;
    latencyMs: number;
    rateLimited: boolean;
  }>();
  const server = new FakeRealtimeServer({
    host: o.host,
    port: o.port,
    ...(o.key !== undefined ? { apiKey: o.key } : {}),
    burstFactor: o.burst,
    chunkMs: o.chunkMs,
    responseLatencyMs: o.latencyMs,
    rateLimited: o.rateLimited,
    respond: toneReply({ toneHz: o.toneHz, ms: o.replyMs }),
  });
  const { url } = await server.listen();
  process.stdout.write(`listening ${url}\n`);
  const stop = (): void => {
    void server.close().then(() => {
      for (const s of server.sessions) {
        process.stdout.write(
          `${JSON.stringify({
            session: s.id,
            receivedMs: Math.round(s.receivedMs),
            responses: s.responses.length,
            truncations: s.truncations.length,
            errors: s.errors.map((e) => e['code']),
          })}\n`,
        );
      }
      process.exit(0);
    });
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  return server;
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`fake-realtime: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(2);
  });
}
