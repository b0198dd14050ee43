// Browsers over TLS and HTTP/2, as users deploy it: Chromium, trusting a test
// certificate by its key (not by skipping checks), opens the dashboard on the host's own
// TLS and through Envoy's TLS listener; seven streams plus API calls proceed at once over
// ONE HTTP/2 connection (each response's connection ID and protocol, from Chromium's
// DevTools protocol). Over HTTP/1.1 the seventh request would wait for a free
// connection, as Chromium allows six per origin.
//
// Run with: node --test tests/web/tls.e2e.mjs   (tests/run.sh sets SSE_HOST_BIN and
// SSE_FILTER_WASM)
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { artifacts, devCert, devHost, launchChromium, startEnvoy } from './harness.mjs';

const dir = mkdtempSync(join(tmpdir(), 'sse-browser-tls-'));
const cert = devCert(dir);
const cleanup = [];
after(async () => {
  for (const fn of cleanup.reverse()) await fn();
  rmSync(dir, { recursive: true, force: true });
});

const CHANNELS = [['dashboard-updates'], ['evidence-updates'], ['report-updates'], ['dashboard-updates', 'evidence-updates'], ['dashboard-updates', 'report-updates'], ['evidence-updates', 'report-updates']];

/** Every response `page` receives: its URL, protocol and connection (DevTools protocol). */
async function recordResponses(page) {
  const cdp = await page.context().newCDPSession(page);
  const responses = [];
  cdp.on('Network.responseReceived', (e) => responses.push({ url: e.response.url, protocol: e.response.protocol, connection: e.response.connectionId }));
  await cdp.send('Network.enable');
  return responses;
}

/**
 * On `page` (the dashboard, connected): six more clients, each its own stream, then
 * API calls while all seven are open, then a publish every dashboard stream receives.
 * Returns what each response came over.
 */
async function sevenStreamsAndApiCalls(page, responses) {
  const received = await page.evaluate(async (channelSets) => {
    const { createSSEClient } = await import('/web/sse-client.js');
    const token = (await (await fetch('/dev/token?company=test-company&role=VIEWER')).json()).token;
    const clients = channelSets.map((channel) => createSSEClient({ companyId: 'test-company', channel, token, shared: false }));
    await Promise.all(clients.map((c) => new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`stream ${c.getState().status}`)), 10000);
      c.subscribe('connected', () => (clearTimeout(t), resolve()));
      c.connect();
    })));
    // Seven streams open: these would queue behind them over HTTP/1.1.
    const api = await Promise.all([fetch('/healthz'), fetch('/readyz'), fetch('/web/package.json')]);
    if (!api.every((r) => r.ok)) throw new Error('an API call failed');
    const got = clients.map(() => 0);
    clients.forEach((c, i) => c.subscribe('dashboard-update', () => got[i]++));
    const res = await fetch('/sse/test-broadcast', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ companyId: 'test-company', channel: 'dashboard-updates', type: 'dashboard-update', data: { over: 'h2' } }),
    });
    if (!res.ok) throw new Error(`publish ${res.status}`);
    const deadline = Date.now() + 10000;
    while (got.filter((n) => n > 0).length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    clients.forEach((c) => c.destroy());
    return got;
  }, CHANNELS);
  assert.deepEqual(received, CHANNELS.map((c) => (c.includes('dashboard-updates') ? 1 : 0)), 'each dashboard stream got the update once');
  const ours = responses.filter((r) => r.url.startsWith(new URL(page.url()).origin));
  assert.ok(ours.filter((r) => r.url.includes('/sse/stream')).length >= 7, `${ours.length} responses`);
  assert.deepEqual([...new Set(ours.map((r) => r.protocol))], ['h2'], 'every response over HTTP/2');
  assert.equal(new Set(ours.map((r) => r.connection)).size, 1, `one connection: ${JSON.stringify(ours)}`);
}

test("the dashboard on the host's own TLS: seven streams and API calls over one HTTP/2 connection", async () => {
  const host = await devHost({ tls: cert });
  cleanup.push(() => host.close());
  const browser = await launchChromium([cert.trust]);
  cleanup.push(() => browser.close());
  const page = await browser.newPage();
  const responses = await recordResponses(page);
  await page.goto(`https://localhost:${host.port}/`);
  await page.locator('#status[data-status="connected"]').waitFor({ timeout: 15_000 });
  await sevenStreamsAndApiCalls(page, responses);
  await page.screenshot({ path: join(artifacts, 'tls-1-host.png') });
  const metrics = await page.evaluate(async () => (await fetch('/metrics')).text());
  assert.match(metrics, /sse_http_connections_total\{protocol="h2",tls="true"\} 1\b/, 'the host served one TLS connection');
});

test("the dashboard through Envoy's TLS listener: seven streams and API calls over one HTTP/2 connection", async () => {
  const host = await devHost({ edge: 'envoy' });
  cleanup.push(() => host.close());
  const envoy = await startEnvoy(host, dir);
  cleanup.push(() => envoy.stop());
  host.publishBase = envoy.plain;
  const browser = await launchChromium([cert.trust]);
  cleanup.push(() => browser.close());
  const page = await browser.newPage();
  const responses = await recordResponses(page);
  await page.goto(`${envoy.tls}/`);
  await page.locator('#status[data-status="connected"]').waitFor({ timeout: 15_000 });
  const id = await host.publish({ via: 'envoy-tls' });
  await page.locator(`#feed li[data-id="${id}"]`).waitFor({ timeout: 10_000 });
  await sevenStreamsAndApiCalls(page, responses);
  await page.screenshot({ path: join(artifacts, 'tls-2-envoy.png') });
  assert.equal(await envoy.stat('http.sse_tls.downstream_cx_http1_total'), 0, 'no browser connection fell back to HTTP/1.1');
  assert.ok((await envoy.stat('http.sse_tls.downstream_cx_http2_total')) >= 1);
});
