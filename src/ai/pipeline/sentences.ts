/**
 * Cuts a reply streamed as text deltas into sentences as soon as each one is complete, so the first
 * sentence is spoken while the model still writes the rest. A sentence ends at `.`, `!`, `?`, `…`
 * or their full-width forms followed by white space, or at a line break; very short pieces ("Dr.",
 * "1.") wait to join the next, and a run-on stretch is cut at a comma or a space once it is long.
 */
const END_RE = /[.!?…]["')\]]*\s|[。！？][」』"')\]]*|\n+/g;

export class SentenceSplitter {
  #buf = '';

  constructor(
    /** Shorter pieces join the next sentence. */
    readonly minChars = 12,
    /** Longer stretches are cut at the last comma (or space) before this. */
    readonly maxChars = 220,
  ) {}

  /** Add a delta; returns the sentences it completed, in order (trimmed, never empty). */
  push(delta: string): string[] {
    this.#buf += delta;
    const out: string[] = [];
    for (;;) {
      const cut = this.#cutPoint();
      if (cut === undefined) break;
      const s = this.#buf.slice(0, cut).trim();
      this.#buf = this.#buf.slice(cut);
      if (s) out.push(s);
    }
    return out;
  }

  /** The rest, at the end of the reply ('' when nothing is left). */
  flush(): string {
    const s = this.#buf.trim();
    this.#buf = '';
    return s;
  }

  #cutPoint(): number | undefined {
    END_RE.lastIndex = 0;
    let m: RegExpExecArray | null;
    while ((m = END_RE.exec(this.#buf)) !== null) {
      const end = m.index + m[0].length;
      if (this.#buf.slice(0, end).trim().length >= this.minChars) return end;
    }
    if (this.#buf.length < this.maxChars) return undefined;
    const head = this.#buf.slice(0, this.maxChars);
    const comma = Math.max(head.lastIndexOf(', '), head.lastIndexOf('; '));
    if (comma >= this.minChars) return comma + 2;
    const space = head.lastIndexOf(' ');
    return space >= this.minChars ? space + 1 : this.maxChars;
  }
}
