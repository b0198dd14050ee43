// One stream per browser: two tabs of the dashboard share one connection at the host
// (counted by /sse/stats) and both show every event; closing the leader tab hands the
// stream to the other, which resumes from its last ID without loss or duplicates.
//
// Run with: node --test tests/web/tabs.e2e.mjs   (tests/run.sh sets SSE_HOST_BIN)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { artifacts, hostAndBrowser, until } from './harness.mjs';

const env = hostAndBrowser();

const connected = (page) => page.locator('#status[data-status="connected"]').waitFor({ timeout: 15_000 });
const shown = (page, id) => page.locator(`#feed li[data-id="${id}"]`).waitFor({ timeout: 10_000 });
const role = async (page) => ((await page.locator('#details').textContent()) ?? '').match(/(leader|follower) tab/)?.[1];
const feedIds = (page) => page.locator('#feed li').evaluateAll((lis) => lis.map((li) => li.dataset.id));

test('two tabs share one stream; closing the leader hands over without loss', async () => {
  const context = await env.browser.newContext();
  const a = await context.newPage();
  await a.goto(`${env.host.base}/`);
  await connected(a);
  const b = await context.newPage();
  await b.goto(`${env.host.base}/`);
  await connected(b);
  assert.equal(await env.host.connections(), 1, 'two tabs, one stream at the host');
  assert.deepEqual([await role(a), await role(b)], ['leader', 'follower']);

  const first = await env.host.publish({ n: 1 });
  await shown(a, first);
  await shown(b, first);
  await b.screenshot({ path: join(artifacts, 'tabs-1-follower.png') });

  // The leader goes away; events published meanwhile come back through the new leader's
  // resume from the last ID it saw.
  await a.close();
  const during = [await env.host.publish({ n: 2 }), await env.host.publish({ n: 3 })];
  await until('the follower to lead', async () => (await role(b)) === 'leader');
  const after = await env.host.publish({ n: 4 });
  for (const id of [...during, after]) await shown(b, id);
  const ids = await feedIds(b);
  for (const id of [first, ...during, after]) assert.equal(ids.filter((x) => x === id).length, 1, `${id} shown exactly once`);
  await until('one stream at the host', async () => (await env.host.connections()) === 1);
  await b.screenshot({ path: join(artifacts, 'tabs-2-handed-over.png') });

  // Opting out: a tab with ?shared=0 opens its own stream.
  const c = await context.newPage();
  await c.goto(`${env.host.base}/?shared=0`);
  await connected(c);
  await until('two streams at the host', async () => (await env.host.connections()) === 2);
  await context.close();
});
