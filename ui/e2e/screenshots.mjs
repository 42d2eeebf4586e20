// Screenshots of every page of a running system (e.g. `make run`), logged in
// as an existing user, at desktop and phone widths.
// BASE_URL, EMAIL, PASSWORD, OUT (default ../docs/screenshots).
import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const BASE = (process.env.BASE_URL || 'http://127.0.0.1:8080').replace(/\/+$/, '');
const OUT = resolve(process.env.OUT || join(here, '..', '..', 'docs', 'screenshots'));
const EMAIL = process.env.EMAIL || 'demo@autonomos.local';
const PASSWORD = process.env.PASSWORD || 'autonomos-demo';
const pages = [['home', '/'], ['dcl', '/live'], ['monitor', '/monitor'], ['ontology', '/ontology'],
  ['drift', '/drift'], ['connections', '/connections'], ['upload', '/upload']];
const sizes = [['desktop', { width: 1280, height: 800 }], ['phone', { width: 390, height: 844 }]];

mkdirSync(OUT, { recursive: true });
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  for (const [size, viewport] of sizes) {
    const ctx = await browser.newContext({ viewport });
    const page = await ctx.newPage();
    await page.goto(BASE + '/login');
    await page.getByLabel('Email').fill(EMAIL);
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: /sign in/i }).click();
    await page.waitForURL((u) => !u.pathname.startsWith('/login'));
    for (const [name, path] of pages) {
      await page.goto(BASE + path);
      await page.waitForLoadState('networkidle').catch(() => {});
      await page.waitForTimeout(1500);
      await page.screenshot({ path: join(OUT, `${name}-${size}.png`), fullPage: true });
      console.log(`screenshot ${name}-${size}.png`);
    }
    await ctx.close();
  }
} finally {
  await browser.close();
}
