import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { afterAll, describe, expect, test } from 'vitest';
import { ROOT } from '../helpers/cli.js';

const BIN = fileURLToPath(new URL('../../bin/magwatch.js', import.meta.url));
let demo: ChildProcess | undefined;

afterAll(() => {
  demo?.kill('SIGKILL');
});

/** Starts `magwatch demo` and resolves with the dashboard URL it prints. */
function startDemo(): Promise<string> {
  return new Promise((resolve, reject) => {
    demo = spawn(process.execPath, [BIN, 'demo', '--duration', '45', '--seed', '1', '--port', '0'], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    demo.stdout!.on('data', (chunk) => {
      out += chunk;
      const match = /dashboard: (http:\/\/\S+)/.exec(out);
      if (match) resolve(match[1]!);
    });
    demo.on('exit', (code) =>
      reject(new Error(`demo exited with ${code} before serving the dashboard: ${out}`)),
    );
  });
}

describe('the demo dashboard in a browser', () => {
  test('shows the first anomaly as an event and a shaded region', async () => {
    const url = await startDemo();
    const browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    });
    try {
      const page = await browser.newPage({ viewport: { width: 1440, height: 1600 } });
      const errors: string[] = [];
      page.on('pageerror', (error) => errors.push(error.message));
      await page.goto(url);
      const event = page.locator('[data-event-id][data-kind="anomaly"]').first();
      await event.waitFor({ timeout: 40_000 });
      await expect(event.textContent()).resolves.toMatch(/OBS1/);
      // Let the charts draw the shaded region over a few more updates before the picture.
      await page.waitForTimeout(3000);
      mkdirSync(`${ROOT}/artifacts`, { recursive: true });
      await page.screenshot({ path: `${ROOT}/artifacts/demo-dashboard.png`, fullPage: true });
      expect(errors).toEqual([]);
    } finally {
      await browser.close();
    }
  }, 90_000);
});
