import { isUnknownServerEvent, parseServerEvent, type ServerEvent } from '../../../src/ai/events';

function known(raw: unknown): ServerEvent {
  const ev = parseServerEvent(typeof raw === 'string' ? raw : JSON.stringify(raw));
  if (isUnknownServerEvent(ev)) throw new Error(`expected a known event, got ${ev.reason}: ${ev.detail}`);
  return ev;
}

describe('parseServerEvent', () => {
  it('parses a GA output audio delta with its fields', () => {
    const ev = known({ type: 'response.output_audio.delta', event_id: 'e1', response_id: 'resp_1', item_id: 'item_1', output_index: 0, content_index: 0, delta: 'AAA=' });
    expect(ev.type).toBe('response.output_audio.delta');
    if (ev.type !== 'response.output_audio.delta') return;
    expect(ev.delta).toBe('AAA=');
    expect(ev.item_id).toBe('item_1');
    expect(ev.legacy_type).toBeUndefined();
  });

  it.each([
    ['response.audio.delta', 'response.output_audio.delta', { response_id: 'r', item_id: 'i', delta: 'AA==' }],
    ['response.audio.done', 'response.output_audio.done', { response_id: 'r', item_id: 'i' }],
    ['response.audio_transcript.delta', 'response.output_audio_transcript.delta', { response_id: 'r', item_id: 'i', delta: 'he' }],
    ['response.audio_transcript.done', 'response.output_audio_transcript.done', { response_id: 'r', item_id: 'i', transcript: 'hello' }],
    ['response.text.delta', 'response.output_text.delta', { response_id: 'r', item_id: 'i', delta: 'he' }],
    ['response.text.done', 'response.output_text.done', { response_id: 'r', item_id: 'i', text: 'hello' }],
    ['conversation.item.created', 'conversation.item.added', { item: { id: 'i', type: 'message', role: 'user' } }],
  ])('normalises beta %s to GA %s', (beta, ga, fields) => {
    const ev = known({ type: beta, ...fields });
    expect(ev.type).toBe(ga);
    expect(ev.legacy_type).toBe(beta);
  });

  it('returns a typed malformed_json failure instead of throwing', () => {
    const ev = parseServerEvent('{"type": "response.done", ');
    expect(isUnknownServerEvent(ev)).toBe(true);
    expect(ev).toMatchObject({ type: 'unknown', reason: 'malformed_json', rawType: undefined });
  });

  it('treats a non-object JSON frame as malformed', () => {
    expect(parseServerEvent('[1,2]')).toMatchObject({ type: 'unknown', reason: 'malformed_json' });
    expect(parseServerEvent('null')).toMatchObject({ type: 'unknown', reason: 'malformed_json' });
  });

  it('reports an unknown event type with its raw name', () => {
    expect(parseServerEvent(JSON.stringify({ type: 'conversation.item.input_audio_transcription.segment' }))).toMatchObject({
      type: 'unknown',
      reason: 'unknown_type',
      rawType: 'conversation.item.input_audio_transcription.segment',
    });
  });

  it('parses the MCP events, and names the field a malformed one lacks', () => {
    for (const type of ['mcp_list_tools.in_progress', 'mcp_list_tools.completed', 'mcp_list_tools.failed', 'response.mcp_call.in_progress', 'response.mcp_call.completed', 'response.mcp_call.failed']) {
      expect(parseServerEvent(JSON.stringify({ type, item_id: 'mcp_1' }))).toMatchObject({ type, item_id: 'mcp_1' });
      const bad = parseServerEvent(JSON.stringify({ type }));
      expect(bad).toMatchObject({ type: 'unknown', reason: 'invalid_fields', rawType: type });
      if (isUnknownServerEvent(bad)) expect(bad.detail).toContain('item_id');
    }
    expect(parseServerEvent(JSON.stringify({ type: 'response.mcp_call_arguments.done', item_id: 'mcp_1', arguments: '{}' }))).toMatchObject({ arguments: '{}' });
    expect(parseServerEvent(JSON.stringify({ type: 'response.mcp_call_arguments.delta', item_id: 'mcp_1', delta: 7 }))).toMatchObject({ reason: 'invalid_fields' });
  });

  it('rejects a known event missing a field we rely on, naming the field', () => {
    const ev = parseServerEvent(JSON.stringify({ type: 'response.output_audio.delta', response_id: 'r', item_id: 'i' }));
    expect(ev).toMatchObject({ type: 'unknown', reason: 'invalid_fields' });
    if (isUnknownServerEvent(ev)) expect(ev.detail).toContain('delta');
  });

  it('rejects a field of the wrong type', () => {
    const ev = parseServerEvent(JSON.stringify({ type: 'input_audio_buffer.speech_started', item_id: 'i', audio_start_ms: '120' }));
    expect(ev).toMatchObject({ type: 'unknown', reason: 'invalid_fields' });
  });

  it('rejects response.done without a response id', () => {
    expect(parseServerEvent(JSON.stringify({ type: 'response.done', response: { status: 'completed' } }))).toMatchObject({ reason: 'invalid_fields' });
  });

  it('rejects a frame without a type', () => {
    expect(parseServerEvent(JSON.stringify({ event_id: 'x' }))).toMatchObject({ type: 'unknown', reason: 'invalid_fields' });
  });

  it('keeps an error event and fills a missing message', () => {
    const ev = known({ type: 'error', event_id: 'e', error: { type: 'invalid_request_error', code: 'session_expired', event_id: 'evt_3' } });
    if (ev.type !== 'error') throw new Error('not an error');
    expect(ev.error.code).toBe('session_expired');
    expect(ev.error.message).toBe('');
    expect(ev.error.event_id).toBe('evt_3');
  });

  it('parses response.done with usage and status details', () => {
    const ev = known({
      type: 'response.done',
      response: { id: 'resp_9', status: 'cancelled', status_details: { type: 'cancelled', reason: 'turn_detected' }, usage: { total_tokens: 10 } },
    });
    if (ev.type !== 'response.done') throw new Error('not response.done');
    expect(ev.response.status_details?.reason).toBe('turn_detected');
  });
});
