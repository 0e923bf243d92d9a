import * as fs from 'node:fs';
import * as path from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveMetrics, type ChatServer, type ChatServerOptions, type MetricsHandle } from '../lib/index';
import { ChatFixture, type ChatTestClient } from './helpers/chat-client';
import { ROOT } from './helpers/chat-cli';
import { CHROMIUM, launchChromium } from './helpers/browser';
import { sleep } from './helpers/engine-harness';
import { RedisServer, redisServerAvailable } from './helpers/redis';

interface DashboardState {
  samples: number;
  resets: number;
  gaps: number;
  errors: number;
  polls: number;
  /** Server times of the samples taken, in ms. */
  times: number[];
  last: { connections: number; packetsInPerSecond: number | null; notifiesPerSecond: number | null; handlerP99: number | null } | null;
}

/** The page's window.__dashboard, and helpers that wait for its samples. */
function watch(page: Page): {
  state: () => Promise<DashboardState>;
  waitSamples: (n: number) => Promise<DashboardState>;
  badNumbers: () => Promise<number>;
} {
  const state = async (): Promise<DashboardState> => await page.evaluate<DashboardState>('window.__dashboard');
  return {
    state,
    waitSamples: async (n) => {
      const deadline = Date.now() + 15_000;
      for (;;) {
        const s = await state();
        if (s.samples >= n) return s;
        if (Date.now() > deadline) throw new Error(`the dashboard took fewer than ${n} samples: ${JSON.stringify(s)}`);
        await sleep(100);
      }
    },
    // NaN or an infinity anywhere in the charts' series or the tiles.
    badNumbers: async () =>
      await page.evaluate<number>(`Object.values(window.__dashboard.series).flat().filter((v) => v !== null && !Number.isFinite(v)).length
        + [...document.querySelectorAll('.tile .v')].filter((t) => /NaN|Infinity|undefined/.test(t.textContent)).length`),
  };
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

    const { state, waitSamples } = watch(page);
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

    await page.close();
    await fx.dispose();
    await handle.close();
    handle = undefined;
  });

  /** Stops the server and its metrics endpoint (the browser stays). */
  async function stopServer(): Promise<void> {
    await fx.dispose();
    await handle?.close();
    handle = undefined;
  }

  /** A chat server with its metrics on metricsPort (0: any) and `clients` chatting in three rooms. */
  async function loaded(clients: number, metricsPort = 0, options: ChatServerOptions = {}): Promise<{ chat: ChatServer; traffic: { stop(): Promise<void> } }> {
    const chat = await fx.start('js', options);
    handle = await serveMetrics(chat, { port: metricsPort });
    const list = await fx.clientsN(clients);
    await Promise.all(list.map((c, i) => c.join(`player${i}`, i % 3)));
    return { chat, traffic: load(list) };
  }

  async function open(): Promise<{ page: Page; problems: string[] }> {
    const page = await (browser as BrowserContext).newPage();
    const problems: string[] = [];
    page.on('console', (msg) => {
      if (msg.type() === 'error' || msg.type() === 'warning') problems.push(`${msg.type()}: ${msg.text()}`);
    });
    page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
    await page.goto(`http://127.0.0.1:${(handle as MetricsHandle).address().port}/`);
    return { page, problems };
  }

  it('reconnects when the server restarts under it, and the figures go on', async () => {
    let { traffic } = await loaded(6);
    const { page, problems } = await open();
    const w = watch(page);
    const first = await w.waitSamples(3);
    expect(first.last?.notifiesPerSecond).toBeGreaterThan(50);

    // Down for a few polls, then back on the same port with a new process start.
    const metricsPort = (handle as MetricsHandle).address().port;
    await traffic.stop();
    await stopServer();
    const down = await w.state();
    await sleep(2500);
    const whileDown = await w.state();
    expect(whileDown.samples).toBe(down.samples);
    expect(whileDown.errors).toBeGreaterThan(down.errors);
    expect(await page.textContent('#status')).toMatch(/no answer/);

    ({ traffic } = await loaded(9, metricsPort));
    let back: DashboardState;
    try {
      back = await w.waitSamples(whileDown.samples + 4);
    } finally {
      await traffic.stop();
    }
    expect(back.resets).toBe(1);
    expect(back.last?.connections).toBe(9);
    expect(back.last?.notifiesPerSecond).toBeGreaterThan(50);
    expect(back.last?.packetsInPerSecond).toBeGreaterThan(20);
    expect(await page.textContent('#status')).toBe('live');
    expect(Number(await page.textContent('#t-connections'))).toBe(9);
    const rates = await page.evaluate<Array<number | null>>('window.__dashboard.rates');
    expect(rates.every((r) => r === null || r >= 0)).toBe(true);
    expect(await w.badNumbers()).toBe(0);
    // The restart is one empty point on the charts, then the new server's figures.
    const packetsIn = await page.evaluate<Array<number | null>>('window.__dashboard.series.in');
    const tail = packetsIn.slice(-(back.samples - whileDown.samples + 1));
    expect(tail[0]).toBeNull();
    expect(tail.slice(2).every((v) => v !== null && v > 0)).toBe(true);
    // While the server was down the page's requests failed, which the browser reports; nothing else.
    expect(problems.filter((p) => !/ERR_CONNECTION_REFUSED|Failed to load resource/.test(p))).toEqual([]);
    await page.close();
    await stopServer();
  });

  /** Checks a return from the background: one sample at once, one gap, no burst of polls, no NaN, the load's rate again. */
  async function expectCaughtUp(page: Page, before: DashboardState, awayMs: number): Promise<void> {
    const w = watch(page);
    const back = await w.waitSamples(before.samples + 1);
    const caught = await w.waitSamples(back.samples + 3);
    expect(caught.gaps).toBe(before.gaps + 1);
    expect(caught.resets).toBe(before.resets);
    // One poll per sample after the return: nothing queued up while away fired at once.
    expect(caught.polls - before.polls).toBe(caught.samples - before.samples);
    const times = caught.times.slice(-(caught.samples - before.samples + 1));
    expect(times[1] - times[0]).toBeGreaterThanOrEqual(awayMs - 500);
    for (let i = 2; i < times.length; i++) expect(times[i] - times[i - 1], 'the samples after the return are a period apart').toBeGreaterThan(500);
    expect(await w.badNumbers()).toBe(0);
    const notifies = await page.evaluate<Array<number | null>>('window.__dashboard.series.notifies');
    const tail = notifies.slice(-(caught.samples - before.samples + 2));
    // The point before the gap, the gap, then the first sample (no rate over the absence), then rates again.
    expect(tail[1]).toBeNull();
    expect(tail[2]).toBeNull();
    expect(tail.slice(3).every((v) => v !== null && v > 20)).toBe(true);
    expect(caught.last?.notifiesPerSecond).toBeGreaterThan(20);
  }

  it('catches up after the tab was hidden, and polls nothing while hidden', async () => {
    const { traffic } = await loaded(6);
    const { page, problems } = await open();
    const w = watch(page);
    await w.waitSamples(3);
    const setHidden = (hidden: boolean): Promise<unknown> =>
      page.evaluate(`Object.defineProperty(document, 'hidden', { configurable: true, get: () => ${hidden} });
        Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => '${hidden ? 'hidden' : 'visible'}' });
        document.dispatchEvent(new Event('visibilitychange'));`);
    await setHidden(true);
    await sleep(300); // a poll in flight lands
    const hidden = await w.state();
    await sleep(3000);
    const stillHidden = await w.state();
    expect(stillHidden.polls).toBe(hidden.polls);
    expect(stillHidden.samples).toBe(hidden.samples);
    await setHidden(false);
    try {
      await expectCaughtUp(page, stillHidden, 3000);
    } finally {
      await traffic.stop();
    }
    expect(problems).toEqual([]);
    await page.close();
    await stopServer();
  });

  it('catches up after its script was stopped for a while, as in a frozen tab', async () => {
    const { traffic } = await loaded(6);
    const { page, problems } = await open();
    const w = watch(page);
    try {
      await w.waitSamples(3);
      // Headless chromium ignores Page.setWebLifecycleState('frozen') for a visible page (it keeps polling), so
      // the freeze is the debugger's: no script runs until it resumes, and then the overdue timer fires at once.
      const cdp = await page.context().newCDPSession(page);
      await cdp.send('Debugger.enable');
      const before = await w.state();
      const paused = new Promise<void>((resolve) => cdp.once('Debugger.paused', () => resolve()));
      await cdp.send('Debugger.pause');
      await paused;
      await sleep(4000);
      await cdp.send('Debugger.resume');
      await cdp.send('Debugger.disable');
      await expectCaughtUp(page, before, 3000);
      expect(problems).toEqual([]);
      await cdp.detach();
    } finally {
      await traffic.stop();
      await page.close();
      await stopServer();
    }
  });
});

describe.skipIf(!redisServerAvailable() || !fs.existsSync(CHROMIUM))('dashboard of a cluster node', () => {
  it("shows the node's id", async () => {
    const redis = await RedisServer.start();
    const fx = new ChatFixture();
    let handle: MetricsHandle | undefined;
    const browser = await launchChromium({ width: 1280, height: 860 });
    try {
      const chat = await fx.start('js', { cluster: { redis: redis.url, nodeId: 'dash-node-1', prefix: 'dash-test:' } });
      handle = await serveMetrics(chat, { port: 0 });
      const page = await browser.context.newPage();
      await page.goto(`http://127.0.0.1:${handle.address().port}/`);
      await watch(page).waitSamples(1);
      expect(await page.textContent('#node-id')).toBe('dash-node-1');
    } finally {
      await browser.close();
      await handle?.close();
      await fx.dispose();
      await redis.stop();
    }
  });
});
