/** BackendHealth: marked down by a failed session, probed on a timer while down, up on a session or a probe that works. */
import type { AiBackend } from '../../../src/ai/AiBackend';
import { BackendHealth } from '../../../src/calls/BackendHealth';
import { silentLogger } from '../../../src/logging/logger';

const log = silentLogger();

function backend(probe?: () => Promise<void>): AiBackend & { probes: number } {
  const b = {
    name: 'test',
    probes: 0,
    createSession: () => {
      throw new Error('not used');
    },
    ...(probe
      ? {
          probe: async () => {
            b.probes++;
            await probe();
          },
        }
      : {}),
  };
  return b as unknown as AiBackend & { probes: number };
}

beforeEach(() => jest.useFakeTimers());
afterEach(() => jest.useRealTimers());

test('a failed session marks it down once; probes run every interval until one works', async () => {
  let answer = false;
  const b = backend(async () => {
    if (!answer) throw new Error('ECONNREFUSED');
  });
  const h = new BackendHealth(b, log, 1000);
  const changes: (string | undefined)[] = [];
  h.on('change', (r) => changes.push(r));
  h.failed('connect_failed');
  h.failed('start_timeout');
  expect(h.down).toBe('AI backend unreachable (connect_failed)');
  expect(changes).toEqual(['AI backend unreachable (connect_failed)']);
  await jest.advanceTimersByTimeAsync(3000);
  expect(b.probes).toBe(3);
  expect(h.down).toBeDefined();
  answer = true;
  await jest.advanceTimersByTimeAsync(1000);
  expect(h.down).toBeUndefined();
  expect(changes).toEqual(['AI backend unreachable (connect_failed)', undefined]);
  await jest.advanceTimersByTimeAsync(5000);
  expect(b.probes).toBe(4); // no probing while up
  h.close();
});

test('a session that starts brings it back without a probe; close() stops probing', async () => {
  const b = backend(() => Promise.reject(new Error('down')));
  const h = new BackendHealth(b, log, 1000);
  h.failed('connect_failed');
  h.ok();
  expect(h.down).toBeUndefined();
  h.failed('connect_failed');
  h.close();
  await jest.advanceTimersByTimeAsync(5000);
  expect(b.probes).toBe(0);
});

test('a backend that cannot be probed (echo) is never marked down', () => {
  const h = new BackendHealth(backend(), log, 1000);
  h.failed('whatever');
  expect(h.down).toBeUndefined();
});
