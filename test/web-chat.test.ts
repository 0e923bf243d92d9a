import type { Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { serveMetrics, type MetricsHandle } from '../lib/index';
import { ChatFixture } from './helpers/chat-client';
import { launchChromium, type Browser } from './helpers/browser';
import { ensureBuilt, runCliInTerminal, type Spawned } from './helpers/chat-cli';
import { backends } from './helpers/raw-client';

// The web chat client (GET /chat of serveMetrics) in Debian's chromium,
// headless: two pages and the terminal client in one room see each other's
// joins, chats and leaves. The pages reach the chat server over WebSocket,
// the terminal client over raw TCP, on the same port.

beforeAll(() => ensureBuilt(), 200_000);

describe.each(backends())('web chat client in a headless browser (%s backend)', (backend) => {
  const fx = new ChatFixture();
  let browser: Browser | undefined;
  let handle: MetricsHandle | undefined;
  const spawned: Spawned[] = [];

  beforeAll(async () => {
    browser = await launchChromium({ width: 1000, height: 700 });
  }, 60_000);

  afterEach(async () => {
    for (const s of spawned) s.kill();
    await Promise.all(spawned.map((s) => s.exited));
    spawned.length = 0;
  });

  afterAll(async () => {
    await browser?.close();
    await handle?.close();
    await fx.dispose();
  });

  /** A page of the web client; every console error or warning, page error and failed or off-server request is kept in problems. */
  async function openPage(origin: string, problems: string[]): Promise<Page> {
    const page = await (browser as Browser).context.newPage();
    page.on('console', (msg) => {
      if (msg.type() === 'error' || msg.type() === 'warning') problems.push(`${msg.type()}: ${msg.text()}`);
    });
    page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
    page.on('requestfailed', (req) => problems.push(`request failed: ${req.url()}`));
    page.on('request', (req) => {
      // The page itself comes from the HTTP port; nothing from anywhere else (no CDN).
      if (!req.url().startsWith(origin)) problems.push(`request off the server: ${req.url()}`);
    });
    await page.goto(`${origin}/chat`);
    return page;
  }

  async function join(page: Page, user: string, room: number): Promise<void> {
    await page.fill('#user', user);
    await page.fill('#roomNumber', String(room));
    await page.click('#joinButton');
    await page.waitForSelector('#message:not([disabled])', { timeout: 10_000 });
  }

  // Run in the page, where the DOM is (the tests' TypeScript has no DOM types).
  const texts = (selector: string): string => `[...document.querySelectorAll(${JSON.stringify(selector)})].map((e) => e.textContent)`;
  const members = (page: Page): Promise<string[]> => page.evaluate<string[]>(texts('#members li'));
  const lines = (page: Page): Promise<string[]> => page.evaluate<string[]>(texts('#log li'));

  async function waitLine(page: Page, line: string): Promise<void> {
    await page.waitForFunction(`${texts('#log li')}.includes(${JSON.stringify(line)})`, undefined, { timeout: 10_000 });
  }

  async function waitMembers(page: Page, expected: string[]): Promise<void> {
    await page.waitForFunction(`${texts('#members li')}.join(',') === ${JSON.stringify([...expected].sort().join(','))}`, undefined, { timeout: 10_000 });
  }

  it('two pages and the terminal client in one room see joins, chats and leaves; no console error', async () => {
    const chat = await fx.start(backend);
    handle = await serveMetrics(chat, { port: 0, defaultMetrics: false });
    const origin = `http://127.0.0.1:${handle.address().port}`;
    const problems: string[] = [];

    const terminal = runCliInTerminal(['chat-client', '--host', '127.0.0.1', '--port', String(fx.port), '--user', 'term', '--room', '5']);
    spawned.push(terminal);
    await terminal.waitOutput(/joined room 5/);

    const ann = await openPage(origin, problems);
    await join(ann, 'ann', 5);
    await waitMembers(ann, ['ann', 'term']);
    await terminal.waitOutput(/\* ann joined/);

    const bea = await openPage(origin, problems);
    await join(bea, 'bea', 5);
    await waitMembers(bea, ['ann', 'bea', 'term']);
    await waitMembers(ann, ['ann', 'bea', 'term']);
    await waitLine(ann, 'bea joined');
    await terminal.waitOutput(/\* bea joined/);

    // The server sees two WebSocket connections and one TCP connection.
    const transports = [...chat.server.connections.values()].map((c) => c.transport).sort();
    expect(transports).toEqual(['tcp', 'websocket', 'websocket']);

    await ann.fill('#message', 'hello from ann');
    await ann.press('#message', 'Enter');
    await waitLine(bea, 'ann: hello from ann');
    await waitLine(ann, 'ann: hello from ann');
    await terminal.waitOutput(/\[5\] ann: hello from ann/);

    terminal.type('hello from the terminal');
    await waitLine(ann, 'term: hello from the terminal');
    await waitLine(bea, 'term: hello from the terminal');

    await bea.fill('#message', 'bea here');
    await bea.click('#sayButton');
    await waitLine(ann, 'bea: bea here');
    await terminal.waitOutput(/\[5\] bea: bea here/);

    // bea leaves with the button; the terminal client quits.
    await bea.click('#leaveButton');
    await waitLine(ann, 'bea left');
    await waitMembers(ann, ['ann', 'term']);
    await terminal.waitOutput(/bea left/);
    terminal.type('/quit');
    await terminal.waitExit(10_000);
    await waitLine(ann, 'term left');
    await waitMembers(ann, ['ann']);
    expect(await members(bea)).toEqual([]);
    expect(await bea.textContent('#status')).toBe('disconnected');

    expect((await lines(ann)).filter((l) => l.includes(':'))).toEqual(['ann: hello from ann', 'term: hello from the terminal', 'bea: bea here']);
    expect(problems).toEqual([]);
    await ann.close();
    await bea.close();
    await handle.close();
    handle = undefined;
    await fx.dispose();
  });
});
