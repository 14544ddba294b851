/**
 * The addon's state is per Node environment: it loads and runs in a worker thread, the one
 * process-wide fact (PJSUA is a singleton) is enforced across environments with the typed error,
 * and a worker's teardown stops its agent so the main thread can start one afterwards.
 */
import { Worker } from 'node:worker_threads';
import { addonCandidates, loadNativeBinding } from '../../src/native/binding';
import { startAgent } from '../helpers/agent';
import { useHarnessCleanup } from '../helpers/proc';
import { InvalidStateError } from '../../src/util/errors';
import * as fs from 'node:fs';

jest.setTimeout(60_000);
useHarnessCleanup();

const ADDON = addonCandidates().find((p) => fs.existsSync(p))!;

// Runs in the worker: load the addon, start an agent on loopback, report, then wait to be told
// to exit with the agent still running (its environment's cleanup hook must stop it).
const WORKER_SRC = `
const { parentPort, workerData } = require('node:worker_threads');
const addon = require(workerData.addon);
const ua = new addon.UserAgent(() => {});
ua.start({ udp: { bindAddress: '127.0.0.1', port: 0 }, logLevel: 0, rtpBindAddress: '127.0.0.1' })
  .then((transports) => {
    const acc = ua.addAccount({ idUri: 'sip:worker@127.0.0.1', isDefault: true });
    return acc.done.then(() => parentPort.postMessage({ started: transports.udp, account: acc.handle, pj: addon.pjVersion }));
  })
  .catch((err) => parentPort.postMessage({ error: String(err && err.message), name: err && err.name }));
parentPort.on('message', (m) => { if (m === 'exit') process.exit(0); });
`;

function startWorker(): { worker: Worker; first: Promise<Record<string, unknown>> } {
  const worker = new Worker(WORKER_SRC, { eval: true, workerData: { addon: ADDON } });
  const first = new Promise<Record<string, unknown>>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  return { worker, first };
}

test('a worker thread loads the addon and runs an agent; its teardown stops the agent, so the main thread can start one', async () => {
  const { worker, first } = startWorker();
  const msg = await first;
  expect(msg.error).toBeUndefined();
  expect(msg.started).toMatch(/^127\.0\.0\.1:\d+$/);
  expect(msg.account).toBe(1);
  expect(msg.pj).toBe(loadNativeBinding().pjVersion);

  // While the worker's agent runs, the main thread cannot start another (one PJSUA per process).
  await expect(startAgent()).rejects.toThrow(InvalidStateError);

  const exited = new Promise<number>((resolve) => worker.once('exit', resolve));
  worker.postMessage('exit');
  expect(await exited).toBe(0);

  const ua = await startAgent();
  try {
    expect(ua.transports.udp).toMatch(/^127\.0\.0\.1:\d+$/);
  } finally {
    await ua.close();
  }
});

test('requests pending when the agent stops reject with InvalidStateError, not a bare Error', async () => {
  const ua = await startAgent();
  const acc = await ua.addAccount({ uri: 'sip:stopper@127.0.0.1', isDefault: true });
  // Queued behind the shutdown: answered "shutting down" or rejected at stop, typed either way.
  const late = ua.call(acc, 'sip:nobody@127.0.0.1:9');
  const closing = ua.close();
  const err = await late.then(
    () => null,
    (e: unknown) => e,
  );
  await closing;
  if (err !== null) {
    expect(err).toBeInstanceOf(InvalidStateError);
  }
});
