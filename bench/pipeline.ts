/**
 * Turn latency of the pipeline backend, from the caller's end of speech (the last RTP packet of a
 * spoken turn, on the wire) to the first agent sample in RTP, split into its parts with the fake
 * services' own request log: the VAD's hangover (end of speech -> the transcription request), STT,
 * the gap to the chat request, the chat model's first token, the wait for the first whole sentence,
 * the speech service's first byte, and our playout (first audio byte -> first loud RTP packet).
 * Scenarios: the fakes with no delay (what is left is our share), the fakes with realistic delays,
 * and the openai backend against the fake Realtime server (its server VAD hangover beside ours),
 * and the openai-live backend against the fake GPT-Live server. For the two WebSocket backends the
 * fake's own event times split the turn: end of speech -> the model's end of turn (the upload and
 * the model's silence), -> its first audio, -> the first loud RTP packet (our downlink).
 *
 * Run:   npx tsc -p tsconfig.json && node dist/bench/pipeline.js [--turns 8] [--backends pipeline,openai,openai-live]
 */
import { FakeOpenAiHttp } from '../test/fakes/FakeOpenAiHttp';
import { FakeLiveServer, liveToneReply } from '../test/fakes/FakeLiveServer';
import { FakeRealtimeServer, toneReply } from '../test/fakes/FakeRealtimeServer';
import { prepareDaemon, startDaemon } from '../test/helpers/daemon';
import { cleanupAll } from '../test/helpers/proc';
import { RawSipClient, pcmuOffer, sdpAudioAddress } from '../test/helpers/rawsip';
import { RtpPeer, newSource } from '../test/helpers/rtp';
import { sine } from '../test/helpers/tone';
import { sleep } from './capacity';

const KEY = 'sk-bench-pipeline-0123456789abcdef';
const LOUD = 1000;
const SILENCE_MS = 500;

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
}

const median = (v: number[]): number | null => {
  const s = v.filter(Number.isFinite).sort((a, b) => a - b);
  return s.length ? Math.round(s[Math.floor(s.length / 2)]! * 10) / 10 : null;
};

/** First packet received after `t` (Date.now()) that is loud; its arrival time. */
function firstLoud(rtp: RtpPeer, t: number): number | undefined {
  for (let i = 0; i < rtp.received.length; i++) {
    if (rtp.receivedAt[i]! < t) continue;
    const p = rtp.received[i]!;
    let peak = 0;
    for (const x of p) peak = Math.max(peak, Math.abs(x));
    if (peak >= LOUD) return rtp.receivedAt[i];
  }
  return undefined;
}

/** Until `ms` of quiet has been received after the reply started. */
async function replyOver(rtp: RtpPeer, after: number, ms: number, timeoutMs: number): Promise<void> {
  const t0 = Date.now();
  while (Date.now() - t0 < timeoutMs) {
    const last = [...rtp.received.keys()].reverse().find((i) => rtp.receivedAt[i]! >= after && rtp.received[i]!.some((x) => Math.abs(x) >= LOUD));
    if (last !== undefined && Date.now() - rtp.receivedAt[last]! >= ms) return;
    await sleep(50);
  }
}

/** A WebSocket fake's times: when the model ended each caller turn, and when it sent audio (stamped as sent). */
interface ModelClock {
  turnEnds: () => number[];
  audioAt: number[];
}

/** Stamp a fake's outgoing `audioType` events; `turnEnds` reads when it ended each caller turn. */
function modelClock(onEvent: (l: (o: { dir: string; event: Record<string, unknown> }) => void) => unknown, audioType: string, turnEnds: () => number[]): ModelClock {
  const clock: ModelClock = { turnEnds, audioAt: [] };
  onEvent((o) => {
    if (o.dir === 'out' && o.event['type'] === audioType) clock.audioAt.push(Date.now());
  });
  return clock;
}

interface TurnFigures {
  totalMs: number;
  parts?: Record<string, number>;
}

async function scenario(name: string, ai: Record<string, unknown>, turns: number, fake?: FakeOpenAiHttp, clock?: ModelClock): Promise<Record<string, unknown>> {
  const setup = await prepareDaemon('echo', { ai, greeting: { interruptible: false } });
  const d = await startDaemon(setup, { name, lifetimeMs: 600_000 });
  const sip = await RawSipClient.open();
  const rtp = await RtpPeer.open();
  const figures: TurnFigures[] = [];
  try {
    const dlg = await sip.invite({ target: { host: '127.0.0.1', port: setup.ports.sip }, body: pcmuOffer(rtp.port) });
    const to = sdpAudioAddress(dlg.final.bodyText);
    const src = newSource();
    // Keep the line open with silence while waiting, as a phone does.
    let talking = true;
    let gap: Promise<void> = Promise.resolve();
    // One stream, as a phone sends it: the marker bit only on its first packet (a marker starts a
    // talkspurt, and the jitter buffer would take each one as a new one).
    // Each 100 ms chunk starts 100 ms after the last one: play() sends a chunk's five packets over
    // 80 ms, and starting the next at once would run ahead of real time and fill the jitter buffer.
    const silence = async (): Promise<void> => {
      for (let next = Date.now(); talking; next += 100) {
        if (next > Date.now()) await sleep(next - Date.now());
        await rtp.play(src, sine(0, 100, 8000, 0.4), to, true);
      }
    };
    gap = silence();
    await sleep(4000); // the opening line
    for (let i = 0; i < turns; i++) {
      talking = false;
      await gap;
      const mark = fake?.requests.length ?? 0;
      await rtp.play(src, sine(700, 600, 8000, 0.4), to, true);
      const end = Date.now();
      talking = true;
      gap = silence();
      await replyOver(rtp, end, 600, 15_000);
      const heard = firstLoud(rtp, end);
      if (heard === undefined) continue;
      const f: TurnFigures = { totalMs: heard - end };
      if (fake) {
        const reqs = fake.requests.slice(mark);
        const stt = reqs.find((r) => r.endpoint === 'transcriptions');
        const chat = reqs.find((r) => r.endpoint === 'chat');
        const tts = reqs.find((r) => r.endpoint === 'speech');
        if (stt?.finishedAt && chat?.firstByteAt && tts?.firstByteAt) {
          f.parts = {
            vadHangover: stt.receivedAt - end,
            stt: stt.finishedAt - stt.receivedAt,
            toChat: chat.receivedAt - stt.finishedAt,
            chatFirstToken: chat.firstByteAt - chat.receivedAt,
            firstSentence: tts.receivedAt - chat.firstByteAt,
            ttsFirstByte: tts.firstByteAt - tts.receivedAt,
            playout: heard - tts.firstByteAt,
          };
        }
      }
      const turnEnd = clock?.turnEnds().find((at) => at >= end);
      const audio = turnEnd === undefined ? undefined : clock?.audioAt.find((at) => at >= turnEnd);
      if (turnEnd !== undefined && audio !== undefined) f.parts = { modelTurnEnd: turnEnd - end, modelFirstAudio: audio - turnEnd, playout: heard - audio };
      figures.push(f);
    }
    talking = false;
    await gap;
    await dlg.bye(5_000).catch(() => undefined);
    dlg.close();
  } finally {
    rtp.close();
    sip.close();
    await d.close();
  }
  const parts: Record<string, number | null> = {};
  for (const k of Object.keys(figures.find((f) => f.parts)?.parts ?? {})) parts[k] = median(figures.map((f) => f.parts?.[k] ?? NaN));
  const ours = fake && parts.toChat !== null ? Math.round(((parts.toChat ?? 0) + (parts.playout ?? 0)) * 10) / 10 : clock ? parts.playout : null;
  return { name, turns: figures.length, totalMsMedian: median(figures.map((f) => f.totalMs)), totalMsMax: Math.max(...figures.map((f) => f.totalMs)), partsMedianMs: fake || clock ? parts : undefined, oursMedianMs: ours };
}

async function main(): Promise<void> {
  const turns = arg('turns', 8);
  const out: Record<string, unknown>[] = [];
  const fake = new FakeOpenAiHttp({ apiKey: KEY, reply: () => ({ text: 'Sure, I can help with that. What else?' }) });
  await fake.listen();
  const realtime = new FakeRealtimeServer({ apiKey: KEY, respond: toneReply({ toneHz: 1000, ms: 800 }) });
  await realtime.listen();
  const live = new FakeLiveServer({ apiKey: KEY, vadSilenceMs: SILENCE_MS, vadPrefixMs: 100, respond: liveToneReply({ toneHz: 1000, ms: 800 }) });
  await live.listen();
  // The Realtime fake's end of each caller turn: its speech_stopped, stamped as sent.
  const stoppedAt: number[] = [];
  realtime.onEvent((o) => {
    if (o.dir === 'out' && o.event['type'] === 'input_audio_buffer.speech_stopped') stoppedAt.push(Date.now());
  });
  const backends = (process.argv[process.argv.indexOf('--backends') + 1] ?? '').split(',');
  const wanted = (b: string): boolean => !process.argv.includes('--backends') || backends.includes(b);
  try {
    const pipeline = (extra: Record<string, unknown> = {}) => ({
      provider: 'pipeline',
      apiKey: KEY,
      pipeline: {
        // The caller's turns are tones: the energy detector hears them (a neural VAD rightly does not).
        vad: { engine: 'energy', silenceMs: SILENCE_MS, minSpeechMs: 100 },
        stt: { url: fake.apiBase, model: 'whisper-1' },
        chat: { url: fake.apiBase, model: 'gpt-4.1-mini' },
        tts: { url: fake.apiBase, model: 'gpt-4o-mini-tts', voice: 'marin' },
      },
      ...extra,
    });
    if (wanted('pipeline')) {
      out.push(await scenario('pipeline, fakes without delay', pipeline(), turns, fake));
      Object.assign(fake.timing, { sttMs: 300, chatFirstTokenMs: 400, chatDeltaMs: 30, ttsFirstByteMs: 200 });
      out.push(await scenario('pipeline, fakes with stt 300 ms, chat first token 400 ms (+30 ms a piece), tts first byte 200 ms', pipeline(), turns, fake));
    }
    if (wanted('openai')) out.push(
      await scenario(
        'openai (fake Realtime server, server_vad silence 500 ms)',
        { provider: 'openai', url: `${realtime.baseUrl}/v1/realtime`, apiKey: KEY, model: 'gpt-realtime', turnDetection: { type: 'server_vad', silenceDurationMs: SILENCE_MS, prefixPaddingMs: 100 } },
        turns,
        undefined,
        modelClock((l) => realtime.onEvent(l), 'response.output_audio.delta', () => stoppedAt),
      ),
    );
    if (wanted('openai-live')) out.push(
      await scenario(
        'openai-live (fake GPT-Live server, its turn-taking silence 500 ms)',
        { provider: 'openai-live', apiKey: KEY, live: { url: live.url } },
        turns,
        undefined,
        modelClock((l) => live.onEvent(l), 'session.output_audio.delta', () => live.sessions.flatMap((x) => x.turns.map((t) => t.endedAt))),
      ),
    );
    process.stdout.write(`${JSON.stringify({ silenceMs: SILENCE_MS, results: out }, null, 2)}\n`);
  } finally {
    await fake.close();
    await realtime.close();
    await live.close();
    await cleanupAll();
  }
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`pipeline: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exitCode = 1;
  });
}
