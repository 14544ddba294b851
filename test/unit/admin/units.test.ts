import { EventEmitter } from 'node:events';
import type { ServerResponse } from 'node:http';
import { bearerToken, isLoopback, isLoopbackHostHeader, tokenMatches } from '../../../src/admin/auth';
import { SseStream } from '../../../src/admin/SseStream';
import { toHttpError } from '../../../src/admin/AdminServer';
import { evaluateHealth, validatePlaceCall, HttpError } from '../../../src/admin/validate';
import { AiSessionError, ConfigError } from '../../../src/util/errors';

/** A response whose socket "fills up" on demand. */
class SlowResponse extends EventEmitter {
  writableNeedDrain = false;
  destroyed = false;
  ended = false;
  readonly written: string[] = [];
  writeHead(): this {
    return this;
  }
  write(chunk: string): boolean {
    this.written.push(chunk);
    return !this.writableNeedDrain;
  }
  end(chunk?: string): void {
    if (chunk) this.written.push(chunk);
    this.ended = true;
    this.emit('close');
  }
  events(): string[] {
    return this.written
      .join('')
      .split('\n\n')
      .map((w) => /^(?:id: \d+\n)?event: (\w+)\ndata: (.*)$/.exec(w))
      .filter(Boolean)
      .map((m) => `${m![1]} ${m![2]}`);
  }
}

describe('SseStream', () => {
  it('queues while the socket is full, drops the oldest past the cap and says how many', () => {
    const res = new SlowResponse();
    const s = new SseStream(res as unknown as ServerResponse, { heartbeatMs: 0, maxQueue: 3 });
    s.send('transcript', { n: 0 });
    res.writableNeedDrain = true;
    for (let n = 1; n <= 5; n++) s.send('transcript', { n });
    expect(s.queued).toBe(3);
    expect(s.dropped).toBe(2);
    res.writableNeedDrain = false;
    res.emit('drain');
    expect(res.events()).toEqual(['transcript {"n":0}', 'transcript {"n":3}', 'transcript {"n":4}', 'transcript {"n":5}', 'dropped {"count":2}']);
    s.end();
  });

  it('never drops the final event and ends after it', () => {
    const res = new SlowResponse();
    const s = new SseStream(res as unknown as ServerResponse, { heartbeatMs: 0, maxQueue: 1 });
    res.writableNeedDrain = true;
    s.send('transcript', { n: 1 });
    s.send('transcript', { n: 2 });
    s.sendAndEnd('ended', { reason: 'done' });
    expect(res.ended).toBe(true);
    expect(s.closed).toBe(true);
    expect(res.events()).toEqual(['transcript {"n":2}', 'dropped {"count":1}', 'ended {"reason":"done"}']);
    s.send('transcript', { n: 3 });
    expect(res.events()).toHaveLength(3);
  });

  it('runs close hooks once, also when added after the close', () => {
    const res = new SlowResponse();
    const s = new SseStream(res as unknown as ServerResponse, { heartbeatMs: 0 });
    const calls: string[] = [];
    s.onClose(() => calls.push('a'));
    res.emit('close');
    s.end();
    s.onClose(() => calls.push('b'));
    expect(calls).toEqual(['a', 'b']);
  });
});

describe('auth helpers', () => {
  it.each([
    ['127.0.0.1', true],
    ['127.1.2.3', true],
    ['::1', true],
    ['[::1]', true],
    ['localhost', true],
    ['::ffff:127.0.0.1', true],
    ['0.0.0.0', false],
    ['::', false],
    ['192.168.1.10', false],
    ['127.example.com', false],
  ])('isLoopback(%s) is %s', (host, expected) => {
    expect(isLoopback(host)).toBe(expected);
  });

  it('reads bearer tokens and compares them exactly', () => {
    expect(bearerToken('Bearer abc')).toBe('abc');
    expect(bearerToken('bearer   abc ')).toBe('abc');
    expect(bearerToken('Basic abc')).toBeUndefined();
    expect(bearerToken(undefined)).toBeUndefined();
    expect(tokenMatches('abc', 'abc')).toBe(true);
    expect(tokenMatches('abc', 'abcd')).toBe(false);
    expect(tokenMatches('', 'abc')).toBe(false);
  });

  it('accepts only loopback Host headers', () => {
    expect(isLoopbackHostHeader('127.0.0.1:8089')).toBe(true);
    expect(isLoopbackHostHeader('[::1]:8089')).toBe(true);
    expect(isLoopbackHostHeader('localhost')).toBe(true);
    expect(isLoopbackHostHeader('attacker.example:8089')).toBe(false);
    expect(isLoopbackHostHeader(undefined)).toBe(false);
  });
});

describe('validatePlaceCall', () => {
  it('accepts sip, sips and tel URIs and trims them', () => {
    expect(validatePlaceCall({ uri: ' sip:1000@pbx.example.com;transport=tcp ' })).toEqual({ uri: 'sip:1000@pbx.example.com;transport=tcp' });
    expect(validatePlaceCall({ uri: 'sips:alice@example.com' }).uri).toBe('sips:alice@example.com');
    expect(validatePlaceCall({ uri: 'tel:+15551234567' }).uri).toBe('tel:+15551234567');
  });

  it('names the field at fault', () => {
    const err = (() => {
      try {
        validatePlaceCall({ uri: 'sip:1@x', instructions: '   ' });
      } catch (e) {
        return e as HttpError;
      }
      throw new Error('expected a throw');
    })();
    expect(err.status).toBe(400);
    expect(err.field).toBe('instructions');
    expect(() => validatePlaceCall({ uri: 'sip:1@x', headers: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`X-H${i}`, 'v'])) })).toThrow(
      'invalid request: headers must have at most 16 entries',
    );
    expect(() => validatePlaceCall({ uri: 'sip:a b@x' })).toThrow(/uri must be a sip:/);
    expect(() => validatePlaceCall(null)).toThrow(/must be a JSON object/);
  });
});

describe('evaluateHealth', () => {
  it('is healthy with only registration-less accounts', () => {
    expect(evaluateHealth({ accounts: [{ name: 'ip', registers: false, registered: false }], aiConfigured: true })).toEqual({ healthy: true, reasons: [] });
  });

  it('names a registered account whose registrar stopped answering keepalives', () => {
    const accounts = [
      { name: 'sip:a@pbx', registers: true, registered: true, registrarReachable: false },
      { name: 'sip:b@pbx', registers: true, registered: true, registrarReachable: true },
    ];
    expect(evaluateHealth({ accounts, aiConfigured: true })).toEqual({
      healthy: false,
      reasons: ['account sip:a@pbx: the registrar does not answer OPTIONS'],
    });
  });

  it('lists extra problems', () => {
    expect(evaluateHealth({ accounts: [], aiConfigured: true, problems: ['records directory is not writable'] })).toEqual({
      healthy: false,
      reasons: ['records directory is not writable'],
    });
  });
});

describe('toHttpError', () => {
  it('keeps the meaning of the error classes', () => {
    expect(toHttpError(new ConfigError('bad')).status).toBe(400);
    expect(toHttpError(new AiSessionError('down', 'server_error')).status).toBe(502);
    expect(toHttpError(new HttpError(418, 'teapot')).status).toBe(418);
    expect(toHttpError('a string').status).toBe(500);
  });
});
