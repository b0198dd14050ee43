// The dashboard in real headless Chromium against a real dev host: connect, receive,
// survive a host restart (reset), fall back to polling when the stream is blocked and
// return to SSE. Screenshots of each state go to tests/artifacts/.
//
// Run with: node --test tests/web/browser.e2e.mjs   (tests/run.sh sets SSE_HOST_BIN)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { artifacts, hostAndBrowser } from './harness.mjs';

const env = hostAndBrowser();
const publish = (data) => env.host.publish(data);

const status = (page) => page.locator('#status');
const shot = (page, name) => page.screenshot({ path: join(artifacts, `dashboard-${name}.png`) });

test('the dashboard connects, receives, survives a restart and falls back to polling', async () => {
  const page = await env.browser.newPage();
  await page.goto(`${env.host.base}/?pollInterval=300&probeInterval=1500`);
  await assert.doesNotReject(status(page).filter({ hasText: /^Connected$/ }).waitFor({ timeout: 10_000 }));
  await shot(page, '1-connected');

  const first = await publish({ metric: 'SROI', value: 2.5 });
  await page.locator(`#feed li[data-id="${first}"]`).waitFor({ timeout: 10_000 });

  // The host goes away: the page shows it is reconnecting.
  await env.host.stop();
  await page.locator('#status[data-status="reconnecting"]').waitFor({ timeout: 10_000 });
  await shot(page, '2-reconnecting');
  // A restarted memory-backed host has a new epoch: the client is told to reset.
  await env.host.start();
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
  const page = await env.browser.newPage();
  await page.goto(`${env.host.base}/`);
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

test('the feed is a bounded log: 200 entries kept, newest first', async () => {
  const page = await env.browser.newPage();
  await page.goto(`${env.host.base}/`);
  await status(page).filter({ hasText: /^Connected$/ }).waitFor({ timeout: 10_000 });
  assert.equal(await page.locator('#feed').getAttribute('role'), 'log');
  const { token } = await (await fetch(`${env.host.base}/dev/token?company=test-company&role=PUBLISHER`)).json();
  let last;
  for (const size of [100, 100, 10]) {
    const events = Array.from({ length: size }, (_, n) => ({ companyId: 'test-company', channel: 'dashboard-updates', type: 'dashboard-update', data: { n } }));
    const res = await fetch(`${env.host.base}/sse/publish`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ events }),
    });
    const body = await res.text();
    assert.equal(res.status, 200, body);
    last = JSON.parse(body).ids.at(-1);
  }
  await page.locator(`#feed li[data-id="${last}"]`).waitFor({ timeout: 10_000 });
  assert.equal(await page.locator('#count').textContent(), '210', 'every event was counted');
  assert.equal(await page.locator('#feed li').count(), 200, 'the page keeps the newest 200');
  assert.equal(await page.locator('#feed li').first().getAttribute('data-id'), last);
  await page.close();
});
