/**
 * Run the fake GPT-Live server as its own process (for benchmarks and manual runs).
 *
 *   node -r ./test/fakes/ts-register.js test/fakes/fake-live-cli.ts --port 0 --key sk-test --burst 4
 *
 * Prints one line `listening <url>` once bound, then one JSON line per session on close;
 * SIGINT/SIGTERM close it cleanly (exit 0).
 */
import { Command, InvalidArgumentError } from 'commander';
import { FakeLiveServer, liveToneReply } from './FakeLiveServer';

function num(name: string, opts: { min?: number; integer?: boolean } = {}): (v: string) => number {
  return (v: string) => {
    const n = v === 'inf' || v === 'Infinity' ? Infinity : Number(v);
    if (Number.isNaN(n) || (opts.integer && Number.isFinite(n) && !Number.isInteger(n)) || (opts.min !== undefined && n < opts.min)) {
      throw new InvalidArgumentError(`${name} must be a number${opts.min !== undefined ? ` >= ${opts.min}` : ''} [value:${v}]`);
    }
    return n;
  };
}

/** Parse argv, start the server, wire signals. Resolves with the running server. */
export async function main(argv: string[] = process.argv): Promise<FakeLiveServer> {
  const program = new Command()
    .name('fake-live')
    .description('Fake OpenAI GPT-Live server for tests and benchmarks')
    .option('--host <host>', 'bind address', '127.0.0.1')
    .option('--port <port>', 'port (0 = any free port)', num('--port', { min: 0, integer: true }), 0)
    .option('--key <key>', 'expected API key (default: any non-empty key)')
    .option('--burst <factor>', 'audio delivery speed as a multiple of real time ("inf" = back to back)', num('--burst', { min: 0.01 }), 4)
    .option('--chunk-ms <ms>', 'audio per session.output_audio.delta', num('--chunk-ms', { min: 1 }), 100)
    .option('--tone-hz <hz>', 'reply tone frequency', num('--tone-hz', { min: 0 }), 1000)
    .option('--reply-ms <ms>', 'reply tone duration', num('--reply-ms', { min: 0 }), 1500)
    .option('--silence-ms <ms>', 'silence that ends a caller turn', num('--silence-ms', { min: 0 }), 500)
    .configureOutput({ writeErr: () => undefined })
    .exitOverride();
  program.parse(argv);
  const o = program.opts<{ host: string; port: number; key?: string; burst: number; chunkMs: number; toneHz: number; replyMs: number; silenceMs: number }>();
  const server = new FakeLiveServer({
    host: o.host,
    port: o.port,
    ...(o.key !== undefined ? { apiKey: o.key } : {}),
    burstFactor: o.burst,
    chunkMs: o.chunkMs,
    vadSilenceMs: o.silenceMs,
    respond: liveToneReply({ toneHz: o.toneHz, ms: o.replyMs }),
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
            utterances: s.utterances.length,
            interruptions: s.interruptions.length,
            inputGaps: s.inputGaps.length,
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
    process.stderr.write(`fake-live: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(2);
  });
}
