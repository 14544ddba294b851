/** The GPT-Live server-event parser: what it accepts as the reference shapes it, and what it refuses, naming the field. */
import { backendUsageOf, base64Problem, functionCallOf, parseLiveServerEvent } from '../../../src/ai/live/wire';

const started = { type: 'session.started', event_id: 'sev_1', session: { id: 'live_1', model: 'gpt-live-1', status: 'active', expires_at: 1_900_000_000 } };

function refused(raw: unknown): { reason: string; message: string } {
  const r = parseLiveServerEvent(typeof raw === 'string' ? raw : JSON.stringify(raw));
  if (r.ok) throw new Error(`accepted: ${JSON.stringify(raw)}`);
  return r;
}

describe('parseLiveServerEvent accepts', () => {
  it.each([
    ['session.started', started],
    ['session.output_audio.delta without timestamps (primary socket)', { type: 'session.output_audio.delta', delta: 'AAAA' }],
    ['session.input_transcript.delta', { type: 'session.input_transcript.delta', event_id: 'e', delta: 'What is', start_ms: 100, end_ms: 400 }],
    ['session.output_transcript.delta', { type: 'session.output_transcript.delta', event_id: 'e', delta: ' the', start_ms: 900, end_ms: 1000 }],
    ['session.delegation.created', { type: 'session.delegation.created', event_id: 'e', offset_ms: 5000, delegation: { id: 'del_1', target: 'responses', type: 'delegation', response_id: 'resp_1' } }],
    ['response.event with a Responses event of a new type', { type: 'response.event', event_id: 'e', delegation_id: null, event: { type: 'response.something_new' } }],
    ['session.usage.updated', { type: 'session.usage.updated', event_id: 'e', usage: { seconds: 12.5 }, context_window: { usage_ratio: 0.1 } }],
    ['session.closed', { type: 'session.closed', event_id: 'e', reason: 'expired', usage: { seconds: 3600 }, session: { id: 'live_1' } }],
    ['error', { type: 'error', event_id: 'e', error: { code: 'unknown_parameter', message: 'no', type: 'invalid_request_error', param: 'session.voice' } }],
    ['an error without its category (never dropped for that)', { type: 'error', event_id: 'e', error: { code: 'server_error', message: 'boom' } }],
    ['an acknowledgement of an append', { type: 'session.commentary.appended', event_id: 'e', start_ms: 10, end_ms: 10, client_event_id: 'evt_3' }],
    ['a sideband-only event it does not act on', { type: 'transport.dtmf.received', event_id: 'e', event: '5' }],
    ['extra fields the service adds', { ...started, conversation_id: 'conv_1' }],
  ])('%s', (_, ev) => {
    const r = parseLiveServerEvent(JSON.stringify(ev));
    expect(r.ok).toBe(true);
  });
});

describe('parseLiveServerEvent refuses', () => {
  it('a frame that is not JSON', () => {
    expect(refused('{"type": "session.started"').reason).toBe('not_json');
  });
  it('JSON that is not an object', () => {
    expect(refused('[1,2]')).toMatchObject({ reason: 'not_object', message: expect.stringContaining('array') });
    expect(refused('null').reason).toBe('not_object');
  });
  it('an object without a string type', () => {
    expect(refused({ event_id: 'e' }).reason).toBe('no_type');
    expect(refused({ type: 7 }).message).toContain('type: expected a non-empty string, got number');
  });
  it('a type the protocol does not define (a Realtime event on the Live socket)', () => {
    expect(refused({ type: 'response.output_audio.delta', delta: 'AAAA' })).toMatchObject({ reason: 'unknown_type', message: "unknown event type 'response.output_audio.delta'" });
  });
  it('audio that is not base64, naming the event and the field', () => {
    expect(refused({ type: 'session.output_audio.delta', delta: 'not base64!' }).message).toBe('session.output_audio.delta.delta: not base64 (standard alphabet, padded)');
    expect(refused({ type: 'session.output_audio.delta', delta: 'AAA' }).message).toContain('not base64');
    expect(refused({ type: 'session.output_audio.delta', delta: 42 }).message).toBe('session.output_audio.delta.delta: expected base64 string, got number');
  });
  it('fields of the wrong type', () => {
    expect(refused({ type: 'session.input_transcript.delta', event_id: 'e', delta: 'hi', start_ms: '100', end_ms: 200 }).message).toBe(
      'session.input_transcript.delta.start_ms: expected a number of ms >= 0, got string',
    );
    expect(refused({ type: 'session.output_transcript.delta', event_id: 'e', delta: null, start_ms: 1, end_ms: 2 }).message).toBe(
      'session.output_transcript.delta.delta: expected string, got null',
    );
    expect(refused({ ...started, session: { ...started.session, expires_at: -5 } }).message).toBe('session.started.session.expires_at: expected seconds >= 0, got -5');
    expect(refused({ ...started, session: { ...started.session, id: '' } }).message).toBe('session.started.session.id: expected a non-empty string');
    expect(refused({ type: 'session.usage.updated', event_id: 'e', usage: { seconds: Number.NaN } }).message).toContain('session.usage.updated.usage.seconds');
    expect(refused({ type: 'response.event', event_id: 'e', delegation_id: 5, event: { type: 'x' } }).message).toBe('response.event.delegation_id: expected string or null, got number');
  });
  it('values outside the enumeration', () => {
    expect(refused({ type: 'session.closed', event_id: 'e', reason: 'bored', usage: { seconds: 1 }, session: {} }).message).toBe(
      "session.closed.reason: expected one of close_requested|expired|content|remote_hangup|connection_lost, got 'bored'",
    );
    expect(refused({ type: 'session.delegation.created', event_id: 'e', offset_ms: 1, delegation: { id: 'd', target: 'server', type: 'delegation' } }).message).toContain(
      'session.delegation.created.delegation.target',
    );
  });
  it('a missing object', () => {
    expect(refused({ type: 'error', event_id: 'e' }).message).toBe('error.error: expected object, got undefined');
    expect(refused({ type: 'error', event_id: 'e', error: { code: 'x', message: 'm', type: 5 } }).message).toBe('error.error.type: expected string, got number');
  });
});

describe('nested Responses events', () => {
  it('reads a finished function call', () => {
    expect(functionCallOf({ type: 'response.output_item.done', item: { type: 'function_call', status: 'completed', call_id: 'call_1', name: 'end_call', arguments: '{}' } })).toEqual({
      callId: 'call_1',
      name: 'end_call',
      arguments: '{}',
    });
  });
  it('ignores other items and events', () => {
    expect(functionCallOf({ type: 'response.output_item.done', item: { type: 'web_search_call', id: 'ws_1' } })).toBeUndefined();
    expect(functionCallOf({ type: 'response.output_text.delta', delta: 'x' })).toBeUndefined();
  });
  it('names a bad field of a function call', () => {
    expect(functionCallOf({ type: 'response.output_item.done', item: { type: 'function_call', call_id: 'c', name: 7, arguments: '{}' } })).toEqual({
      problem: 'response.event.event.item.name: expected a non-empty string, got number',
    });
    expect(functionCallOf({ type: 'response.output_item.done', item: 'x' })).toEqual({ problem: 'response.event.event.item: expected object, got string' });
    expect(functionCallOf({ type: 'response.output_item.done', item: { type: 'function_call', status: 'incomplete', call_id: 'c', name: 'n', arguments: '{' } })).toHaveProperty('problem');
  });
  it('reads backend usage only when it is an object', () => {
    expect(backendUsageOf({ type: 'response.completed', response: { usage: { input_tokens: 10, output_tokens: 2 } } })).toEqual({ input_tokens: 10, output_tokens: 2 });
    expect(backendUsageOf({ type: 'response.completed', response: { usage: 'lots' } })).toBeUndefined();
    expect(backendUsageOf({ type: 'response.completed' })).toBeUndefined();
  });
  it('checks base64 strictly', () => {
    expect(base64Problem('QUJD')).toBeUndefined();
    expect(base64Problem('QUJ')).toBeDefined();
    expect(base64Problem('QU-D')).toBeDefined();
  });
});
