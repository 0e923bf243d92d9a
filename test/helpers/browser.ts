import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';

/** Debian's chromium; .ci/run installs it. No browser is downloaded. */
export const CHROMIUM = '/usr/bin/chromium';

/** A headless chromium with a fresh profile; close() also removes the profile. */
export interface Browser {
  readonly context: BrowserContext;
  /** The profile directory (a place for screenshots that are not kept). */
  readonly userDataDir: string;
  close(): Promise<void>;
}

/** Launches Debian's chromium headless through playwright-core, with a fresh profile. */
export async function launchChromium(viewport: { width: number; height: number }): Promise<Browser> {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install chromium (.ci/run does)`);
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'iocpnet-chromium-'));
  // A fresh profile: playwright passes it to chromium as --user-data-dir.
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    // The browser is not the code under test: no sanitizer runtime preloaded into it (test:asan sets LD_PRELOAD).
    env: Object.fromEntries(Object.entries(process.env).filter(([k, v]) => k !== 'LD_PRELOAD' && v !== undefined)),
    headless: true,
    viewport,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  return {
    context,
    userDataDir,
    async close() {
      await context.close();
      fs.rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}
