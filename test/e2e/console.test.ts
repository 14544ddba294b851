/**
 * The operator console in a real browser (Debian's headless Chromium driven by puppeteer-core)
 * against a running daemon with real calls and the fake Realtime server: sign-in with the admin
 * token, a call placed from the console to a pjsua callee whose phrase (transcribed) and the
 * agent's replies stream into the live transcript, a tool call (a webhook) shown inline on the
 * call's page, a hang-up from the
 * console that the callee sees as a BYE, the finished call's page playing its stereo recording with
 * the waveform drawn, the history and health pages, and the sign-in prompt on a non-loopback
 * listener. Screenshots of each page go to the artifacts directory the test prints.
 */
import * as fs from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Page } from 'puppeteer-core';
import { readLocalToken } from '../../src/daemon/adminToken';
import { FakeRealtimeServer } from '../fakes/FakeRealtimeServer';
import { artifactsDir, launchBrowser, type HeadlessBrowser } from '../helpers/browser';
import { makeSequence, makeTone } from '../helpers/fixtures';
import { startPjsuaCallee } from '../helpers/pjsua';
import { useHarnessCleanup } from '../helpers/proc';
import { EXIT, REPO_ROOT, assertBuilt, eventually, httpRequest, orderLookupWebhook, prepareDaemon, runCli, startDaemon, waitForRecord, type Daemon, type DaemonSetup } from '../helpers/daemon';

jest.setTimeout(120_000);
useHarnessCleanup();

const RATE = 8000;
const ART = artifactsDir();
const API_KEY = 'sk-console-e2e-0123456789abcdef';

let setup: DaemonSetup;
let d: Daemon;
let calleePlay: string;
let b: HeadlessBrowser;
let page: Page;
let fake: FakeRealtimeServer;
let hook: Server;
/** The call placed and hung up from the console. */
let callId: string;

async function shot(p: Page, name: string): Promise<void> {
  await p.screenshot({ path: path.join(ART, `${name}.png`), fullPage: true });
}

/** The first non-loopback IPv4 address of this host (the admin listener's "remote" address). */
function externalIPv4(): string | undefined {
  for (const list of Object.values(os.networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal && !a.address.startsWith('127.')) return a.address;
  }
  return undefined;
}

/** Empty an input. */
async function clear(p: Page, selector: string): Promise<void> {
  await p.$eval(selector, (e) => {
    (e as unknown as { value: string }).value = '';
  });
}

/** Form fields of the page without a label naming them (should be none). */
async function unlabelled(p: Page): Promise<string[]> {
  return (await p.evaluate(`[...document.querySelectorAll('input, select, textarea')]
    .filter((e) => !(e.id && document.querySelector('label[for="' + e.id + '"]')) && !e.getAttribute('aria-label'))
    .map((e) => e.outerHTML.slice(0, 80))`)) as string[];
}

/** The page's landmarks: banner, navigation and main. */
async function landmarks(p: Page): Promise<string[]> {
  return (await p.evaluate(`['body > div > header', 'nav[aria-label]', 'main'].filter((s) => document.querySelector(s))`)) as string[];
}

async function signIn(p: Page, token: string): Promise<void> {
  await p.waitForSelector('#token');
  await p.type('#token', token);
  await p.click('form button[type=submit]');
}

beforeAll(async () => {
  assertBuilt();
  if (!fs.existsSync(path.join(REPO_ROOT, 'dist', 'console', 'index.html'))) throw new Error("the console is not built: run 'npm run build:console' (npm test does)");
  process.stdout.write(`console screenshots: ${ART}\n`);
  setup = await prepareDaemon('echo');
  const greeting = await makeTone(path.join(setup.dir, 'greeting-500.wav'), 500, 800, { sampleRate: RATE, amplitude: 0.4 });
  calleePlay = await makeSequence(path.join(setup.dir, 'callee-play.wav'), [{ silenceMs: 1500 }, { toneHz: 700, ms: 800 }, { silenceMs: 2500 }], { sampleRate: RATE });
  // The webhook the model calls: an order lookup that answers at once.
  hook = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"status":"shipped"}');
    });
  });
  await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
  // The first reply greets; a caller's turn makes the model look the order up, and its result is spoken.
  fake = new FakeRealtimeServer({
    apiKey: API_KEY,
    respond: (ctx) =>
      ctx.functionOutputs.length > 0
        ? [{ audio: { toneHz: 1000, ms: 600, amplitude: 0.3 }, transcript: 'Your order A-17 has shipped.' }]
        : ctx.index === 0
          ? [{ audio: { toneHz: 1000, ms: 600, amplitude: 0.3 }, transcript: 'Hello from the console test.' }]
          : [{ functionCall: { name: 'lookup_order', arguments: { order_id: 'A-17' } } }],
  });
  await fake.listen();
  setup.write({
    greeting: { file: greeting },
    ai: {
      provider: 'openai',
      url: `${fake.baseUrl}/v1/realtime`,
      apiKey: API_KEY,
      model: 'gpt-realtime',
      turnDetection: { type: 'server_vad', silenceDurationMs: 300, prefixPaddingMs: 100 },
      transcription: { model: 'gpt-4o-mini-transcribe' },
    },
    tools: { webhooks: [orderLookupWebhook(`http://127.0.0.1:${(hook.address() as AddressInfo).port}/orders`, 5000)] },
  });
  d = await startDaemon(setup, { lifetimeMs: 200_000 });
  b = await launchBrowser();
  page = await b.page();
});

afterAll(async () => {
  await b?.close();
  if (d && !d.closed) expect((await d.stop()).code).toBe(EXIT.ok);
  await fake?.close();
  await new Promise((r) => (hook ? hook.close(r) : r(undefined)));
});

describe('operator console', () => {
  test('the page is served with a strict CSP, nosniff and no framing; the sign-in refuses a wrong token and takes the generated one', async () => {
    const res = await page.goto(`${setup.adminUrl}/console/`);
    expect(res?.status()).toBe(200);
    const h = res?.headers() ?? {};
    expect(h['content-security-policy']).toMatch(/script-src 'self'/);
    expect(h['content-security-policy']).toMatch(/frame-ancestors 'none'/);
    expect(h['content-security-policy']).not.toMatch(/unsafe-inline/);
    expect(h['x-content-type-options']).toBe('nosniff');
    await signIn(page, 'not-the-token');
    await page.waitForSelector('#signin-error');
    expect(await page.$eval('#signin-error', (e) => e.textContent)).toMatch(/not valid/);
    await shot(page, 'signin');
    await clear(page, '#token');
    await signIn(page, readLocalToken(setup.recordsDir) ?? '');
    await page.waitForSelector('nav[aria-label=Console] a[aria-current=page]');
    await page.waitForFunction("document.body.textContent.includes('sip:agent@127.0.0.1') && document.body.textContent.includes('openai')");
    expect(await landmarks(page)).toEqual(['body > div > header', 'nav[aria-label]', 'main']);
    expect(await unlabelled(page)).toEqual([]);
    const cookies = await page.browserContext().cookies();
    const session = cookies.find((c) => c.name === `sip_ai_agent_console_${setup.ports.admin}`);
    expect(session).toMatchObject({ httpOnly: true, sameSite: 'Strict' });
    expect(b.problems).toEqual([]);
  });

  test('a call placed from the console streams its transcript live; Hang up ends it and the callee gets a BYE', async () => {
    const rec = path.join(setup.dir, 'callee-rec.wav');
    const callee = await startPjsuaCallee({ name: 'console-callee', clockRate: RATE, codecs: ['PCMU'], playFile: calleePlay, recordFile: rec, lifetimeMs: 60_000 });
    await page.type('#place-uri', callee.uri);
    await page.type('#place-instructions', 'Say hello to the console test.');
    await page.click('#place-h ~ form button[type=submit]');
    await page.waitForFunction("document.querySelector('[role=status]')?.textContent?.startsWith('Dialling')");
    await callee.waitForCallState('CONFIRMED', 10_000);
    const row = await page.waitForSelector('tr[data-call-id]');
    callId = (await row?.evaluate((e) => e.getAttribute('data-call-id'))) ?? '';
    expect(callId).not.toBe('');
    // The callee's phrase (transcribed) and the agent's replies arrive through server-sent events, while the call runs.
    await page.waitForSelector('ol.transcript.live li.caller', { timeout: 20_000 });
    await page.waitForFunction("[...document.querySelectorAll('ol.transcript.live li.agent')].some((l) => l.textContent.includes('has shipped'))", { timeout: 20_000 });
    // The instructions typed into the form are the AI session's.
    expect(fake.sessions.some((x) => String(x.config['instructions']).includes('Say hello to the console test.'))).toBe(true);
    const live = await d.http('GET', `/calls/${encodeURIComponent(callId)}`);
    expect((live.json as { state: string }).state).not.toBe('ended');
    await page.waitForFunction("/\\d+ ms/.test(document.querySelector('tr[data-call-id] td:nth-child(5)')?.textContent ?? '')", { timeout: 15_000 }).catch(() => undefined);
    await shot(page, 'now-live-call');

    const mark = callee.proc.mark;
    await page.click(`tr[data-call-id="${callId}"] button.danger`);
    await callee.waitForLog(/Request msg BYE/, 10_000, mark);
    await callee.waitForDisconnect(10_000, undefined, mark);
    await page.waitForFunction("document.querySelector('#live-h')?.parentElement?.textContent?.includes('Call ended') || !document.querySelector('tr[data-call-id]')");
    await callee.quit();
    const r = await waitForRecord(setup.recordsDir, (x) => x.record.callId === callId && x.record.status === 'completed', 10_000);
    expect(r.record.endReason).toBe('admin_hangup');
    expect(r.wavPath).toBeDefined();
    expect(b.problems).toEqual([]);
  });

  test("the finished call's page plays the stereo recording: the waveform is drawn and the audio's currentTime advances", async () => {
    await page.goto(`${setup.adminUrl}/console/#/calls/${encodeURIComponent(callId)}`);
    await page.waitForSelector('canvas.waveform[data-drawn=true]', { timeout: 20_000 });
    // Both lanes have ink: the caller's (upper) and the agent's (lower) half of the canvas are not blank.
    const ink = (await page.evaluate(`(() => {
      const cv = document.querySelector('canvas.waveform');
      const ctx = cv.getContext('2d');
      // Pixels of a lane's colour (blue for the caller, orange for the agent), not the background, labels or the red playhead.
      const count = (y0, y1, lane) => {
        const d = ctx.getImageData(0, y0, cv.width, y1 - y0).data;
        let n = 0;
        for (let i = 0; i < d.length; i += 4) if (lane === 0 ? d[i + 2] - d[i] > 40 : d[i] - d[i + 2] > 50 && d[i + 1] > 60) n++;
        return n;
      };
      return [count(0, cv.height / 2, 0), count(cv.height / 2, cv.height, 1)];
    })()`)) as number[];
    expect(ink[0]).toBeGreaterThan(0);
    expect(ink[1]).toBeGreaterThan(0);
    expect(await page.$$eval('ol.transcript li.caller', (l) => l.length)).toBeGreaterThan(0);
    // The webhook call sits inline in the transcript, between the caller's turn and the answer it produced.
    const order = await page.$$eval('ol.transcript li', (l) => l.map((e) => `${e.className.split(' ')[0]}:${e.textContent ?? ''}`));
    const tool = order.findIndex((x) => x.startsWith('tool:') && x.includes('lookup_order'));
    expect(tool).toBeGreaterThan(0);
    expect([order, order.slice(tool + 1).some((x) => x.startsWith('agent:') && x.includes('has shipped'))]).toEqual([order, true]);
    await page.evaluate("document.querySelector('audio').play()");
    await page.waitForFunction("document.querySelector('audio').currentTime > 0.5", { timeout: 20_000 });
    await page.evaluate("document.querySelector('audio').pause()");
    // The transcript follows the playback: past the echo, the highlighted line is a later one.
    const first = await page.$eval('ol.transcript li[aria-current]', (e) => e.textContent ?? '');
    await page.evaluate("document.querySelector('audio').currentTime = document.querySelector('audio').duration - 0.2");
    await page.waitForFunction(`document.querySelector('ol.transcript li[aria-current]')?.textContent !== ${JSON.stringify(first)}`);
    expect(await page.$eval('ol.transcript li[aria-current]', (e) => e.textContent)).toMatch(/Agent/);
    const facts = await page.$eval('dl.facts', (e) => e.textContent ?? '');
    expect(facts).toMatch(/admin hangup/);
    expect(facts).toMatch(/SIP Call-ID/);
    await shot(page, 'call-recording');

    // The same audio through the API: a Range request is answered 206 with the bytes asked for.
    const token = readLocalToken(setup.recordsDir) ?? '';
    const part = await httpRequest(setup.adminUrl, 'GET', `/calls/${encodeURIComponent(callId)}/recording`, undefined, { Authorization: `Bearer ${token}`, Range: 'bytes=0-11' });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toMatch(/^bytes 0-11\/\d+$/);
    expect(part.text.slice(0, 4)).toBe('RIFF');
    expect(b.problems).toEqual([]);
  });

  test('History lists the call, finds it by transcript text and caller, and a bad filter names its parameter', async () => {
    await page.goto(`${setup.adminUrl}/console/#/history`);
    await page.waitForSelector(`tr[data-call-id="${callId}"]`);
    await page.select('#f-outcome', 'admin_hangup');
    await page.click('form[role=search] button[type=submit]');
    await page.waitForFunction("location.hash.includes('outcome=admin_hangup')");
    await page.waitForSelector(`tr[data-call-id="${callId}"]`);
    await shot(page, 'history');
    expect(await unlabelled(page)).toEqual([]);
    await page.goto(`${setup.adminUrl}/console/#/history?q=${encodeURIComponent('HAS SHIPPED')}`);
    await page.waitForSelector(`tr[data-call-id="${callId}"]`);
    await page.goto(`${setup.adminUrl}/console/#/history?caller=agent%40127.0.0.1&q=no-such-words`);
    await page.waitForFunction("document.body.textContent.includes('No call matches')");
    await page.goto(`${setup.adminUrl}/console/#/history?caller=agent%40127.0.0.1`);
    await page.waitForSelector(`tr[data-call-id="${callId}"]`);
    await page.goto(`${setup.adminUrl}/console/#/history?outcome=caller_hangup`);
    await page.waitForFunction("document.body.textContent.includes('No call matches')");
    await page.goto(`${setup.adminUrl}/console/#/history?minDuration=abc`);
    await page.waitForSelector('p.error[role=alert]');
    expect(await page.$eval('p.error[role=alert]', (e) => e.textContent)).toMatch(/minDuration/);
    expect(await page.$eval('#f-min', (e) => e.getAttribute('aria-invalid'))).toBe('true');
  });

  test('Health draws the charts of the last hours from the daemon history, with the call counted', async () => {
    await page.goto(`${setup.adminUrl}/console/#/health`);
    await page.waitForSelector('figure.chart svg');
    expect(await page.$$eval('figure.chart', (f) => f.length)).toBe(7);
    const history = await d.http('GET', '/health/history?minutes=60');
    expect(history.status).toBe(200);
    const h = history.json as { samples: { calls: Record<string, number> }[]; current: { calls: Record<string, number> } };
    const ended = [...h.samples, h.current].reduce((s, x) => s + (x.calls.admin_hangup ?? 0), 0);
    expect(ended).toBeGreaterThanOrEqual(1);
    await shot(page, 'health');
    expect(b.problems).toEqual([]);
  });

  test('on a listener that is not loopback the console asks for the token, refuses a wrong one, and the configured one opens it', async () => {
    const host = externalIPv4();
    if (!host) throw new Error('this host has no non-loopback IPv4 address to bind the admin API to');
    const token = `console-test-${Date.now().toString(36)}-token-of-some-length`;
    const remote = await prepareDaemon('echo', { admin: { listen: host, token } });
    const d2 = await startDaemon(remote, { name: 'daemon-remote', lifetimeMs: 90_000 });
    try {
      const base = `http://${host}:${remote.ports.admin}`;
      const p = await b.page();
      await p.goto(`${base}/console/`);
      await p.waitForSelector('#token');
      const bare = await httpRequest(base, 'GET', '/calls', undefined, {});
      expect(bare.status).toBe(401);
      await signIn(p, 'wrong-token');
      await p.waitForSelector('#signin-error');
      await clear(p, '#token');
      await signIn(p, token);
      await p.waitForFunction("document.body.textContent.includes('Active calls')");
      await eventually(async () => (await p.$$eval('section', (s) => s.length)) >= 3, 10_000, 'the Now page');
      await shot(p, 'now-remote');
      await p.close();
      // The CLI's sign-in link opens the console in a browser that has no session, and leaves no token in the address.
      const cli = await runCli(['--config', remote.configPath, 'console']);
      expect(cli.code).toBe(EXIT.ok);
      const link = cli.stdout.trim();
      expect(link).toBe(`${base}/console/#token=${encodeURIComponent(token)}`);
      const fresh = await b.browser.createBrowserContext();
      try {
        const q = await fresh.newPage();
        q.setDefaultTimeout(20_000);
        await q.goto(link);
        await q.waitForFunction("document.body.textContent.includes('Active calls')");
        expect(await q.$('#token')).toBeNull();
        expect(await q.evaluate('location.href')).toBe(`${base}/console/#/`);
      } finally {
        await fresh.close();
      }
      // A link with a wrong token lands on the sign-in form, saying why.
      const other = await b.browser.createBrowserContext();
      try {
        const q = await other.newPage();
        q.setDefaultTimeout(20_000);
        await q.goto(`${base}/console/#token=not-the-token`);
        await q.waitForSelector('#signin-error');
        expect(await q.$eval('#signin-error', (e) => e.textContent)).toMatch(/sign-in link/);
      } finally {
        await other.close();
      }
    } finally {
      await d2.stop();
    }
  });
});
