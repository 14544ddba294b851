import { PcmSink, PlayoutBuffer, PlayoutItemReport, type PlayoutTap } from '../../../src/audio/PlayoutBuffer';

/**
 * Test double of the native TX playout ring: bounded, monotonic indices, and a tick() that plays
 * like the clock thread does (consumes up to one frame, silence when empty).
 */
class FakeRing implements PcmSink {
  readonly queue: number[] = [];
  readonly played: number[] = [];
  silentSamples = 0;
  calls = 0;
  #w: number;
  #r: number;
  constructor(readonly capacity: number, start = 0) {
    this.#w = start;
    this.#r = start;
  }
  write(pcm: Int16Array): number {
    this.calls++;
    const n = Math.min(pcm.length, this.capacity - (this.#w - this.#r));
    for (let i = 0; i < n; i++) this.queue.push(pcm[i]);
    this.#w += n;
    return n;
  }
  clear(): number {
    this.calls++;
    const at = this.#r;
    this.queue.length = 0;
    this.#r = this.#w;
    return at;
  }
  readIndex(): number {
    this.calls++;
    return this.#r;
  }
  writeIndex(): number {
    this.calls++;
    return this.#w;
  }
  /** One clock tick: play up to `n` samples. */
  tick(n: number): void {
    const take = Math.min(n, this.queue.length);
    for (const s of this.queue.splice(0, take)) this.played.push(s);
    this.#r += take;
    this.silentSamples += n - take;
  }
}

const RATE = 8000;
const FRAME = 160; // 20 ms at 8 kHz

/** Distinct, recognisable samples: item k's n-th sample is k*1000 + n (mod int16). */
function pcm(n: number, base = 0): Int16Array {
  const a = new Int16Array(n);
  for (let i = 0; i < n; i++) a[i] = base + i;
  return a;
}

/** Run the audio clock: tick the ring, then pump, `frames` times. */
function run(ring: FakeRing, buf: PlayoutBuffer, frames: number): void {
  for (let i = 0; i < frames; i++) {
    ring.tick(FRAME);
    buf.pump();
  }
}

async function settled(p: Promise<void>): Promise<boolean> {
  let done = false;
  void p.then(() => (done = true));
  await new Promise((r) => setImmediate(r));
  return done;
}

/** A ring that also counts its silent or part-silent ticks, as the native port does. */
class CountingRing extends FakeRing {
  silentTicks = 0;
  override tick(n: number): void {
    if (this.queue.length < n) this.silentTicks++;
    super.tick(n);
  }
  silentFrames(): number {
    return this.silentTicks;
  }
}

/** A clock the test moves by hand, ms. */
function manualClock(): { now: () => number; advance: (ms: number) => void } {
  let t = 0;
  return { now: () => t, advance: (ms) => (t += ms) };
}

describe('PlayoutBuffer', () => {
  it('plays appended audio in order through ring and backlog', () => {
    const ring = new FakeRing(320);
    const buf = new PlayoutBuffer(ring, { sampleRate: RATE, maxBacklogMs: 5000 });
    const a = pcm(1000, 0);
    const b = pcm(700, 5000);
    buf.append('item_a', a);
    buf.append('item_a', pcm(300, 1000));
    buf.append('item_b', b);
    run(ring, buf, 20);
    expect(ring.played).toEqual([...a, ...pcm(300, 1000), ...b]);
    expect(buf.stats.playedSamples).toBe(2000);
    expect(buf.stats.appendedSamples).toBe(2000);
    expect(buf.stats.backlogPeakSamples).toBe(1680);
  });

  it('writes straight into the ring when nothing waits ahead', () => {
    const ring = new FakeRing(1000);
    const buf = new PlayoutBuffer(ring, { sampleRate: RATE, maxBacklogMs: 1000 });
    buf.append('item_a', pcm(400));
    expect(ring.writeIndex()).toBe(400);
    expect(buf.stats.backlogSamples).toBe(0);
  });

  it('keeps its own copy of backlogged audio', () => {
    const ring = new FakeRing(100);
    const buf = new PlayoutBuffer(ring, { sampleRate: RATE, maxBacklogMs: 1000 });
    const scratch = pcm(300, 1);
    buf.append('item_a', scratch);
    scratch.fill(-1);
    run(ring, buf, 3);
    expect(ring.played).toEqual(Array.from(pcm(300, 1)));
  });

  it('drops audio beyond maxBacklogMs and counts it, per item too', () => {
    const ring = new FakeRing(160);
    const buf = new PlayoutBuffer(ring, { sampleRate: RATE, maxBacklogMs: 100 }); // 800 samples
    buf.append('item_a', pcm(2000));
    expect(buf.stats.droppedSamples).toBe(2000 - 160 - 800);
    expect(buf.stats.backlogSamples).toBe(800);
    run(ring, buf, 10);
    expect(ring.played).toEqual(Array.from(pcm(960)));
    const report = buf.item('item_a')!;
    expect(report.droppedSamples).toBe(1040);
    expect(report.receivedMs).toBe(250);
    expect(report.playedMs).toBe(120);
  });

  it('reports on flush how much of the item was received and actually played', () => {
    const ring = new FakeRing(800);
    const buf = new PlayoutBuffer(ring, { sampleRate: RATE, maxBacklogMs: 5000 });
    buf.append('item_a', pcm(8000)); // 1 s
    run(ring, buf, 10); // 200 ms played
    const report = buf.flush();
    expect(report).toEqual({ itemId: 'item_a', prompt: false, receivedMs: 1000, playedMs: 200, flushedItemIds: ['item_a'], stoppedAt: 1600, ringDiscardedSamples: 800 });
    expect(ring.queue.length).toBe(0);
    expect(buf.stats.backlogSamples).toBe(0);
    expect(buf.stats.flushedSamples).toBe(8000 - 1600);
    run(ring, buf, 10);
    expect(ring.played.length).toBe(1600);
    expect(buf.isPlaying).toBe(false);
  });

  it('counts played audio from the ring read index only, not from elapsed time', async () => {
    const ring = new FakeRing(800);
    const buf = new PlayoutBuffer(ring, { sampleRate: RATE, maxBacklogMs: 5000 });
    buf.append('item_a', pcm(4000));
    await new Promise((r) => setTimeout(r, 30));
    buf.pump();
    expect(buf.playedMs('item_a')).toBe(0);
    ring.tick(80); // half a frame consumed by the clock thread, no pump since
    expect(buf.playedMs('item_a')).toBe(10);
    expect(buf.flush()!.playedMs).toBe(10);
  });

  it('ignores late audio of a flushed item but plays the next item', () => {
    const ring = new FakeRing(800);
    const buf = new PlayoutBuffer(ring, { sampleRate: RATE, maxBacklogMs: 5000 });
    buf.append('item_a', pcm(1600));
    run(ring, buf, 2);
    buf.flush();
    buf.append('item_a', pcm(800, 3000));
    expect(buf.stats.discardedSamples).toBe(800);
    buf.append('item_b', pcm(320, 7000));
    run(ring, buf, 4);
    expect(ring.played).toEqual([...pcm(320), ...pcm(320, 7000)]);
    expect(buf.item('item_a')!.flushed).toBe(true);
    expect(buf.item('item_b')!.flushed).toBe(false);
  });

  it('returns null from flush when nothing is playing or expected', () => {
    const ring = new FakeRing(800);
    const buf = new PlayoutBuffer(ring, { sampleRate: RATE, maxBacklogMs: 5000 });
    expect(buf.flush()).toBeNull();
    buf.append('item_a', pcm(160));
    buf.markItemDone('item_a');
    run(ring, buf, 2);
    expect(buf.flush()).toBeNull();
  });

  it('flushes an unfinished item whose received audio already all played', () => {
    const ring = new FakeRing(800);
    const buf = new PlayoutBuffer(ring, { sampleRate: RATE, maxBacklogMs: 5000 });
    buf.append('item_a', pcm(320));
    run(ring, buf, 3);
    expect(buf.flush()).toMatchObject({ itemId: 'item_a', receivedMs: 40, playedMs: 40 });
    buf.append('item_a', pcm(160));
    expect(buf.stats.discardedSamples).toBe(160);
  });

  it('flushes the item that is playing first and names the queued ones it also discarded', () => {
    const ring = new FakeRing(400);
    const buf = new PlayoutBuffer(ring, { sampleRate: RATE, maxBacklogMs: 5000 });
    buf.append('item_a', pcm(480));
    buf.markItemDone('item_a');
    buf.append('item_b', pcm(800));
    run(ring, buf, 2);
    const report = buf.flush()!;
    expect(report.itemId).toBe('item_a');
    expect(report.playedMs).toBe(40);
    expect(report.flushedItemIds).toEqual(['item_a', 'item_b']);
    expect(buf.item('item_b')).toMatchObject({ playedSamples: 0, flushedSamples: 800, flushed: true });
  });

  it('lets a greeting prompt be flushed like an item', () => {
    const ring = new FakeRing(800);
    const buf = new PlayoutBuffer(ring, { sampleRate: RATE, maxBacklogMs: 10000 });
    const id = buf.appendPrompt(pcm(16000));
    expect(id).toBe('prompt_1');
    expect(buf.appendPrompt(pcm(10), 'goodbye')).toBe('goodbye');
    run(ring, buf, 25); // 500 ms
    expect(buf.flush()).toEqual({ itemId: 'prompt_1', prompt: true, receivedMs: 2000, playedMs: 500, flushedItemIds: ['prompt_1', 'goodbye'], stoppedAt: 4000, ringDiscardedSamples: 800 });
  });

  it('keeps per-item accounting across consecutive items', () => {
    const ring = new FakeRing(480);
    const buf = new PlayoutBuffer(ring, { sampleRate: RATE, maxBacklogMs: 5000 });
    buf.append('item_a', pcm(400));
    buf.markItemDone('item_a');
    buf.append('item_b', pcm(1200));
    run(ring, buf, 5); // 800 samples
    expect(buf.played('item_a')).toBe(400);
    expect(buf.playedMs('item_a')).toBe(50);
    expect(buf.played('item_b')).toBe(400);
    expect(buf.receivedMs('item_b')).toBe(150);
    expect(buf.playedMs('unknown')).toBe(0);
    expect(buf.item('unknown')).toBeUndefined();
  });

  it('resolves whenDrained only after pump sees everything played', async () => {
    const ring = new FakeRing(320);
    const buf = new PlayoutBuffer(ring, { sampleRate: RATE, maxBacklogMs: 5000 });
    expect(await settled(buf.whenDrained())).toBe(true);
    buf.append('item_a', pcm(1000));
    const drained = buf.whenDrained();
    buf.append('item_b', pcm(400)); // appended later: not waited for
    run(ring, buf, 6); // 960 samples
    expect(await settled(drained)).toBe(false);
    ring.tick(FRAME);
    expect(await settled(drained)).toBe(false); // the ring played it, but no pump yet
    buf.pump();
    expect(await settled(drained)).toBe(true);
    expect(buf.isPlaying).toBe(true); // item_b still queued
  });

  it('resolves whenDrained when flush or close discards what was waiting', async () => {
    const ring = new FakeRing(320);
    const buf = new PlayoutBuffer(ring, { sampleRate: RATE, maxBacklogMs: 5000 });
    buf.append('item_a', pcm(1000));
    const first = buf.whenDrained();
    buf.flush();
    expect(await settled(first)).toBe(true);
    buf.append('item_b', pcm(1000));
    const second = buf.whenDrained();
    buf.close();
    expect(await settled(second)).toBe(true);
  });

  it('reports isPlaying from backlog and ring contents', () => {
    const ring = new FakeRing(320);
    const buf = new PlayoutBuffer(ring, { sampleRate: RATE, maxBacklogMs: 5000 });
    expect(buf.isPlaying).toBe(false);
    buf.append('item_a', pcm(480));
    expect(buf.isPlaying).toBe(true);
    run(ring, buf, 2);
    expect(buf.isPlaying).toBe(true);
    ring.tick(FRAME);
    expect(buf.isPlaying).toBe(false);
  });

  it('emits itemPlayed once an item marked done has played its last sample', () => {
    const ring = new FakeRing(320);
    const buf = new PlayoutBuffer(ring, { sampleRate: RATE, maxBacklogMs: 5000 });
    const seen: PlayoutItemReport[] = [];
    buf.on('itemPlayed', (r) => seen.push(r));
    buf.append('item_a', pcm(400));
    run(ring, buf, 3);
    expect(seen).toEqual([]); // not done yet
    buf.markItemDone('item_a');
    expect(seen.map((r) => [r.itemId, r.playedMs])).toEqual([['item_a', 50]]);
    buf.append('item_b', pcm(400));
    buf.markItemDone('item_b');
    run(ring, buf, 1);
    expect(seen.length).toBe(1);
    run(ring, buf, 2);
    expect(seen.map((r) => r.itemId)).toEqual(['item_a', 'item_b']);
    buf.append('item_c', pcm(400));
    buf.markItemDone('item_c');
    buf.flush();
    run(ring, buf, 3);
    expect(seen.length).toBe(2);
  });

  it('counts an underrun when an unfinished item goes on after running dry, not when it ends', () => {
    const ring = new FakeRing(800);
    const buf = new PlayoutBuffer(ring, { sampleRate: RATE, maxBacklogMs: 5000 });
    buf.append('item_a', pcm(320));
    // 2 frames of audio: the pump after the 2nd tick already finds the ring empty (the 3rd tick
    // will be silence), and so do the next 3.
    run(ring, buf, 5);
    expect(buf.stats.underruns).toBe(0); // not yet known to be a gap: the item may be over
    buf.append('item_a', pcm(160));
    expect(buf.stats.underruns).toBe(1);
    expect(buf.stats.starvedPumps).toBe(4);
    run(ring, buf, 3);
    // Dry again, then the item turns out to be over: silence after its end, not a gap.
    buf.markItemDone('item_a');
    run(ring, buf, 5);
    expect(buf.stats.underruns).toBe(1);
    expect(buf.stats.starvedPumps).toBe(4);
  });

  it('queues the tail given with markItemDone after the item\'s audio, but drops it once the item ran dry', () => {
    const ring = new CountingRing(800);
    const buf = new PlayoutBuffer(ring, { sampleRate: RATE, maxBacklogMs: 5000 });
    buf.append('item_a', pcm(320));
    run(ring, buf, 1);
    buf.markItemDone('item_a', pcm(7, 320));
    run(ring, buf, 2);
    expect(buf.item('item_a')).toMatchObject({ receivedSamples: 327, playedSamples: 327, done: true });
    buf.append('item_b', pcm(320));
    run(ring, buf, 5); // dry for 3 ticks: the end of the item is known only later
    buf.markItemDone('item_b', pcm(7, 320)); // alone after silence it would be a click
    run(ring, buf, 1);
    expect(buf.item('item_b')).toMatchObject({ receivedSamples: 320, playedSamples: 320, done: true });
    expect(buf.stats).toMatchObject({ underruns: 0, discardedSamples: 7 });
  });

  it('does not count a ring that ran dry just before the next audio came', () => {
    const ring = new CountingRing(800);
    const buf = new PlayoutBuffer(ring, { sampleRate: RATE, maxBacklogMs: 5000 });
    buf.append('item_a', pcm(320));
    run(ring, buf, 2); // the pump after the 2nd tick finds the ring empty
    buf.append('item_a', pcm(320)); // in time for the 3rd tick: nothing was heard missing
    run(ring, buf, 2);
    expect(ring.silentTicks).toBe(0);
    expect(buf.stats.underruns).toBe(0);
    run(ring, buf, 2); // two ticks of silence this time
    buf.append('item_a', pcm(160));
    expect(buf.stats).toMatchObject({ underruns: 1, underrunFrames: 2 });
  });

  it('counts a late refill when the ring ran dry while the backlog held audio', () => {
    const ring = new FakeRing(320);
    const buf = new PlayoutBuffer(ring, { sampleRate: RATE, maxBacklogMs: 5000 });
    buf.append('item_a', pcm(1000));
    ring.tick(FRAME);
    ring.tick(FRAME); // two ticks without a pump empty the ring
    buf.pump();
    expect(buf.stats.lateRefills).toBe(1);
    run(ring, buf, 2);
    expect(buf.stats.lateRefills).toBe(1);
  });

  it('makes no sink calls on pump() when idle', () => {
    const ring = new FakeRing(320);
    const buf = new PlayoutBuffer(ring, { sampleRate: RATE, maxBacklogMs: 5000 });
    buf.append('item_a', pcm(160));
    buf.markItemDone('item_a');
    run(ring, buf, 2);
    const calls = ring.calls;
    for (let i = 0; i < 100; i++) buf.pump();
    expect(ring.calls).toBe(calls);
  });

  it('works on a ring whose indices did not start at zero', () => {
    const ring = new FakeRing(320, 123456);
    const buf = new PlayoutBuffer(ring, { sampleRate: RATE, maxBacklogMs: 5000 });
    buf.append('item_a', pcm(500));
    run(ring, buf, 2);
    expect(buf.played('item_a')).toBe(320);
  });

  it('keeps a bounded number of items for queries', () => {
    const ring = new FakeRing(100000);
    const buf = new PlayoutBuffer(ring, { sampleRate: RATE, maxBacklogMs: 5000, maxTrackedItems: 4 });
    for (let i = 0; i < 10; i++) {
      buf.append(`item_${i}`, pcm(10));
      buf.markItemDone(`item_${i}`);
    }
    expect(buf.item('item_0')).toBeUndefined();
    expect(buf.item('item_5')).toBeUndefined();
    expect(buf.item('item_9')!.receivedSamples).toBe(10);
    expect(buf.item('item_6')!.receivedSamples).toBe(10);
  });

  it('discards input after close(), which is idempotent', () => {
    const ring = new FakeRing(320);
    const buf = new PlayoutBuffer(ring, { sampleRate: RATE, maxBacklogMs: 5000 });
    buf.close();
    buf.close();
    expect(buf.closed).toBe(true);
    buf.append('item_a', pcm(100));
    expect(buf.stats.discardedSamples).toBe(100);
    expect(ring.writeIndex()).toBe(0);
    expect(buf.flush()).toBeNull();
    expect(buf.isPlaying).toBe(false);
  });

  it('owns the write index: starts at the ring\'s and follows every write, direct or from the backlog', () => {
    const ring = new FakeRing(320, 5000);
    const buf = new PlayoutBuffer(ring, { sampleRate: RATE, maxBacklogMs: 5000 });
    expect(buf.writeIndex).toBe(5000);
    buf.append('item_a', pcm(500));
    expect(buf.writeIndex).toBe(5320);
    run(ring, buf, 1);
    expect(buf.writeIndex).toBe(ring.writeIndex());
    buf.flush();
    buf.append('item_b', pcm(100));
    expect(buf.writeIndex).toBe(ring.writeIndex());
  });

  it('tells its tap where each write landed, how far the ring played and where a flush stopped it', () => {
    const events: string[] = [];
    const tap: PlayoutTap = {
      written: (start, p) => events.push(`w${start}+${p.length}:${p[0]}`),
      played: (read) => events.push(`p${read}`),
      cleared: (at) => events.push(`c${at}`),
    };
    const ring = new FakeRing(320, 1000);
    const buf = new PlayoutBuffer(ring, { sampleRate: RATE, maxBacklogMs: 5000, tap });
    buf.append('item_a', pcm(500, 7));
    run(ring, buf, 1);
    buf.flush();
    buf.append('item_b', pcm(10, 3));
    expect(events).toEqual(['w1000+320:7', 'p1160', 'w1320+160:327', 'c1160', 'w1480+10:3']);
  });

  it('rejects invalid options', () => {
    expect(() => new PlayoutBuffer(new FakeRing(10), { sampleRate: 0, maxBacklogMs: 10 })).toThrow(RangeError);
    expect(() => new PlayoutBuffer(new FakeRing(10), { sampleRate: 8000, maxBacklogMs: -1 })).toThrow(RangeError);
    expect(() => new PlayoutBuffer(new FakeRing(10), { sampleRate: 8000, maxBacklogMs: 10, prebufferMs: -1 })).toThrow(RangeError);
    expect(() => new PlayoutBuffer(new FakeRing(10), { sampleRate: 8000, maxBacklogMs: 10, prebufferMs: Number.NaN })).toThrow(RangeError);
  });

  describe('prebuffer (audio paced near real time)', () => {
    const PRE_MS = 200;
    const PRE = (PRE_MS * RATE) / 1000; // 1600 samples
    const make = (capacity = 16000): { ring: CountingRing; buf: PlayoutBuffer; clock: ReturnType<typeof manualClock> } => {
      const ring = new CountingRing(capacity);
      const clock = manualClock();
      const buf = new PlayoutBuffer(ring, { sampleRate: RATE, maxBacklogMs: 5000, prebufferMs: PRE_MS, now: clock.now });
      return { ring, buf, clock };
    };
    /** Ticks of 20 ms on the clock too. */
    const runTimed = (t: ReturnType<typeof make>, frames: number): void => {
      for (let i = 0; i < frames; i++) {
        t.clock.advance(20);
        t.ring.tick(FRAME);
        t.buf.pump();
      }
    };

    it('starts a reply only once prebufferMs of it is queued', () => {
      const t = make();
      t.buf.append('item_a', pcm(800));
      expect(t.buf.writeIndex).toBe(0);
      runTimed(t, 5); // 100 ms: still gathering
      expect(t.ring.played.length).toBe(0);
      t.buf.append('item_a', pcm(800, 800));
      expect(t.buf.writeIndex).toBe(PRE);
      runTimed(t, 10);
      expect(t.ring.played).toEqual(Array.from(pcm(PRE)));
      expect(t.buf.stats).toMatchObject({ prebuffers: 1, prebufferTimeouts: 0, underruns: 0 });
    });

    it('lets audio that comes ahead of real time through at once, uncounted', () => {
      const t = make();
      t.buf.append('item_a', pcm(12000));
      expect(t.buf.writeIndex).toBe(12000);
      expect(t.buf.stats.prebuffers).toBe(0);
    });

    it('plays what it has once prebufferMs has passed since the first audio', () => {
      const t = make();
      t.buf.append('item_a', pcm(400));
      runTimed(t, 9); // 180 ms
      expect(t.buf.writeIndex).toBe(0);
      runTimed(t, 1); // 200 ms
      expect(t.buf.writeIndex).toBe(400);
      expect(t.buf.stats).toMatchObject({ prebuffers: 1, prebufferTimeouts: 1 });
    });

    it('plays at once a reply marked done before the prebuffer filled', () => {
      const t = make();
      t.buf.append('item_a', pcm(400));
      t.buf.markItemDone('item_a');
      expect(t.buf.writeIndex).toBe(400);
      expect(t.buf.stats.prebufferTimeouts).toBe(0);
    });

    it('does not hold audio that follows audio still playing, nor a prompt', () => {
      const t = make();
      t.buf.appendPrompt(pcm(400));
      expect(t.buf.writeIndex).toBe(400);
      t.buf.append('item_a', pcm(400)); // the prompt still plays: item_a follows it without a wait
      expect(t.buf.writeIndex).toBe(800);
      expect(t.buf.stats.prebuffers).toBe(0);
    });

    it('waits again after an underrun inside the reply, and counts it', () => {
      const t = make();
      t.buf.append('item_a', pcm(PRE));
      runTimed(t, 12); // 1600 samples play in 10 ticks, then 2 silent
      t.buf.append('item_a', pcm(400));
      expect(t.buf.stats).toMatchObject({ underruns: 1, underrunFrames: 2, rebuffers: 1 });
      expect(t.buf.writeIndex).toBe(PRE);
      t.buf.append('item_a', pcm(1200));
      expect(t.buf.writeIndex).toBe(2 * PRE);
    });

    it('drops a held start on flush and reports it', () => {
      const t = make();
      t.buf.append('item_a', pcm(400));
      const report = t.buf.flush();
      expect(report).toMatchObject({ itemId: 'item_a', playedMs: 0, receivedMs: 50, ringDiscardedSamples: 0 });
      expect(t.buf.stats.flushedSamples).toBe(400);
      t.buf.append('item_b', pcm(400));
      expect(t.buf.writeIndex).toBe(0); // the next reply gathers its own start
      t.buf.append('item_b', pcm(1200));
      runTimed(t, 1);
      expect(t.ring.played).toEqual(Array.from(pcm(FRAME)));
    });

    it('plays a real-time source with late deltas without a gap, which it cannot without a prebuffer', () => {
      // 100 ms deltas due every 100 ms, each late by up to 80 ms (never early: at real time on
      // average at best); the clock ticks every 20 ms.
      const lateMs = [0, 60, 20, 80, 0, 40, 80, 20, 60, 0, 80, 40, 0, 80, 60];
      const play = (prebufferMs: number): { underruns: number; silentInside: number } => {
        const ring = new CountingRing(16000);
        const clock = manualClock();
        const buf = new PlayoutBuffer(ring, { sampleRate: RATE, maxBacklogMs: 5000, prebufferMs, now: clock.now });
        const due = lateMs.map((l, k) => k * 100 + l);
        let sent = 0;
        let started = false;
        let silentInside = 0;
        for (let ms = 0; ms <= 3000; ms += 20) {
          while (sent < due.length && due[sent] <= ms) buf.append('item_a', pcm(800, (sent++ * 800) % 30000));
          if (sent === due.length) buf.markItemDone('item_a');
          const before = ring.played.length;
          clock.advance(20);
          ring.tick(FRAME);
          buf.pump();
          if (ring.played.length > 0) started = true;
          if (started && ring.played.length - before < FRAME && ring.played.length < 800 * due.length) silentInside++;
        }
        expect(ring.played.length).toBe(800 * due.length);
        return { underruns: buf.stats.underruns, silentInside };
      };
      expect(play(PRE_MS)).toEqual({ underruns: 0, silentInside: 0 });
      const bare = play(0);
      expect(bare.underruns).toBeGreaterThan(0);
      expect(bare.silentInside).toBeGreaterThan(0);
    });
  });
});
