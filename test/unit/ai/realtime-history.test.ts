import type { ClientEvent } from '../../../src/ai/events';
import { ConversationHistory, type ConversationHistoryLimits } from '../../../src/ai/realtime/ConversationHistory';
import { emptySessionStats } from '../../../src/ai/types';

function link(): { generation: number; sent: ClientEvent[]; send(ev: ClientEvent): string } {
  const l = {
    generation: 1,
    sent: [] as ClientEvent[],
    send(ev: ClientEvent): string {
      l.sent.push(ev);
      return `evt_${l.sent.length}`;
    },
  };
  return l;
}

/** What the re-seed sent, one line per item. */
function items(sent: ClientEvent[]): string[] {
  return sent.map((e) => {
    const item = (e as Extract<ClientEvent, { type: 'conversation.item.create' }>).item;
    if (item.type === 'message') return `${item.role}: ${item.content[0].text}`;
    if (item.type === 'function_call') return `call ${item.name}(${item.arguments})`;
    return item.type === 'function_call_output' ? `output ${item.output}` : `approval ${item.approve}`;
  });
}

function history(limits: Partial<ConversationHistoryLimits> = {}) {
  const stats = emptySessionStats();
  const h = new ConversationHistory({ historyMaxItems: 200, reseedMaxItems: 40, reseedMaxChars: 16_000, ...limits }, 8, stats);
  return { h, stats };
}

describe('ConversationHistory', () => {
  it('keeps items in order, once per key, and drops (counting) the oldest over the cap', () => {
    const { h, stats } = history({ historyMaxItems: 2 });
    h.remember('a', 'user').text = 'one';
    h.remember('a', 'user').text += ' more';
    h.remember('b', 'assistant').text = 'two';
    h.remember('c', 'user').text = 'three';
    expect(stats.historyEvicted).toBe(1);
    const l = link();
    expect(h.reseed(l)).toBe(2);
    expect(items(l.sent)).toEqual(['assistant: two', 'user: three']);
  });

  it('re-seeds the most recent items within the item and character caps, oldest first, skipping empty ones', () => {
    const { h } = history({ reseedMaxItems: 3, reseedMaxChars: 12 });
    h.addLocal('system', 'a long system note');
    h.addLocal('user', 'abcd');
    h.remember('x', 'assistant');
    h.addLocal('user', 'efgh');
    h.addLocal('user', 'ijkl');
    const l = link();
    expect(h.reseed(l)).toBe(3);
    expect(items(l.sent)).toEqual(['user: abcd', 'user: efgh', 'user: ijkl']);
  });

  it('re-seeds an interrupted assistant item only as far as the caller heard it, cut at a word', () => {
    const { h } = history();
    const e = h.remember('item_a', 'assistant');
    e.text = 'Our opening hours are nine to five on weekdays';
    e.audioBytes = 8 * 1000;
    h.heard('item_a', 500);
    h.heard('item_unknown', 10);
    const l = link();
    h.reseed(l);
    expect(items(l.sent)).toEqual(['assistant: Our opening hours are…']);
  });

  it('re-seeds a finished tool call as its pair, and a running one not at all', () => {
    const { h } = history();
    h.recordToolCall('call_1', 'lookup', '{"q":1}', 1);
    h.recordToolCall('call_2', 'slow', '{}', 1);
    h.setToolOutput('call_1', '{"ok":true}');
    const l = link();
    l.generation = 2;
    expect(h.reseed(l)).toBe(1);
    expect(items(l.sent)).toEqual(['call lookup({"q":1})', 'output {"ok":true}']);
  });

  it('sends a tool pair once per server session, and never the pair of the session that asked', () => {
    const { h } = history();
    h.recordToolCall('call_1', 'lookup', '{}', 1);
    const l = link();
    expect(h.sendToolPair('call_1', l)).toBe(false);
    h.setToolOutput('call_1', 'done');
    expect(h.sendToolPair('call_1', l)).toBe(false);
    l.generation = 2;
    expect(h.sendToolPair('call_1', l)).toBe(true);
    expect(h.sendToolPair('call_1', l)).toBe(false);
    expect(h.sendToolPair('call_unknown', l)).toBe(false);
    expect(l.sent).toHaveLength(2);
  });

  it('holds text items before the first session (at most 32, the oldest dropped and counted)', () => {
    const { h, stats } = history();
    for (let i = 0; i < 34; i++) h.hold(h.addLocal('user', `digit ${i}`));
    const held = h.takeHeld();
    expect(held).toHaveLength(32);
    expect(held[0].text).toBe('digit 2');
    expect(stats.historyEvicted).toBe(2);
    expect(h.takeHeld()).toEqual([]);
    h.hold(h.addLocal('user', 'late'));
    h.dropHeld();
    expect(h.takeHeld()).toEqual([]);
  });

  it('knows only the items the current server session announced', () => {
    const { h } = history();
    h.sawItem('item_1');
    h.sawItem(undefined);
    h.sawItem('');
    expect(h.inServerSession('item_1')).toBe(true);
    expect(h.inServerSession('')).toBe(false);
    h.newServerSession();
    expect(h.inServerSession('item_1')).toBe(false);
  });

  it('sends user, system and assistant text as the item types the server takes', () => {
    const { h } = history();
    const l = link();
    h.send(h.addLocal('system', 'note'), l);
    h.send(h.addLocal('user', '1 2 3'), l);
    const a = h.remember('item_a', 'assistant');
    h.send(a, l, 'said');
    expect(l.sent).toEqual([
      { type: 'conversation.item.create', item: { type: 'message', role: 'system', content: [{ type: 'input_text', text: 'note' }] } },
      { type: 'conversation.item.create', item: { type: 'message', role: 'user', content: [{ type: 'input_text', text: '1 2 3' }] } },
      { type: 'conversation.item.create', item: { type: 'message', role: 'assistant', content: [{ type: 'output_text', text: 'said' }] } },
    ]);
  });
});
