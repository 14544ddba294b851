import { Writable } from 'node:stream';
import { VadPool } from '../../../src/daemon/vadPool';
import { createLogger } from '../../../src/logging/logger';
import { valid, withBase } from '../config/helpers';

/** A logger whose JSON lines are kept. */
function capture(): { log: ReturnType<typeof createLogger>; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString('utf8').split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  return { log: createLogger({ level: 'info', destination, pretty: false }), lines };
}

describe('VadPool.settle', () => {
  test('with no local VAD configured there is nothing to wait for', async () => {
    const { log, lines } = capture();
    const pool = new VadPool(log);
    expect(pool.gate(valid(withBase({ ai: { provider: 'openai', apiKey: 'sk-x' } })))).toBeUndefined();
    await pool.settle(1000);
    expect(lines).toEqual([]);
    await pool.close();
  });

  test('the input gate: start-up waits until the model has loaded (or the VAD fell back), and says which', async () => {
    const { log, lines } = capture();
    const pool = new VadPool(log);
    const gate = pool.gate(valid(withBase({ ai: { provider: 'openai', apiKey: 'sk-x', inputGate: 'vad' } })));
    expect(gate).toBeDefined();
    await pool.settle(60_000);
    const ready = lines.find((l) => l['msg'] === 'local VAD ready');
    expect(ready).toBeDefined();
    const backends = ready!['backends'] as string[];
    expect(backends).toHaveLength(1);
    // Settled: a call made now is scored by what the model decided, not by energy while it loads.
    expect(gate!(8000).backend).toBe(backends[0]);
    await pool.close();
  });
});
