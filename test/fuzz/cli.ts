/**
 * npm run fuzz: fuzz the daemon longer than the test run does.
 *   npm run fuzz -- [--count 50000] [--seed N] [--rounds 1]
 * Each round starts a fresh daemon with its own seed (seed, seed+1, ...). A message that kills the
 * daemon is saved to test/fuzz/corpus/ (the test run replays the corpus every time). Exit 1 when a
 * round failed.
 */
import { fuzzSession } from './session';
import { killAllProcesses } from '../helpers/proc';

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
}

async function main(): Promise<number> {
  const count = arg('count', 50_000);
  const rounds = arg('rounds', 1);
  const seed0 = arg('seed', Math.floor(Math.random() * 2 ** 31));
  let failed = 0;
  for (let k = 0; k < rounds; k++) {
    const seed = seed0 + k;
    const t0 = Date.now();
    const s = await fuzzSession({
      seed,
      count,
      deadlineMs: Math.max(600_000, count * 10),
      onProgress: (n) => {
        if (n % 5000 === 0) process.stdout.write(`  seed ${seed}: ${n} messages\n`);
      },
    });
    const r = s.result;
    const secs = ((Date.now() - t0) / 1000).toFixed(0);
    const statuses = Object.entries(r.statuses).sort().map(([c, n]) => `${c}:${n}`).join(' ');
    console.log(`seed ${seed}: ${r.corpusSent} corpus + ${r.sent} mutated messages, ${r.scenarios} scenarios, ${r.checks} liveness checks, ${r.responses} responses (${statuses}) in ${secs} s`);
    if (r.failure) {
      failed++;
      console.log(`seed ${seed}: FAILED: ${r.failure.reason}`);
      for (const f of s.saved) console.log(`  saved ${f}`);
      if (s.saved.length === 0) console.log(`  not isolated; window: ${r.failure.window.map((m) => m.label).join(', ')}`);
      if (s.tail) console.log(s.tail);
    }
  }
  return failed > 0 ? 1 : 0;
}

main()
  .then(async (code) => {
    await killAllProcesses();
    process.exit(code);
  })
  .catch(async (err: unknown) => {
    console.error(err);
    await killAllProcesses();
    process.exit(1);
  });
