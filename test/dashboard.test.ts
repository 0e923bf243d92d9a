import * as fs from 'node:fs';
import * as path from 'node:path';
import type { BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveMetrics, type MetricsHandle } from '../lib/index';
import { ChatFixture, type ChatTestClient } from './helpers/chat-client';
import { ROOT } from './helpers/chat-cli';
import { launchChromium } from './helpers/browser';
import { sleep } from './helpers/engine-harness';

interface DashboardState {
  samples: number;
  resets: number;
  errors: number;
  last: { connections: number; packetsInPerSecond: number | null; notifiesPerSecond: number | null; handlerP99: number | null } | null;
}

/** Chat traffic from clients until stop(): each sends a chat every few milliseconds. */
function load(clients: ChatTestClient[]): { stop(): Promise<void> } {
  let running = true;
  const loops = clients.map(async (c, i) => {
    while (running) {
      await c.chat(`load ${i}`);
      await sleep(5);
    }
  });
  return {
    async stop() {
      running = false;
      await Promise.all(loops);
    },
  };
}

describe('dashboard in a headless browser', () => {
  const fx = new ChatFixture();
  let browser: BrowserContext | undefined;
  let handle: MetricsHandle | undefined;
  let userDataDir = '';

  beforeAll(async () => {
    const launched = await launchChromium({ width: 1280, height: 860 });
    browser = launched.context;
    userDataDir = launched.userDataDir;
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await handle?.close();
    await fx.dispose();
    if (userDataDir) fs.rmSync(userDataDir, { recursive: true, force: true });
  });

  it('draws the charts, follows the load and logs no console error', async () => {
    const chat = await fx.start('js');
    handle = await serveMetrics(chat, { port: 0 });
    const clients = await fx.clientsN(12);
    await Promise.all(clients.map((c, i) => c.join(`player${i}`, i % 3)));
    const traffic = load(clients);

    const page = await (browser as BrowserContext).newPage();
    const problems: string[] = [];
    page.on('console', (msg) => {
      if (msg.type() === 'error' || msg.type() === 'warning') problems.push(`${msg.type()}: ${msg.text()}`);
    });
    page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
    page.on('requestfailed', (req) => problems.push(`request failed: ${req.url()}`));
    // Every request goes to the metrics port: nothing from a CDN.
    const origin = `http://127.0.0.1:${handle.address().port}`;
    page.on('request', (req) => {
      if (!req.url().startsWith(origin)) problems.push(`request off the server: ${req.url()}`);
    });
    await page.goto(`${origin}/`);

    const state = async (): Promise<DashboardState> => await page.evaluate<DashboardState>('window.__dashboard');
    const waitSamples = async (n: number): Promise<DashboardState> => {
      const deadline = Date.now() + 15_000;
      for (;;) {
        const s = await state();
        if (s.samples >= n) return s;
        if (Date.now() > deadline) throw new Error(`the dashboard took fewer than ${n} samples: ${JSON.stringify(s)}`);
        await sleep(100);
      }
    };
    const loaded = await waitSamples(4);
    expect(loaded.last?.connections).toBe(12);
    expect(loaded.last?.packetsInPerSecond).toBeGreaterThan(50);
    expect(loaded.last?.notifiesPerSecond).toBeGreaterThan(100);
    expect(loaded.last?.handlerP99).toBeGreaterThan(0);
    expect(Number((await page.textContent('#t-connections')) ?? '')).toBe(12);
    expect(await page.textContent('#rooms')).toMatch(/^0\s*4/);
    expect(await page.textContent('#node-addr')).toBe(`127.0.0.1:${chat.server.address()?.port}`);

    // Every chart has drawn lines: pixels in the series' colours, not only the grid.
    // Run in the page, where the DOM is (the tests' TypeScript has no DOM types).
    const drawn = await page.evaluate<Array<{ id: string; coloured: number }>>(`[...document.querySelectorAll('canvas')].map((c) => {
      const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let coloured = 0;
      for (let i = 0; i < data.length; i += 4) {
        const r = data[i], g = data[i + 1], b = data[i + 2];
        if (data[i + 3] > 200 && Math.max(r, g, b) - Math.min(r, g, b) > 60) coloured++;
      }
      return { id: c.id, coloured };
    })`);
    expect(drawn).toHaveLength(4);
    // Four samples of 120 make a short line at the right edge: some tens of pixels.
    for (const chart of drawn) expect(chart.coloured, chart.id).toBeGreaterThan(10);

    const shot = process.env.IOCPNET_SCREENSHOT === '1' ? path.join(ROOT, 'docs', 'dashboard.png') : path.join(userDataDir, 'dashboard.png');
    await page.screenshot({ path: shot, fullPage: true });
    expect(fs.statSync(shot).size).toBeGreaterThan(10_000);

    // The load stops: the rates fall to zero, and half the clients leave.
    await traffic.stop();
    for (const c of clients.slice(6)) c.close();
    const before = (await state()).samples;
    const idle = await waitSamples(before + 3);
    expect(idle.last?.packetsInPerSecond).toBe(0);
    expect(idle.last?.notifiesPerSecond).toBe(0);
    expect(idle.last?.connections).toBe(6);
    expect(idle.errors).toBe(0);
    expect(idle.resets).toBe(0);
    expect(problems).toEqual([]);

    // The server restarts on the same port: the page sees counters go down and
    // a new start time, and shows a gap, never a negative rate.
    const metricsPort = handle.address().port;
    await handle.close();
    handle = undefined;
    await fx.dispose();
    await sleep(1500);
    const again = await fx.start('js');
    handle = await serveMetrics(again, { port: metricsPort });
    const [x] = await fx.clientsN(1);
    await x.join('again', 0);
    const after = await waitSamples((await state()).samples + 3);
    expect(after.resets).toBeGreaterThanOrEqual(1);
    expect(after.last?.connections).toBe(1);
    const rates = await page.evaluate<Array<number | null>>('window.__dashboard.rates');
    expect(rates.every((r) => r === null || r >= 0)).toBe(true);
    expect(await page.textContent('#status')).toBe('live');
    // While the server was down the page's requests failed, which the browser reports; nothing else.
    expect(problems.filter((p) => !/ERR_CONNECTION_REFUSED|request failed/.test(p))).toEqual([]);
    await page.close();
  });
});
