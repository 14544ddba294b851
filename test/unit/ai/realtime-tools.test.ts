import { silentLogger } from '../../../src/logging/logger';
import type { ClientEvent, WireItem } from '../../../src/ai/events';
import { ConversationHistory } from '../../../src/ai/realtime/ConversationHistory';
import { followUpRequest, ToolRunner } from '../../../src/ai/realtime/ToolRunner';
import {
  emptySessionStats,
  type AiSessionState,
  type AiSessionStats,
  type ResponseCreateOptions,
  type ResponseOutcome,
  type ToolCallRecord,
  type ToolContext,
  type ToolResult,
} from '../../../src/ai/types';

interface Harness {
  tools: ToolRunner;
  stats: AiSessionStats;
  history: ConversationHistory;
  sent: ClientEvent[];
  link: { generation: number; send(ev: ClientEvent): string };
  state: { name: AiSessionState['name']; settle: () => void };
  followUps: ResponseCreateOptions[];
  records: ToolCallRecord[];
  flushed: number;
}

function harness(opts: { timeoutMs?: number; vadResponds?: boolean } = {}): Harness {
  const sent: ClientEvent[] = [];
  const link = {
    generation: 1,
    send(ev: ClientEvent): string {
      sent.push(ev);
      return `evt_${sent.length}`;
    },
  };
  const stats = emptySessionStats();
  const history = new ConversationHistory({ historyMaxItems: 200, reseedMaxItems: 40, reseedMaxChars: 16_000 }, 8, stats);
  let waiters: (() => void)[] = [];
  const state = {
    name: 'ready' as AiSessionState['name'],
    settle: (): void => {
      for (const w of waiters) w();
      waiters = [];
    },
  };
  const h: Harness = {
    tools: undefined as unknown as ToolRunner,
    stats,
    history,
    sent,
    link,
    state,
    followUps: [],
    records: [],
    flushed: 0,
  };
  h.tools = new ToolRunner(
    {
      declared: [{ name: 'declared_only', description: 'No handler.', parameters: {} }],
      timeoutMs: opts.timeoutMs ?? 1000,
      vadResponds: opts.vadResponds ?? true,
      history,
      link,
      state: () => state.name,
      settled: () => (state.name === 'reconnecting' ? new Promise<void>((r) => waiters.push(r)) : Promise.resolve()),
      followUp: (o) => {
        h.followUps.push(o);
        return Promise.resolve({ responseId: 'resp_follow', status: 'completed', requested: true });
      },
      onToolCall: (r) => h.records.push(r),
      onFlushed: () => (h.flushed += 1),
    },
    stats,
    silentLogger(),
  );
  return h;
}

function call(callId: string, name: string, args: string, extra: Partial<WireItem> = {}): WireItem {
  return { id: `item_${callId}`, type: 'function_call', status: 'completed', call_id: callId, name, arguments: args, ...extra };
}

/** Let every pending promise callback run. */
async function drain(): Promise<void> {
  for (let i = 0; i < 10; i++) await new Promise<void>((r) => setImmediate(r));
}

function outputs(sent: ClientEvent[]): string[] {
  return sent.map((e) => {
    const item = (e as Extract<ClientEvent, { type: 'conversation.item.create' }>).item;
    return item.type === 'function_call' ? `call ${item.call_id}` : item.type === 'function_call_output' ? `output ${item.call_id} ${item.output}` : item.type;
  });
}

describe('followUpRequest', () => {
  const r = (followUp?: ToolResult['followUp']): ToolResult => ({ output: '{}', ...(followUp !== undefined ? { followUp } : {}) });

  it('asks for one plain response by default', () => {
    expect(followUpRequest([r(), r('respond')], undefined, true)).toEqual({});
  });

  it("asks for none when every result says 'none'", () => {
    expect(followUpRequest([r('none'), r('none')], undefined, true)).toBeUndefined();
    expect(followUpRequest([r('none'), r()], undefined, true)).toEqual({});
  });

  it('joins the instructions of every result', () => {
    expect(followUpRequest([r({ instructions: 'Say goodbye.' }), r(), r({ instructions: 'Be brief.' })], undefined, true)).toEqual({
      instructions: 'Say goodbye.\n\nBe brief.',
    });
  });

  it('leaves the reply to server VAD after a barge-in, unless a result brings instructions', () => {
    expect(followUpRequest([r()], 'turn_detected', true)).toBeUndefined();
    expect(followUpRequest([r()], 'turn_detected', false)).toEqual({});
    expect(followUpRequest([r({ instructions: 'Confirm.' })], 'turn_detected', true)).toEqual({ instructions: 'Confirm.' });
  });
});

describe('ToolRunner', () => {
  it('runs a call with its parsed arguments, sends the output after the carrying response, then asks for the follow-up', async () => {
    const h = harness();
    let ctx: ToolContext | undefined;
    h.tools.register({
      name: 'lookup',
      description: 'Look up.',
      parameters: {},
      handler: async (args, c) => {
        ctx = c;
        return { output: JSON.stringify({ got: args }) };
      },
    });
    h.tools.call('resp_1', call('call_1', 'lookup', '{"q":"hours"}'));
    await drain();
    expect(ctx?.callId).toBe('call_1');
    expect(ctx?.signal.aborted).toBe(false);
    expect(h.sent).toEqual([]);
    expect(h.tools.busy).toBe(true);

    h.tools.responseDone('resp_1', undefined);
    expect(h.tools.flushing).toBe(true);
    await drain();
    expect(outputs(h.sent)).toEqual(['output call_1 {"got":{"q":"hours"}}']);
    expect(h.followUps).toEqual([{}]);
    await expect(ctx?.followUp).resolves.toEqual({ responseId: 'resp_follow', status: 'completed', requested: true });
    expect(h.records).toEqual([expect.objectContaining({ name: 'lookup', callId: 'call_1', args: { q: 'hours' } })]);
    expect(h.stats.toolCalls).toBe(1);
    expect(h.flushed).toBe(1);
    expect(h.tools.busy).toBe(false);
  });

  it('answers an unknown tool, a tool without handler, bad JSON and a throwing handler with error outputs', async () => {
    const h = harness();
    h.tools.register({ name: 'thrower', description: '', parameters: {}, handler: () => Promise.reject(new Error('backend down')) });
    h.tools.register({ name: 'ok', description: '', parameters: {}, handler: async () => ({ output: 'fine' }) });
    h.tools.call('resp_1', call('c1', 'nope', '{}'));
    h.tools.call('resp_1', call('c2', 'declared_only', '{}'));
    h.tools.call('resp_1', call('c3', 'ok', '{not json'));
    h.tools.call('resp_1', call('c4', 'thrower', ''));
    h.tools.responseDone('resp_1', undefined);
    await drain();
    const errors = h.records.map((r) => r.error);
    expect(errors[0]).toBe("unknown tool 'nope'");
    expect(errors[1]).toBe("no handler registered for tool 'declared_only'");
    expect(errors[2]).toMatch(/^invalid JSON arguments for tool 'ok'/);
    expect(errors[3]).toBe('backend down');
    expect(outputs(h.sent)[3]).toBe('output c4 {"error":"backend down"}');
    expect(h.stats.toolErrors).toBe(4);
  });

  it('aborts a handler that runs past the timeout, even one that ignores its signal', async () => {
    const h = harness({ timeoutMs: 20 });
    let signal: AbortSignal | undefined;
    h.tools.register({
      name: 'stuck',
      description: '',
      parameters: {},
      handler: (_args, c) => {
        signal = c.signal;
        return new Promise<ToolResult>(() => undefined);
      },
    });
    h.tools.call('resp_1', call('c1', 'stuck', '{}'));
    h.tools.responseDone('resp_1', undefined);
    await new Promise((r) => setTimeout(r, 60));
    await drain();
    expect(signal?.aborted).toBe(true);
    expect(h.records[0].error).toBe('tool timed out [tool:stuck, callId:c1, timeoutMs:20]');
    expect(outputs(h.sent)).toHaveLength(1);
  });

  it('runs a call id once, whether output_item.done or response.done brings it, and ignores other items', async () => {
    const h = harness();
    let runs = 0;
    h.tools.register({ name: 'once', description: '', parameters: {}, handler: async () => ({ output: String(++runs) }) });
    h.tools.call('resp_1', call('c1', 'once', '{}'));
    h.tools.call('resp_1', call('c1', 'once', '{}'));
    h.tools.call('resp_1', call('c2', 'once', '{}', { status: 'in_progress' }));
    h.tools.call('resp_1', { type: 'message', role: 'assistant' });
    h.tools.responseDone('resp_1', undefined);
    await drain();
    expect(runs).toBe(1);
  });

  it('carries a call finished after a reconnect to the new server session as its pair, then the follow-up', async () => {
    const h = harness();
    let finish!: (r: ToolResult) => void;
    h.tools.register({ name: 'slow', description: '', parameters: {}, handler: () => new Promise<ToolResult>((r) => (finish = r)) });
    h.tools.call('resp_1', call('c1', 'slow', '{"a":1}'));
    await drain();
    h.state.name = 'reconnecting';
    h.link.generation = 2;
    h.tools.sessionLost();
    finish({ output: 'done' });
    await drain();
    expect(h.sent).toEqual([]);
    h.state.name = 'ready';
    h.state.settle();
    await drain();
    expect(outputs(h.sent)).toEqual(['call c1', 'output c1 done']);
    expect(h.followUps).toEqual([{}]);
  });

  it('sends nothing and resolves the follow-up as none when the session ended before the outputs', async () => {
    const h = harness();
    let ctx: ToolContext | undefined;
    h.tools.register({ name: 't', description: '', parameters: {}, handler: async (_a, c) => ((ctx = c), { output: 'x' }) });
    h.tools.call('resp_1', call('c1', 't', '{}'));
    h.state.name = 'closed';
    h.tools.responseDone('resp_1', undefined);
    await drain();
    expect(h.sent).toEqual([]);
    await expect(ctx?.followUp).resolves.toBeUndefined();
  });

  it('abandons running calls when the session ends: their signals abort and follow-up waiters are released', async () => {
    const h = harness();
    let ctx: ToolContext | undefined;
    h.tools.register({ name: 'slow', description: '', parameters: {}, handler: (_a, c) => ((ctx = c), new Promise<ToolResult>(() => undefined)) });
    h.tools.call('resp_1', call('c1', 'slow', '{}'));
    h.tools.abandon('session_closed');
    expect(ctx?.signal.aborted).toBe(true);
    expect((ctx?.signal.reason as Error).message).toBe('tool call abandoned [callId:c1, reason:session_closed]');
    await expect(ctx?.followUp).resolves.toBeUndefined();
    expect(h.tools.busy).toBe(false);
  });

  it('lists registered tools over declared ones of the same name, and refuses bad names and handlers', () => {
    const h = harness();
    h.tools.register({ name: 'declared_only', description: 'Now with a handler.', parameters: { type: 'object' }, handler: async () => ({ output: '' }) });
    expect(h.tools.wireTools()).toEqual([{ type: 'function', name: 'declared_only', description: 'Now with a handler.', parameters: { type: 'object' } }]);
    expect(() => h.tools.register({ name: 'bad name', description: '', parameters: {}, handler: async () => ({ output: '' }) })).toThrow(TypeError);
    expect(() => h.tools.register({ name: 'x', description: '', parameters: {} } as never)).toThrow(/needs a handler/);
  });

  it('refuses a declared tool with an invalid name at construction', () => {
    const stats = emptySessionStats();
    const history = new ConversationHistory({ historyMaxItems: 1, reseedMaxItems: 1, reseedMaxChars: 1 }, 8, stats);
    const noop = (): never => {
      throw new Error('unused');
    };
    expect(
      () =>
        new ToolRunner(
          {
            declared: [{ name: 'no spaces allowed', description: '', parameters: {} }],
            timeoutMs: 1,
            vadResponds: true,
            history,
            link: { generation: 0, send: noop },
            state: () => 'idle',
            settled: noop,
            followUp: noop as () => Promise<ResponseOutcome>,
            onToolCall: noop,
            onFlushed: noop,
          },
          stats,
          silentLogger(),
        ),
    ).toThrow(/invalid tool name/);
  });
});
