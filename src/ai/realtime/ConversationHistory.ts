/**
 * The conversation of one Realtime call as this side keeps it, so a new server session (after a
 * reconnect or a rotation) can be re-seeded with it: caller and assistant transcripts, text items
 * added locally and tool calls with their outputs, oldest first, at most `historyMaxItems` of them (the
 * oldest are dropped and counted in `historyEvicted`). An interrupted assistant item is replayed
 * only as far as the caller heard it.
 *
 * It also keeps the truncation bookkeeping of the current server session (the item ids it has
 * announced: a truncate may go only to those) and the text items accepted before the first server
 * session was ready.
 */
import type { WireNewItem } from '../events';
import type { AiSessionOptions, AiSessionStats } from '../types';
import type { ServerLink } from './wire';

/** One item of the conversation. */
export interface HistoryEntry {
  key: string;
  role: 'user' | 'assistant' | 'system' | 'tool';
  text: string;
  /** Decoded output audio bytes received for this (assistant) item. */
  audioBytes: number;
  /** Set by heard(): how much of the item the caller heard. */
  heardMs?: number;
  /** A tool call (role 'tool'): what the model asked for and, once it finished, the output. */
  call?: { callId: string; name: string; arguments: string; output?: string };
  /** Generation of the server session this tool call's pair was last sent to. */
  sentGeneration?: number;
}

/** Bounds of a ConversationHistory: the session's own options (resolved; historyMaxItems at least 1). */
export type ConversationHistoryLimits = Required<Pick<AiSessionOptions, 'historyMaxItems' | 'reseedMaxItems' | 'reseedMaxChars'>>;

/** Item ids of one server session remembered for truncate() at most. */
const SESSION_ITEMS_CAP = 4096;
/** Text items accepted before the session is ready. */
const UNSENT_TEXT_CAP = 32;

/** History key of a tool call. */
const toolKey = (callId: string): string => `tool_${callId}`;

/** The kept conversation of one call (see the file header). */
export class ConversationHistory {
  readonly #limits: ConversationHistoryLimits;
  /** Bytes per ms of the output audio, to turn an assistant item's audio into ms. */
  readonly #outputBytesPerMs: number;
  readonly #stats: AiSessionStats;
  readonly #entries = new Map<string, HistoryEntry>();
  /** Item ids the current server session knows (cleared when a new one opens): truncate only these. */
  readonly #serverItems = new Set<string>();
  #unsent: HistoryEntry[] = [];
  #localSeq = 0;

  /** An empty history; evictions are counted in `stats.historyEvicted`. */
  constructor(limits: ConversationHistoryLimits, outputBytesPerMs: number, stats: AiSessionStats) {
    this.#limits = limits;
    this.#outputBytesPerMs = outputBytesPerMs;
    this.#stats = stats;
  }

  /** The entry for `key`, created (last, evicting the oldest over the cap) when new. */
  remember(key: string, role: HistoryEntry['role']): HistoryEntry {
    let e = this.#entries.get(key);
    if (!e) {
      e = { key, role, text: '', audioBytes: 0 };
      this.#entries.set(key, e);
      if (this.#entries.size > this.#limits.historyMaxItems) {
        this.#entries.delete(this.#entries.keys().next().value as string);
        this.#stats.historyEvicted += 1;
      }
    }
    return e;
  }

  /** A text item added on this side (DTMF digits, a system note). */
  addLocal(role: 'user' | 'system', text: string): HistoryEntry {
    const entry = this.remember(`local_${++this.#localSeq}`, role);
    entry.text = text;
    return entry;
  }

  /** Note how much of an item the caller heard (a truncate); an item not kept is ignored. */
  heard(itemId: string, ms: number): void {
    const entry = this.#entries.get(itemId);
    if (entry) entry.heardMs = ms;
  }

  /** Keep a tool call the model made in the current server session (its pair counts as sent there). */
  recordToolCall(callId: string, name: string, args: string, generation: number): HistoryEntry {
    const entry = this.remember(toolKey(callId), 'tool');
    entry.call = { callId, name, arguments: args };
    entry.sentGeneration = generation;
    return entry;
  }

  /** Keep the output of a finished tool call. */
  setToolOutput(callId: string, output: string): void {
    const e = this.#entries.get(toolKey(callId));
    if (e?.call) e.call.output = output;
  }

  /** Send a finished tool call's pair to the current server session unless it has it; false when not sent. */
  sendToolPair(callId: string, link: ServerLink): boolean {
    const e = this.#entries.get(toolKey(callId));
    return e !== undefined && this.#sendPair(e, link);
  }

  // -------------------------------------------------------------------------------------------------
  // Text items before the first server session

  /** Hold a text item until the session is ready (the oldest is dropped and counted over the cap). */
  hold(entry: HistoryEntry): void {
    if (this.#unsent.length >= UNSENT_TEXT_CAP) {
      this.#unsent.shift();
      this.#stats.historyEvicted += 1;
    }
    this.#unsent.push(entry);
  }

  /** Take the held text items, oldest first. */
  takeHeld(): HistoryEntry[] {
    return this.#unsent.splice(0);
  }

  /** Forget the held text items (a re-seed has sent the history they belong to). */
  dropHeld(): void {
    this.#unsent = [];
  }

  // -------------------------------------------------------------------------------------------------
  // Items of the current server session

  /** A new server session opened: it knows none of the items seen so far. */
  newServerSession(): void {
    this.#serverItems.clear();
  }

  /** Note an item id the current server session has told us about (bounded). */
  sawItem(id: unknown): void {
    if (typeof id !== 'string' || id === '') return;
    this.#serverItems.add(id);
    if (this.#serverItems.size > SESSION_ITEMS_CAP) this.#serverItems.delete(this.#serverItems.values().next().value as string);
  }

  /** Whether the current server session has announced this item (so it may be truncated there). */
  inServerSession(itemId: string): boolean {
    return this.#serverItems.has(itemId);
  }

  // -------------------------------------------------------------------------------------------------
  // Sending

  /** Send an entry as a conversation item (a tool call as its pair); false when nothing was sent. */
  send(e: HistoryEntry, link: ServerLink, text: string = e.text): boolean {
    if (e.role === 'tool') return this.#sendPair(e, link);
    const item: WireNewItem =
      e.role === 'assistant'
        ? { type: 'message', role: 'assistant', content: [{ type: 'output_text', text }] }
        : { type: 'message', role: e.role, content: [{ type: 'input_text', text }] };
    return link.send({ type: 'conversation.item.create', item }) !== undefined;
  }

  /**
   * Replay the conversation into a new server session as text items (tool calls as their pairs),
   * oldest first, the most recent within the item and character caps. Returns the items sent.
   */
  reseed(link: ServerLink): number {
    const picked: { entry: HistoryEntry; text: string }[] = [];
    let chars = 0;
    const entries = [...this.#entries.values()];
    for (let i = entries.length - 1; i >= 0 && picked.length < this.#limits.reseedMaxItems; i--) {
      const e = entries[i];
      // A finished tool call goes back as its pair (a running one is carried over when it finishes).
      const text = e.role === 'tool' ? (e.call?.output !== undefined ? `${e.call.arguments}${e.call.output}` : '') : this.#heardText(e).trim();
      if (text === '') continue;
      if (chars + text.length > this.#limits.reseedMaxChars) break;
      chars += text.length;
      picked.push({ entry: e, text });
    }
    picked.reverse();
    let sent = 0;
    for (const p of picked) if (this.send(p.entry, link, p.text)) sent += 1;
    return sent;
  }

  /** Send a finished tool call as its pair of items (function_call, function_call_output), once per server session. */
  #sendPair(e: HistoryEntry, link: ServerLink): boolean {
    const c = e.call;
    if (!c || c.output === undefined || e.sentGeneration === link.generation) return false;
    const a = link.send({ type: 'conversation.item.create', item: { type: 'function_call', call_id: c.callId, name: c.name, arguments: c.arguments } });
    const b = link.send({ type: 'conversation.item.create', item: { type: 'function_call_output', call_id: c.callId, output: c.output } });
    if (a === undefined || b === undefined) return false;
    e.sentGeneration = link.generation;
    return true;
  }

  /** An interrupted assistant item is replayed only as far as the caller heard it (by audio share). */
  #heardText(e: HistoryEntry): string {
    if (e.role !== 'assistant' || e.heardMs === undefined || e.audioBytes === 0) return e.text;
    const receivedMs = e.audioBytes / this.#outputBytesPerMs;
    const share = receivedMs > 0 ? e.heardMs / receivedMs : 1;
    if (share >= 1) return e.text;
    let cut = Math.floor(e.text.length * share);
    const space = e.text.lastIndexOf(' ', cut);
    if (space > 0) cut = space;
    return cut > 0 ? `${e.text.slice(0, cut).trimEnd()}…` : '';
  }
}
