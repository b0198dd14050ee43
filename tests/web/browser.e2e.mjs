// The dashboard in real headless Chromium against a real dev host: connect, receive,
// survive a host restart (reset), fall back to polling when the stream is blocked and
// return to SSE. Screenshots of each state go to tests/artifacts/.
//
// Run with: node --test tests/web/browser.e2e.mjs   (tests/run.sh sets SSE_HOST_BIN)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const artifacts = join(here, '..', 'artifacts');
const CHROMIUM = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium';
const HOST_BIN = process.env.SSE_HOST_BIN ?? join(process.env.CARGO_TARGET_DIR ?? join(process.env.HOME, '.cache/sse-edge/target'), 'debug/sse-host');
const devDir = mkdtempSync(join(tmpdir(), 'sse-browser-'));
let port;
let host;
let browser;

async function freePort() {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
  });
}

async function startHost() {
  const child = spawn(HOST_BIN, ['serve', '--dev', '--listen', `127.0.0.1:${port}`], {
    env: { ...process.env, SSE_HOST_DEV_DIR: devDir, RUST_LOG: 'warn' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  for (let i = 0; i < 200; i++) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/healthz`)).ok) return child;
    } catch {
      /* not up yet */
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('sse-host did not start');
}

async function stopHost() {
  const exited = new Promise((r) => host.once('exit', r));
  host.kill('SIGKILL');
  await exited;
}

async function publish(data) {
  const res = await fetch(`http://127.0.0.1:${port}/sse/test-broadcast`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ companyId: 'test-company', channel: 'dashboard-updates', type: 'dashboard-update', data }),
  });
  assert.equal(res.status, 200);
  return (await res.json()).id;
}

before(async () => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install -y chromium (or set CHROMIUM_BIN)`);
  assert.ok(existsSync(HOST_BIN), `${HOST_BIN} is missing: cargo build -p sse-host (or set SSE_HOST_BIN)`);
  mkdirSync(artifacts, { recursive: true });
  port = await freePort();
  host = await startHost();
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});

after(async () => {
  await browser?.close();
  if (host && host.exitCode === null) await stopHost();
  rmSync(devDir, { recursive: true, force: true });
});

const status = (page) => page.locator('#status');
const shot = (page, name) => page.screenshot({ path: join(artifacts, `dashboard-${name}.png`) });

test('the dashboard connects, receives, survives a restart and falls back to polling', async () => {
  const page = await browser.newPage();
  await page.goto(`http://127.0.0.1:${port}/?pollInterval=300&probeInterval=1500`);
  await assert.doesNotReject(status(page).filter({ hasText: /^Connected$/ }).waitFor({ timeout: 10_000 }));
  await shot(page, '1-connected');

  const first = await publish({ metric: 'SROI', value: 2.5 });
  await page.locator(`#feed li[data-id="${first}"]`).waitFor({ timeout: 10_000 });

  // The host goes away: the page shows it is reconnecting.
  await stopHost();
  await page.locator('#status[data-status="reconnecting"]').waitFor({ timeout: 10_000 });
  await shot(page, '2-reconnecting');
  // A restarted memory-backed host has a new epoch: the client is told to reset.
  host = await startHost();
  await page.locator('#feed li.reset').waitFor({ timeout: 20_000 });
  await status(page).filter({ hasText: /^Connected$/ }).waitFor({ timeout: 10_000 });
  await shot(page, '3-reconnected-after-reset');
  const second = await publish({ metric: 'SROI', value: 3 });
  await page.locator(`#feed li[data-id="${second}"]`).waitFor({ timeout: 10_000 });

  // The stream endpoint is blocked: the client falls back to polling and still receives.
  await page.route('**/sse/stream**', (route) => route.abort());
  await page.click('#connect');
  await status(page).filter({ hasText: 'Connected (polling)' }).waitFor({ timeout: 20_000 });
  const third = await publish({ metric: 'SROI', value: 4 });
  await page.locator(`#feed li[data-id="${third}"]`).waitFor({ timeout: 10_000 });
  await shot(page, '4-polling');

  // Unblocked: the next probe switches back to SSE, and live events flow again.
  await page.unroute('**/sse/stream**');
  await page.locator('#status[data-transport="sse"][data-status="connected"]').waitFor({ timeout: 20_000 });
  const fourth = await publish({ metric: 'SROI', value: 5 });
  await page.locator(`#feed li[data-id="${fourth}"]`).waitFor({ timeout: 10_000 });
  await shot(page, '5-back-to-sse');
  const ids = await page.locator('#feed li').evaluateAll((lis) => lis.map((li) => li.dataset.id));
  for (const id of [first, second, third, fourth]) {
    assert.equal(ids.filter((x) => x === id).length, 1, `${id} shown exactly once`);
  }
  await page.close();
});

test('the native EventSource transport works with the token in a cookie', async () => {
  const page = await browser.newPage();
  await page.goto(`http://127.0.0.1:${port}/`);
  await status(page).filter({ hasText: /^Connected$/ }).waitFor({ timeout: 10_000 });
  await page.selectOption('#transport', 'eventsource');
  const request = page.waitForRequest((r) => r.url().includes('/sse/stream'));
  await page.click('#connect');
  const headers = await (await request).allHeaders();
  assert.equal(headers.authorization, undefined, 'a native EventSource cannot send the header');
  assert.match(headers.cookie ?? '', /sse_token=/, 'the token travels in the cookie');
  await status(page).filter({ hasText: /^Connected$/ }).waitFor({ timeout: 10_000 });
  const id = await publish({ via: 'eventsource' });
  await page.locator(`#feed li[data-id="${id}"]`).waitFor({ timeout: 10_000 });
  await shot(page, '6-eventsource');
  await page.close();
});
