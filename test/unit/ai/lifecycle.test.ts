import { silentLogger } from '../../../src/logging/logger';
import { AiSessionError, InvalidStateError } from '../../../src/util/errors';
import { notSent, SessionLifecycle, type SessionEnd } from '../../../src/ai/SessionLifecycle';
import { EchoSession } from '../../../src/ai/EchoBackend';
import { RealtimeSession } from '../../../src/ai/RealtimeSession';
import type { AiSessionOptions, AiSessionState } from '../../../src/ai/types';

/** A session with nothing behind it: every lifecycle step is a public method. */
class Bare extends SessionLifecycle {
  readonly released: [SessionEnd, AiSessionError | undefined][] = [];
  onRelease: (() => void) | undefined;

  constructor() {
    super(silentLogger());
  }

  start(): void {
    this.beginStart();
  }

  ready(): void {
    this.setState({ name: 'ready' });
  }

  reconnecting(reason: string): void {
    this.setState({ name: 'reconnecting', reason });
  }

  lose(err: AiSessionError): void {
    this.die(err);
  }

  startFailed(err: AiSessionError): void {
    this.failStart(err, 'start_failed');
  }

  whenSettled(): Promise<void> {
    return this.settled();
  }

  get isEnding(): boolean {
    return this.ending;
  }

  protected release(end: SessionEnd, error?: AiSessionError): void {
    this.released.push([end, error]);
    this.onRelease?.();
  }
}

function record(s: SessionLifecycle): { states: string[]; events: string[] } {
  const states: string[] = [];
  const events: string[] = [];
  s.on('stateChange', (next: AiSessionState, prev: AiSessionState) => states.push(`${prev.name}->${next.name}`));
  s.on('close', () => events.push('close'));
  s.on('died', (err) => events.push(`died:${err.aiCode}`));
  return { states, events };
}

describe('SessionLifecycle', () => {
  it('runs idle -> starting -> ready -> reconnecting -> ready, one stateChange per transition', () => {
    const s = new Bare();
    const { states } = record(s);
    expect(s.state).toEqual({ name: 'idle' });
    s.start();
    s.ready();
    s.reconnecting('session_expired');
    expect(s.state).toEqual({ name: 'reconnecting', reason: 'session_expired' });
    s.ready();
    expect(states).toEqual(['idle->starting', 'starting->ready', 'ready->reconnecting', 'reconnecting->ready']);
    expect(s.closed).toBe(false);
  });

  it('refuses a second start() with InvalidStateError, and start() after close()', () => {
    const s = new Bare();
    s.start();
    expect(() => s.start()).toThrow(InvalidStateError);
    const t = new Bare();
    t.close();
    expect(() => t.start()).toThrow(/start\(\) on a closed AI session/);
  });

  it('close() releases once, ends closed and emits close once, however often it is called', () => {
    const s = new Bare();
    const { states, events } = record(s);
    s.start();
    s.close();
    s.close();
    expect(s.released).toEqual([['closed', undefined]]);
    expect(s.state).toEqual({ name: 'closed' });
    expect(s.closed).toBe(true);
    expect(events).toEqual(['close']);
    expect(states).toEqual(['idle->starting', 'starting->closed']);
  });

  it('releases before the ending state is set, with ending already true', () => {
    const s = new Bare();
    let seen: { name: string; ending: boolean; closed: boolean } | undefined;
    s.onRelease = () => (seen = { name: s.state.name, ending: s.isEnding, closed: s.closed });
    s.start();
    s.ready();
    s.close();
    expect(seen).toEqual({ name: 'ready', ending: true, closed: false });
  });

  it('die() releases, ends died with the error code as reason and emits died, not close', () => {
    const s = new Bare();
    const { events } = record(s);
    s.start();
    s.ready();
    const err = new AiSessionError('lost', 'connection_lost');
    s.lose(err);
    expect(s.released).toEqual([['died', err]]);
    expect(s.state).toEqual({ name: 'died', reason: 'connection_lost', error: err });
    expect(s.closed).toBe(true);
    s.close();
    s.lose(new AiSessionError('again', 'again'));
    expect(events).toEqual(['died:connection_lost']);
  });

  it("names the death 'died' when the error has no code", () => {
    const s = new Bare();
    s.start();
    s.lose(new AiSessionError('lost'));
    expect(s.state.name === 'died' && s.state.reason).toBe('died');
  });

  it('a close() or a death called back while the session is releasing changes nothing', () => {
    const s = new Bare();
    const { events } = record(s);
    s.start();
    s.ready();
    s.onRelease = () => {
      s.close();
      s.lose(new AiSessionError('during close', 'x'));
    };
    s.close();
    expect(s.released).toHaveLength(1);
    expect(events).toEqual(['close']);

    const t = new Bare();
    const t2 = record(t);
    t.start();
    t.onRelease = () => t.close();
    t.lose(new AiSessionError('lost', 'connection_lost'));
    expect(t.released).toHaveLength(1);
    expect(t.state.name).toBe('died');
    expect(t2.events).toEqual(['died:connection_lost']);
  });

  it('failStart() ends died without a died event (start() rejects instead)', () => {
    const s = new Bare();
    const { events } = record(s);
    s.start();
    const err = new AiSessionError('refused', 'invalid_value');
    s.startFailed(err);
    expect(s.released).toEqual([['start_failed', err]]);
    expect(s.state).toEqual({ name: 'died', reason: 'start_failed', error: err });
    expect(events).toEqual([]);
  });

  it('settled() resolves at once when ready, and otherwise at the next ready, close or death', async () => {
    const s = new Bare();
    s.start();
    s.ready();
    await expect(s.whenSettled()).resolves.toBeUndefined();

    s.reconnecting('rotation');
    let settled = false;
    const p = s.whenSettled().then(() => (settled = true));
    await Promise.resolve();
    expect(settled).toBe(false);
    s.ready();
    await p;
    expect(settled).toBe(true);

    s.reconnecting('connection_lost');
    const q = s.whenSettled();
    s.close();
    await expect(q).resolves.toBeUndefined();
  });

  it('a throwing stateChange listener does not stop the transition or the other listeners', () => {
    const s = new Bare();
    const seen: string[] = [];
    s.on('stateChange', () => {
      throw new Error('listener bug');
    });
    s.on('stateChange', (next) => seen.push(next.name));
    const stderr = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      s.start();
      s.close();
    } finally {
      stderr.mockRestore();
    }
    expect(s.state.name).toBe('closed');
    expect(seen).toEqual(['starting', 'closed']);
  });

  it('notSent() is a requested not_sent outcome naming its reason', () => {
    expect(notSent('queue_full')).toEqual({
      responseId: undefined,
      status: 'not_sent',
      reason: 'queue_full',
      requested: true,
      error: { code: 'queue_full', message: 'response not sent [reason:queue_full]' },
    });
  });

  it('is the lifecycle of the echo and the Realtime sessions', () => {
    const opts: AiSessionOptions = {
      instructions: '',
      voice: 'marin',
      inputFormat: 'pcm',
      outputFormat: 'pcm',
      turnDetection: null,
      noiseReduction: null,
      transcription: null,
    };
    const echo = new EchoSession(opts, silentLogger());
    const rt = new RealtimeSession({ session: opts, connection: { url: 'ws://127.0.0.1:9', model: 'm', apiKey: 'k' } }, silentLogger());
    expect(echo).toBeInstanceOf(SessionLifecycle);
    expect(rt).toBeInstanceOf(SessionLifecycle);
    rt.close();
    expect(rt.state).toEqual({ name: 'closed' });
    echo.close();
    expect(echo.state).toEqual({ name: 'closed' });
  });
});
