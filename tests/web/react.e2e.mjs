// The seed's React example in real Chromium with real React 18 (pinned from npm):
// <DashboardWithSSE> + widgets calling useDashboardUpdate under StrictMode receive
// events; the status components move through connecting, connected, reconnecting and
// failed, and "Retry now" brings them back. Screenshots go to tests/artifacts/.
//
// Run with: node --test tests/web/react.e2e.mjs   (tests/run.sh sets SSE_HOST_BIN)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { artifacts, hostAndBrowser, serveReactFromNpm } from './harness.mjs';

const env = hostAndBrowser();

const shot = (page, name) => page.screenshot({ path: join(artifacts, `react-${name}.png`) });
const badge = (page, status) => page.locator(`header [role="status"][data-status="${status}"]`);
const count = (page, widget) => page.locator(`[data-widget="${widget}"]`).getAttribute('data-count');

test('provider and child widgets receive events; the status components follow the connection', async () => {
  const context = await env.browser.newContext();
  await serveReactFromNpm(context);
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  // Record every status the badge shows, including the brief `connecting`.
  await page.addInitScript(() => {
    window.__statuses = [];
    new MutationObserver(() => {
      const s = document.querySelector('header [role="status"]')?.getAttribute('data-status');
      if (s && window.__statuses.at(-1) !== s) window.__statuses.push(s);
    }).observe(document, { subtree: true, childList: true, attributes: true });
  });
  await page.goto(`${env.host.base}/react?maxRetries=1&retryDelay=200&polling=0`);
  await badge(page, 'connected').waitFor({ timeout: 15_000 });
  await shot(page, '1-connected');

  await env.host.publish({ widgets: ['sroi'], reason: 'volunteer_hours_updated' });
  await page.locator('[data-widget="sroi"][data-count="1"]').waitFor({ timeout: 10_000 });
  await page.locator('[data-widget="q2q"][data-count="1"]').waitFor({ timeout: 10_000 });
  assert.equal(await count(page, 'vis'), '0', 'the VIS widget ignores an update for SROI');
  await env.host.publish({ widgets: ['vis'] });
  await page.locator('[data-widget="vis"][data-count="1"]').waitFor({ timeout: 10_000 });
  assert.equal(await count(page, 'sroi'), '1');

  await env.host.stop();
  await badge(page, 'reconnecting').waitFor({ timeout: 10_000 });
  await shot(page, '2-reconnecting');
  await badge(page, 'failed').waitFor({ timeout: 15_000 });
  const retry = page.getByRole('button', { name: 'Retry now' });
  await retry.waitFor({ timeout: 5_000 });
  await shot(page, '3-failed');

  await env.host.start();
  await retry.click();
  await badge(page, 'connected').waitFor({ timeout: 15_000 });
  await env.host.publish({ widgets: ['sroi'] });
  await page.locator('[data-widget="sroi"][data-count="2"]').waitFor({ timeout: 10_000 });
  await shot(page, '4-retried');

  const statuses = await page.evaluate(() => window.__statuses);
  // Before the first effect runs the badge shows `disconnected`; after that, never again.
  const from = statuses.indexOf('connecting');
  assert.deepEqual(statuses.slice(from, from + 2), ['connecting', 'connected'], `${statuses}`);
  assert.ok(!statuses.slice(from).includes('disconnected'), `${statuses}`);
  for (const s of ['reconnecting', 'failed']) assert.ok(statuses.includes(s), `${s} in ${statuses}`);
  assert.deepEqual(errors, [], 'no page errors');
  await context.close();
});
