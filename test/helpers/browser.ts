/**
 * Headless Chromium for the console tests: Debian's `chromium` driven by puppeteer-core (nothing is
 * downloaded), in a profile of its own, bounded in time, and always closed (killed if it hangs).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { PeerError, findOnPath, onCleanup } from './proc';

/** The system Chromium, or a PeerError saying how to install it. */
export function findChromium(): string {
  const p = process.env.CHROMIUM_PATH ?? findOnPath('chromium') ?? findOnPath('chromium-browser');
  if (!p) throw new PeerError("no chromium on PATH: install Debian's chromium (scripts/install-debian-deps.sh does)");
  return p;
}

/** A launched browser and its profile directory. */
export interface HeadlessBrowser {
  browser: Browser;
  /** Open a page with bounded timeouts; console errors and failed requests are collected in `problems`. */
  page(): Promise<Page>;
  /** Console errors, page errors and CSP violations seen by any page. */
  problems: string[];
  close(): Promise<void>;
}

/** Launch headless Chromium (container-safe flags, autoplay allowed for the recording test). */
export async function launchBrowser(): Promise<HeadlessBrowser> {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'sip-ai-agent-chromium-'));
  const browser = await puppeteer.launch({
    executablePath: findChromium(),
    headless: true,
    userDataDir: profile,
    timeout: 30_000,
    protocolTimeout: 30_000,
    args: [
      '--headless=new',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-dev-shm-usage',
      '--no-first-run',
      '--no-default-browser-check',
      '--disable-extensions',
      '--disable-background-networking',
      '--disable-component-update',
      '--mute-audio',
      '--autoplay-policy=no-user-gesture-required',
      '--window-size=1280,900',
    ],
  });
  const problems: string[] = [];
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      const proc = browser.process();
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([browser.close().catch(() => undefined), new Promise((r) => (timer = setTimeout(r, 5000)))]);
      clearTimeout(timer);
      if (proc && proc.exitCode === null) proc.kill('SIGKILL');
      fs.rmSync(profile, { recursive: true, force: true });
    })();
    return closing;
  };
  onCleanup(close);
  return {
    browser,
    problems,
    close,
    async page() {
      const page = await browser.newPage();
      page.setDefaultTimeout(20_000);
      page.setDefaultNavigationTimeout(20_000);
      await page.setViewport({ width: 1280, height: 900 });
      page.on('console', (m) => {
        // HTTP errors the tests provoke (a wrong token, a bad filter) are asserted where they happen.
        if (m.type() === 'error' && !m.text().startsWith('Failed to load resource: the server responded')) problems.push(`console: ${m.text()}`);
      });
      page.on('response', (r) => {
        if (r.status() >= 500) problems.push(`HTTP ${r.status()} ${r.request().method()} ${r.url()}`);
      });
      page.on('pageerror', (e) => problems.push(`page error: ${(e as Error).message}`));
      return page;
    },
  };
}

/** Where the console tests put their screenshots (printed by the test). */
export function artifactsDir(): string {
  const dir = process.env.SIP_AI_AGENT_ARTIFACTS ?? path.join(os.tmpdir(), 'sip-ai-agent-artifacts', 'console');
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}
