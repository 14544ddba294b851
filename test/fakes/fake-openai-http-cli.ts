/**
 * Run the fake OpenAI HTTP server (transcriptions, chat completions, speech) as its own process,
 * for benchmarks and manual runs.
 *
 *   node -r ./test/fakes/ts-register.js test/fakes/fake-openai-http-cli.ts --port 0 --key sk-test --first-token-ms 300
 *
 * Prints one line `listening <url>` on stdout once bound, then one JSON line per request on
 * close; SIGINT/SIGTERM close it cleanly (exit 0).
 */
import { Command, InvalidArgumentError } from 'commander';
import { FakeOpenAiHttp, type RequestRecord } from './FakeOpenAiHttp';

/** Parser of a flag whose value is a number >= 0 ("inf" allowed when `infinite`). */
function nonNegative(flag: string, infinite = false): (value: string) => number {
  return (value: string) => {
    const n = infinite && (value === 'inf' || value === 'Infinity') ? Infinity : Number(value);
    if (value.trim() === '' || !(n >= 0)) throw new InvalidArgumentError(`${flag} must be a number >= 0 [value:${value}]`);
    return n;
  };
}

function portNumber(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError(`--port must be an integer 0..65535 [value:${value}]`);
  return n;
}

/** Parsed flags (commander camel-cases them). */
interface CliOptions {
  host: string;
  port: number;
  key?: string;
  sttMs: number;
  sttDeltaMs: number;
  firstTokenMs: number;
  chatDeltaMs: number;
  ttsFirstByteMs: number;
  ttsChunkMs: number;
  ttsPace: number;
}

/** A request as one line of the close report; times in ms from its arrival. */
function summary(r: RequestRecord): Record<string, unknown> {
  const since = (t: number | null): number | null => (t === null ? null : Math.round(t - r.receivedAt));
  return {
    id: r.id,
    endpoint: r.endpoint,
    status: r.status,
    stream: r.stream,
    aborted: r.aborted,
    bytesSent: r.bytesSent,
    firstByteMs: since(r.firstByteAt),
    totalMs: since(r.finishedAt),
    error: r.error?.code ?? r.error?.type ?? null,
  };
}

/** Parse argv, start the server, and wire signals. Resolves with the running server. */
export async function main(argv: string[] = process.argv): Promise<FakeOpenAiHttp> {
  const program = new Command()
    .name('fake-openai-http')
    .description('Fake OpenAI transcription, chat completion and speech HTTP APIs for tests and benchmarks')
    .option('--host <host>', 'bind address', '127.0.0.1')
    .option('--port <port>', 'port (0 = any free port)', portNumber, 0)
    .option('--key <key>', 'expected API key (default: any non-empty key)')
    .option('--stt-ms <ms>', 'delay before a transcription (or its first streamed delta)', nonNegative('--stt-ms'), 0)
    .option('--stt-delta-ms <ms>', 'delay between streamed transcription deltas', nonNegative('--stt-delta-ms'), 0)
    .option('--first-token-ms <ms>', 'delay before the first chat completion chunk', nonNegative('--first-token-ms'), 0)
    .option('--chat-delta-ms <ms>', 'delay between streamed chat pieces', nonNegative('--chat-delta-ms'), 0)
    .option('--tts-first-byte-ms <ms>', 'delay before the first byte of speech audio', nonNegative('--tts-first-byte-ms'), 0)
    .option('--tts-chunk-ms <ms>', 'speech audio per written chunk', nonNegative('--tts-chunk-ms'), 40)
    .option(
      '--tts-pace <factor>',
      'speech delivery speed as a multiple of real time ("inf" = as fast as possible)',
      nonNegative('--tts-pace', true),
      Infinity,
    )
    .configureOutput({ writeErr: () => undefined })
    .exitOverride();
  program.parse(argv);
  const o = program.opts<CliOptions>();
  if (o.ttsChunkMs <= 0 || o.ttsPace <= 0) throw new InvalidArgumentError('--tts-chunk-ms and --tts-pace must be > 0');
  const server = new FakeOpenAiHttp({
    host: o.host,
    port: o.port,
    ...(o.key !== undefined ? { apiKey: o.key } : {}),
    timing: {
      sttMs: o.sttMs,
      sttDeltaMs: o.sttDeltaMs,
      chatFirstTokenMs: o.firstTokenMs,
      chatDeltaMs: o.chatDeltaMs,
      ttsFirstByteMs: o.ttsFirstByteMs,
      ttsChunkMs: o.ttsChunkMs,
      ttsPace: o.ttsPace,
    },
  });
  const { url } = await server.listen();
  process.stdout.write(`listening ${url}\n`);
  const stop = async (): Promise<void> => {
    await server.close();
    process.stdout.write(server.requests.map((r) => `${JSON.stringify(summary(r))}\n`).join(''));
    process.exit(0);
  };
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void stop());
  return server;
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`fake-openai-http: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(2);
  });
}
