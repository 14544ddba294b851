import { silentLogger } from '../../../src/logging/logger';
import type { ClientEvent, WireResponse, WireUsage } from '../../../src/ai/events';
import { ResponseQueue } from '../../../src/ai/realtime/ResponseQueue';
import { emptySessionStats, type AiSessionStats, type ResponseOutcome } from '../../../src/ai/types';

interface Harness {
  q: ResponseQueue;
  stats: AiSessionStats;
  sent: ClientEvent[];
  log: string[];
  link: { generation: number; open: boolean; send(ev: ClientEvent): string | undefined };
  gate: { open: boolean };
}

function harness(maxQueued = 8): Harness {
  const sent: ClientEvent[] = [];
  const log: string[] = [];
  let n = 0;
  const link = {
    generation: 1,
    open: true,
    send(ev: ClientEvent): string | undefined {
      if (!link.open) return undefined;
      sent.push(ev);
      return `evt_${++n}`;
    },
  };
  const gate = { open: true };
  const stats = emptySessionStats();
  const q = new ResponseQueue(
    {
      maxQueued,
      link,
      mayCreate: () => gate.open,
      onCreated: (i) => log.push(`created:${i.responseId}:${i.requested}`),
      onUsage: (u: WireUsage) => log.push(`usage:${u.total_tokens}`),
      onDone: (o) => log.push(`done:${o.responseId}:${o.status}`),
    },
    stats,
    silentLogger(),
  );
  return { q, stats, sent, log, link, gate };
}

/** The request tag of the n-th response.create sent. */
function tagOf(h: Harness, n: number): string {
  const creates = h.sent.filter((e) => e.type === 'response.create') as Extract<ClientEvent, { type: 'response.create' }>[];
  return creates[n]?.response?.metadata?.sip_ai_request as string;
}

function created(h: Harness, id: string, tag?: string): void {
  h.q.created({ type: 'response.created', response: { id, status: 'in_progress', ...(tag ? { metadata: { sip_ai_request: tag } } : {}) } });
}

function done(h: Harness, id: string, extra: Partial<WireResponse> = {}): ResponseOutcome {
  return h.q.done({ id, status: 'completed', output: [], ...extra });
}

describe('ResponseQueue', () => {
  it('sends one response.create at a time, tagged, and resolves each request with its outcome', async () => {
    const h = harness();
    const a = h.q.request({ instructions: 'Greet the caller' });
    const b = h.q.request({});
    expect(h.sent).toHaveLength(1);
    expect(h.sent[0]).toEqual({ type: 'response.create', response: { instructions: 'Greet the caller', metadata: { sip_ai_request: 'req_1' } } });
    expect(h.q.busy).toBe(true);

    created(h, 'resp_1', tagOf(h, 0));
    expect(h.sent).toHaveLength(1);
    done(h, 'resp_1');
    expect(h.sent).toHaveLength(1);
    h.q.pump();
    expect(tagOf(h, 1)).toBe('req_2');
    created(h, 'resp_2', 'req_2');
    done(h, 'resp_2', { status: 'cancelled', status_details: { reason: 'turn_detected' } });

    await expect(a).resolves.toEqual({ responseId: 'resp_1', status: 'completed', requested: true });
    await expect(b).resolves.toEqual({ responseId: 'resp_2', status: 'cancelled', reason: 'turn_detected', requested: true });
    expect(h.log).toEqual(['created:resp_1:true', 'done:resp_1:completed', 'created:resp_2:true', 'done:resp_2:cancelled']);
    expect(h.stats.responsesRequested).toBe(2);
    expect(h.q.busy).toBe(false);
  });

  it('maps the wire options of a request (tool choice, output cap, conversation, metadata)', () => {
    const h = harness();
    void h.q.request({ conversation: 'none', toolChoice: { type: 'function', name: 'end_call' }, maxOutputTokens: 'inf', metadata: { topic: 'x' } });
    expect(h.sent[0]).toEqual({
      type: 'response.create',
      response: { conversation: 'none', tool_choice: { type: 'function', name: 'end_call' }, max_output_tokens: 'inf', metadata: { topic: 'x', sip_ai_request: 'req_1' } },
    });
  });

  it('refuses a request beyond the bound with not_sent queue_full and counts it', async () => {
    const h = harness(1);
    void h.q.request({});
    void h.q.request({});
    await expect(h.q.request({})).resolves.toMatchObject({ status: 'not_sent', reason: 'queue_full', responseId: undefined });
    expect(h.stats.responsesDropped).toBe(1);
  });

  it('puts a follow-up ahead of the waiting requests, beyond the bound', () => {
    const h = harness(1);
    void h.q.request({ instructions: 'first' });
    void h.q.request({ instructions: 'waiting' });
    void h.q.requestFirst({ instructions: 'follow-up' });
    created(h, 'resp_1', tagOf(h, 0));
    done(h, 'resp_1');
    h.q.pump();
    expect((h.sent[1] as { response: { instructions: string } }).response.instructions).toBe('follow-up');
  });

  it('sends nothing while the session says no, and the first waiting request once it says yes', () => {
    const h = harness();
    h.gate.open = false;
    void h.q.request({});
    expect(h.sent).toHaveLength(0);
    h.gate.open = true;
    h.q.pump();
    expect(h.sent).toHaveLength(1);
  });

  it('keeps a request waiting when the socket is gone', () => {
    const h = harness();
    h.link.open = false;
    void h.q.request({});
    expect(h.q.busy).toBe(false);
    h.link.open = true;
    h.q.pump();
    expect(h.sent).toHaveLength(1);
    expect(h.stats.responsesRequested).toBe(1);
  });

  it('tracks a server (VAD) response as unowned and waits for it before sending its own', async () => {
    const h = harness();
    created(h, 'resp_vad');
    expect(h.log).toEqual(['created:resp_vad:false']);
    const p = h.q.request({});
    expect(h.sent).toHaveLength(0);
    expect(done(h, 'resp_vad').requested).toBe(false);
    h.q.pump();
    expect(h.sent).toHaveLength(1);
    created(h, 'resp_2');
    done(h, 'resp_2');
    await expect(p).resolves.toMatchObject({ responseId: 'resp_2', requested: true });
  });

  it('announces usage before the outcome', () => {
    const h = harness();
    created(h, 'resp_1');
    done(h, 'resp_1', { usage: { total_tokens: 7, input_tokens: 5, output_tokens: 2 } });
    expect(h.log).toEqual(['created:resp_1:false', 'usage:7', 'done:resp_1:completed']);
  });

  it('fails a response with the server error it carries', () => {
    const h = harness();
    created(h, 'resp_1');
    expect(done(h, 'resp_1', { status: 'failed', status_details: { error: { code: 'server_error', message: 'boom' } } })).toEqual({
      responseId: 'resp_1',
      status: 'failed',
      requested: false,
      error: { code: 'server_error', message: 'boom' },
    });
  });

  it('re-queues a create that lost the race with an active response, a few times, then fails it', async () => {
    const h = harness();
    const p = h.q.request({});
    for (let i = 0; i < 3; i++) {
      expect(h.q.createFailed(`evt_${i + 1}`, 'conversation_already_has_active_response', 'busy')).toBe(true);
      expect(h.sent).toHaveLength(i + 2);
    }
    expect(h.q.createFailed('evt_4', 'conversation_already_has_active_response', 'busy')).toBe(true);
    await expect(p).resolves.toEqual({ responseId: undefined, status: 'failed', requested: true, error: { code: 'conversation_already_has_active_response', message: 'busy' } });
    expect(h.q.createFailed('evt_99', 'x', 'not ours')).toBe(false);
  });

  it('cancels the active responses, or the request in flight as soon as it is created', () => {
    const h = harness();
    h.q.cancel();
    expect(h.sent).toHaveLength(0);
    void h.q.request({});
    h.q.cancel();
    created(h, 'resp_1', tagOf(h, 0));
    expect(h.sent[1]).toEqual({ type: 'response.cancel', response_id: 'resp_1' });
    h.q.cancel();
    expect(h.sent[2]).toEqual({ type: 'response.cancel', response_id: 'resp_1' });
  });

  it('fails the active response, then the one in flight, when the server session is lost; waiting ones are sent later', async () => {
    const h = harness();
    created(h, 'resp_vad');
    const active = h.q.request({});
    done(h, 'resp_vad');
    h.q.pump();
    const waiting = h.q.request({});
    created(h, 'resp_2');
    h.q.lose('session_lost');
    expect(h.log.slice(-1)).toEqual(['done:resp_2:failed']);
    await expect(active).resolves.toMatchObject({ status: 'failed', reason: 'session_lost', responseId: 'resp_2' });
    expect(h.q.busy).toBe(false);
    h.q.pump();
    expect(tagOf(h, 1)).toBe('req_2');
    h.q.lose('session_lost');
    await expect(waiting).resolves.toMatchObject({ status: 'failed', reason: 'session_lost', responseId: undefined });
  });

  it('resolves every waiting request as not sent when the session ends', async () => {
    const h = harness();
    h.gate.open = false;
    const a = h.q.request({});
    const b = h.q.request({});
    h.q.dropWaiting('session_closed');
    await expect(Promise.all([a, b])).resolves.toEqual([
      expect.objectContaining({ status: 'not_sent', reason: 'session_closed' }),
      expect.objectContaining({ status: 'not_sent', reason: 'session_closed' }),
    ]);
  });
});
