/**
 * ai.provider: openai-live with `delegation.type: client`, through SIP, against the strict GPT-Live
 * fake and the OpenAI HTTP fake (the agent's own chat model). The voice model delegates with an id
 * and no task text; the agent's chat model reads the conversation, calls end_call, and the answer
 * goes back as commentary for that delegation; the model says goodbye and the call ends with a BYE.
 */
import { FakeLiveServer, type LiveRespondScript } from '../fakes/FakeLiveServer';
import { FakeOpenAiHttp, type ChatMessage, type ChatReply } from '../fakes/FakeOpenAiHttp';
import { assertBuilt, prepareDaemon, startDaemon, waitForRecord } from '../helpers/daemon';
import { useHarnessCleanup } from '../helpers/proc';
import { newSource } from '../helpers/rtp';
import { dialPcmu, holdUntilBye, openCaller, sayTone as say, useCallers } from '../helpers/rtpcall';

jest.setTimeout(90_000);
useHarnessCleanup();
useCallers();

const KEY = 'sk-live-client-0123456789abcdef';
let live: FakeLiveServer;
let http: FakeOpenAiHttp;
const chatSeen: ChatMessage[][] = [];

beforeAll(async () => {
  assertBuilt();
  live = new FakeLiveServer({ apiKey: KEY, vadSilenceMs: 400, gapThresholdMs: 500 });
  await live.listen();
  http = new FakeOpenAiHttp({
    apiKey: KEY,
    reply: (messages): ChatReply => {
      chatSeen.push([...messages]);
      // First the tool, then (with its result in the conversation) the words for the caller.
      return messages.some((m) => m.role === 'tool') ? { text: 'Goodbye, and thank you for calling.' } : { toolCalls: [{ name: 'end_call', arguments: { reason: 'the caller is done' } }] };
    },
  });
  await http.listen();
});
afterAll(async () => {
  await live?.close();
  await http?.close();
});

test('client delegation: the chat model runs end_call, its answer goes back for the delegation, and the call ends with a BYE', async () => {
  const delegateOnce: LiveRespondScript = (ctx) => (ctx.index === 0 ? [{ delegate: {} }] : []);
  live.respond = delegateOnce;
  const setup = await prepareDaemon('echo', {
    ai: {
      provider: 'openai-live',
      apiKey: KEY,
      instructions: 'You answer the phone. End the call when the caller is done.',
      live: { url: live.url, model: 'gpt-live-1', delegation: { type: 'client', client: { url: http.apiBase, model: 'gpt-4.1-mini' } } },
    },
  });
  const d = await startDaemon(setup, { name: 'live-client' });
  const { sip, rtp } = await openCaller(d);
  const first = live.connectionCount;
  const { dlg, to } = await dialPcmu(sip, setup.ports.sip, rtp);
  const src = newSource();
  await say(rtp, src, to, 0, 1500, 0);
  await say(rtp, src, to, 700, 700, 0);
  const bye = await holdUntilBye(dlg, rtp, src, to, 20_000);
  const s = await live.waitForSession(1000, first);
  dlg.close();
  expect(s.errors).toEqual([]);
  expect(bye).toBeDefined();
  expect(s.config).toMatchObject({ delegation: { type: 'client' } });
  // The one delegation was answered as the reference says: an append naming it.
  expect(s.delegations).toHaveLength(1);
  expect(s.delegations[0]!.answers).toEqual([expect.objectContaining({ kind: 'commentary', content: expect.stringContaining('Goodbye, and thank you for calling.') })]);
  // The chat model saw the caller's words (the input transcript) and had the agent's tools.
  expect(chatSeen[0]!.some((m) => m.role === 'user')).toBe(true);
  const rec = await waitForRecord(setup.recordsDir, (r) => r.record.status === 'completed', 10_000);
  expect((rec.record.tools as { name: string }[]).map((t) => t.name)).toEqual(['end_call']);
  expect(rec.record.endReason).toBe('agent_hangup');
});
