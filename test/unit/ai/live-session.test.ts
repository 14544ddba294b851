/**
 * LiveSession against a loopback WebSocket peer that plays GPT-Live's side by hand, with exchanges
 * shaped as the Live reference gives them: session.start / session.started, model audio and
 * transcripts, a barge-in, tool calls under Responses and client delegation, errors and drops.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { silentLogger } from '../../../src/logging/logger';
import { AiSessionError } from '../../../src/util/errors';
import { LiveSession, type LiveOptions } from '../../../src/ai/live/LiveSession';
import type { AiSessionOptions, ResponseOutcome, ToolCallRecord } from '../../../src/ai/types';
import { ScriptedServer, type Peer } from './scriptedServer';

const log = silentLogger();
let server: ScriptedServer;
const sessions: LiveSession[] = [];

const BASE: AiSessionOptions = {
  instructions: 'You answer the phone for Example Ltd.',
  voice: 'marin',
  inputFormat: 'pcm',
  outputFormat: 'pcm',
  turnDetection: { type: 'server_vad' },
  noiseReduction: null,
  transcription: null,
};

function session(live: Partial<LiveOptions> = {}, opts: Partial<AiSessionOptions> = {}): LiveSession {
  const s = new LiveSession(
    {
      session: { ...BASE, ...opts },
      connection: { url: server.url('/v1/live/sessions'), apiKey: 'sk-live-test', pingIntervalMs: 0, connectTimeoutMs: 2000 },
      live: { model: 'gpt-live-1', delegation: { type: 'responses', model: 'gpt-5.5' }, turnGapMs: 150, closeGraceMs: 0, replyTimeoutMs: 1500, ...live },
    },
    log,
  );
  sessions.push(s);
  return s;
}

/** Answer session.start with session.started echoing its audio, as the service resolves it. */
async function accept(peer: Peer, id = `live_${peer.index}`, expiresInS = 3600): Promise<Record<string, any>> {
  const start = await peer.next('session.start');
  peer.send({
    type: 'session.started',
    event_id: `sev_${peer.index}`,
    client_event_id: start.event_id,
    session: { id, model: start.session.model, status: 'active', expires_at: Math.floor(Date.now() / 1000) + expiresInS, audio: start.session.audio, delegation: start.session.delegation },
  });
  return start;
}

async function started(s: LiveSession, n = 1): Promise<{ peer: Peer; start: Record<string, any> }> {
  const p = s.start();
  const peer = await server.peer(n);
  const start = await accept(peer);
  await p;
  return { peer, start };
}

/** 24 kHz PCM16: `ms` of a 440 Hz tone (voiced) or of silence, base64. */
function pcm(ms: number, voiced = true): string {
  const n = Math.round(ms * 24);
  const b = Buffer.alloc(n * 2);
  for (let i = 0; i < n; i++) b.writeInt16LE(voiced ? Math.round(8000 * Math.sin((2 * Math.PI * 440 * i) / 24000)) : 0, i * 2);
  return b.toString('base64');
}

function until<T>(s: LiveSession, event: 'responseDone' | 'speechStarted' | 'toolCall' | 'died' | 'reconnected' | 'error', timeoutMs = 3000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${event} within ${timeoutMs} ms`)), timeoutMs);
    s.once(event as 'responseDone', ((v: unknown) => {
      clearTimeout(timer);
      resolve(v as T);
    }) as never);
  });
}

beforeEach(async () => {
  server = await ScriptedServer.start();
  server.behaviour = { silent: true };
});
afterEach(async () => {
  for (const s of sessions.splice(0)) s.close();
  await server.stop();
});

describe('LiveSession start', () => {
  it('sends session.start first with the model, instructions, format, voice and delegation, and becomes ready on session.started', async () => {
    const s = session({ delegation: { type: 'responses', model: 'gpt-5.5', reasoningEffort: 'low', maxOutputTokens: 800, hostedTools: [{ type: 'web_search' }] } });
    const { peer, start } = await started(s);
    expect(server.upgrades[0].url).toBe('/v1/live/sessions');
    expect(server.upgrades[0].headers.authorization).toBe('Bearer sk-live-test');
    expect(peer.received[0].type).toBe('session.start');
    expect(start.session).toEqual({
      model: 'gpt-live-1',
      instructions: BASE.instructions,
      audio: { format: { type: 'audio/pcm', rate: 24000 }, output: { voice: 'marin' } },
      delegation: { type: 'responses', responses: { model: 'gpt-5.5', instructions: BASE.instructions, max_output_tokens: 800, reasoning: { effort: 'low' }, tools: [{ type: 'web_search' }] } },
    });
    expect(s.state.name).toBe('ready');
    expect(s.serverSessionId).toBe('live_1');
  });
});
