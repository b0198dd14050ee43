// What the browser tests share: a real dev sse-host on a free loopback port, Debian's
// Chromium, and a publish helper. Each test file starts its own and stops it.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { before, after } from 'node:test';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
export const artifacts = join(here, '..', 'artifacts');
const CHROMIUM = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium';
const HOST_BIN = process.env.SSE_HOST_BIN ?? join(process.env.CARGO_TARGET_DIR ?? join(process.env.HOME, '.cache/sse-edge/target'), 'debug/sse-host');

async function freePort() {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
  });
}

/** A dev host that can be killed and started again on the same port and secrets. */
export async function devHost() {
  assert.ok(existsSync(HOST_BIN), `${HOST_BIN} is missing: cargo build -p sse-host (or set SSE_HOST_BIN)`);
  const devDir = mkdtempSync(join(tmpdir(), 'sse-browser-'));
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  let child = null;
  const host = {
    port,
    base,
    async start() {
      child = spawn(HOST_BIN, ['serve', '--dev', '--listen', `127.0.0.1:${port}`], {
        env: { ...process.env, SSE_HOST_DEV_DIR: devDir, RUST_LOG: 'warn' },
        stdio: ['ignore', 'ignore', 'inherit'],
      });
      for (let i = 0; i < 200; i++) {
        try {
          if ((await fetch(`${base}/healthz`)).ok) return;
        } catch {
          /* not up yet */
        }
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error('sse-host did not start');
    },
    async stop() {
      if (!child || child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await exited;
    },
    /** Publishes a dashboard update through the dev test-broadcast; returns its ID. */
    async publish(data, company = 'test-company') {
      const res = await fetch(`${base}/sse/test-broadcast`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ companyId: company, channel: 'dashboard-updates', type: 'dashboard-update', data }),
      });
      assert.equal(res.status, 200);
      return (await res.json()).id;
    },
    /** Open streams of a company, from `/sse/stats` with a company ADMIN's token. */
    async connections(company = 'test-company') {
      const { token } = await (await fetch(`${base}/dev/token?company=${company}&role=ADMIN`)).json();
      const stats = await (await fetch(`${base}/sse/stats`, { headers: { authorization: `Bearer ${token}` } })).json();
      return stats.totalConnections;
    },
    async close() {
      await host.stop();
      rmSync(devDir, { recursive: true, force: true });
    },
  };
  await host.start();
  return host;
}

export async function launchChromium() {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install -y chromium (or set CHROMIUM_BIN)`);
  mkdirSync(artifacts, { recursive: true });
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/** Serves the pinned React UMD files from node_modules where a page asks unpkg for them. */
export async function serveReactFromNpm(context) {
  const files = {
    'react@18.3.1/umd/react.production.min.js': join(here, 'node_modules/react/umd/react.production.min.js'),
    'react-dom@18.3.1/umd/react-dom.production.min.js': join(here, 'node_modules/react-dom/umd/react-dom.production.min.js'),
  };
  await context.route('https://unpkg.com/**', (route) => {
    const path = new URL(route.request().url()).pathname.slice(1);
    const file = files[path];
    if (!file) return route.abort();
    return route.fulfill({ status: 200, contentType: 'text/javascript', headers: { 'access-control-allow-origin': '*' }, body: readFileSync(file) });
  });
}

/** Resolves once `probe()` returns a truthy value, polling an event source we do not own. */
export async function until(what, probe, timeoutMs = 10_000) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Registers hooks that start a dev host and Chromium before a file's tests and stop
 *  them after; the returned object holds them once started. */
export function hostAndBrowser() {
  const env = { host: /** @type {any} */ (null), browser: /** @type {any} */ (null) };
  before(async () => {
    env.host = await devHost();
    env.browser = await launchChromium();
  });
  after(async () => {
    await env.browser?.close();
    await env.host?.close();
  });
  return env;
}
