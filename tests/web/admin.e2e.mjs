// The admin page (/admin) in real headless Chromium against a real dev host, with real
// streams opened from Node: a company ADMIN sees its company's streams (and no other
// company's), disconnects one and revokes a user, and each stream hears `closing` with
// reason `revoked` and ends; a super-admin sees every company and can filter to one;
// attacker-chosen subjects render as text.
//
// Run with: node --test tests/web/admin.e2e.mjs   (tests/run.sh sets SSE_HOST_BIN)
// With SSE_SCREENSHOT_DIR set, a full-page screenshot goes to $SSE_SCREENSHOT_DIR/admin.png.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createParser } from '../../host/web/sse-parser.js';
import { hostAndBrowser, until } from './harness.mjs';

const env = hostAndBrowser();
const HOSTILE = '<img src=x onerror=alert(1)>';

/** A dev token (dev hosts only) for `company`, `role` and subject `sub`. */
async function devToken(company, role, sub) {
  const q = new URLSearchParams({ company, role, ...(sub ? { sub } : {}) });
  const res = await fetch(`${env.host.base}/dev/token?${q}`);
  assert.equal(res.status, 200, `dev token for ${company}/${role}`);
  return (await res.json()).token;
}

/** Rejects when `promise` has not settled within `ms` (a clear failure, not a hang). */
function within(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms)));
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * An SSE stream opened from Node as `sub` of `company`: its events as they arrive, a
 * promise of the first event matching a test, and a promise of its end.
 * Resolves once the host sent `connected` (the stream is registered).
 */
async function openStream(company, sub, channel = 'dashboard-updates') {
  const token = await devToken(company, 'VIEWER', sub);
  const ctrl = new AbortController();
  const url = `${env.host.base}/sse/stream?${new URLSearchParams({ companyId: company, channel })}`;
  const res = await fetch(url, { headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' }, signal: ctrl.signal });
  assert.equal(res.status, 200, `stream for ${company}/${sub}: ${res.status}`);
  /** @type {{ type: string, data: any }[]} */
  const events = [];
  const waiters = new Set();
  const parser = createParser({
    onEvent: (e) => {
      let data = e.data;
      try {
        data = JSON.parse(e.data);
      } catch {
        /* not JSON */
      }
      events.push({ type: e.type, data });
      for (const w of [...waiters]) w();
    },
  });
  /** Resolves with the first event (seen or to come) for which `match` holds. */
  const next = (match) =>
    new Promise((resolve) => {
      const check = () => {
        const found = events.find(match);
        if (found) {
          waiters.delete(check);
          resolve(found);
        }
      };
      waiters.add(check);
      check();
    });
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  const ended = (async () => {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return 'ended';
      parser.feed(decoder.decode(value, { stream: true }));
    }
  })().catch((err) => (ctrl.signal.aborted ? 'aborted' : `failed: ${err}`));
  await within(next((e) => e.type === 'connected'), 10_000, `${company}/${sub} connected`);
  return { token, url, events, next, ended, close: () => ctrl.abort() };
}

/** The stream heard `closing` with reason `revoked`, then the host ended it. */
async function revokedAndEnded(stream, what) {
  const closing = await within(stream.next((e) => e.type === 'closing'), 10_000, `${what}: closing`);
  assert.equal(closing.data?.reason, 'revoked', `${what}: closing reason`);
  assert.equal(await within(stream.ended, 10_000, `${what}: end of stream`), 'ended', `${what}: the host ended the stream`);
}

/** A page on /admin signed in with a dev token through the page's own button. */
async function adminPage(context, company, role) {
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('dialog', (d) => {
    problems.push(`dialog: ${d.message()}`);
    d.dismiss().catch(() => {});
  });
  await page.goto(`${env.host.base}/admin`);
  await page.getByTestId('dev-company').fill(company);
  await page.getByTestId('dev-role').selectOption(role);
  await page.getByTestId('dev-token').click();
  return { page, problems };
}

const total = (page, n) => page.getByTestId('total-connections').filter({ hasText: new RegExp(`^${n}$`) }).waitFor({ timeout: 15_000 });
const rows = (page, company) => page.locator(`[data-testid="connection-row"]${company ? `[data-company-id="${company}"]` : ''}`);
const rowOf = (page, subject) => rows(page).filter({ has: page.locator('td:nth-child(4)', { hasText: new RegExp(`^${subject}$`) }) });

async function screenshot(page) {
  const dir = process.env.SSE_SCREENSHOT_DIR;
  if (!dir) return;
  mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: join(dir, 'admin.png'), fullPage: true });
}

test('an acme admin sees only acme, disconnects a stream and revokes a user', { timeout: 120_000 }, async () => {
  const one = await openStream('acme', 'user-1', 'dashboard-updates');
  const two = await openStream('acme', 'user-2', 'report-updates');
  const other = await openStream('globex', 'user-9', 'dashboard-updates');
  const context = await env.browser.newContext();
  try {
    const { page, problems } = await adminPage(context, 'acme', 'ADMIN');
    await total(page, 2);
    await until('two connection rows', async () => (await rows(page).count()) === 2);
    assert.equal(await rows(page, 'globex').count(), 0, "an acme admin sees no globex stream");
    assert.deepEqual(await page.getByTestId('company-count').evaluateAll((trs) => trs.map((tr) => tr.dataset.name)), ['acme']);
    const channels = await page.getByTestId('channel-count').evaluateAll((trs) => trs.map((tr) => [tr.dataset.name, tr.lastElementChild.textContent]).sort());
    assert.deepEqual(channels, [['dashboard-updates', '1'], ['report-updates', '1']]);

    // Disconnect one stream by its row.
    await rowOf(page, 'user-1').getByTestId('disconnect-connection').click();
    await revokedAndEnded(one, 'user-1');
    await total(page, 1);
    await page.getByTestId('admin-status').filter({ hasText: /Disconnected .*1 connection ended/ }).waitFor({ timeout: 10_000 });
    assert.equal(await rowOf(page, 'user-1').count(), 0);
    assert.equal(await rowOf(page, 'user-2').count(), 1, 'the other stream is still open');
    assert.equal(other.events.some((e) => e.type === 'closing'), false, 'globex is untouched');

    // Revoke a user: the stream ends, the revocation is listed, the old token is refused.
    await page.getByTestId('revoke-subject').fill('user-2');
    await page.getByTestId('revoke-submit').click();
    await revokedAndEnded(two, 'user-2');
    await page.getByTestId('revocation-row').filter({ hasText: 'user-2' }).waitFor({ timeout: 10_000 });
    await total(page, 0);
    await page.getByTestId('admin-status').filter({ hasText: /Revoked user-2 in acme/ }).waitFor({ timeout: 10_000 });
    const again = await fetch(two.url, { headers: { authorization: `Bearer ${two.token}`, accept: 'text/event-stream' } });
    assert.equal(again.status, 401, 'the revoked token opens no new stream');
    assert.equal((await again.json()).error, 'UNAUTHORIZED');
    assert.deepEqual(problems, []);
  } finally {
    for (const s of [one, two, other]) s.close();
    await context.close();
  }
});

test('a super-admin sees every company and filters to one; a company admin sees only its own', { timeout: 120_000 }, async () => {
  const initech = await openStream('initech', 'peter', 'dashboard-updates');
  const umbrella = await openStream('umbrella', 'alice', 'evidence-updates');
  const umbrella2 = await openStream('umbrella', 'carlos', 'report-updates');
  const context = await env.browser.newContext();
  try {
    const sup = await adminPage(context, 'initech', 'SUPER_ADMIN');
    await rows(sup.page, 'initech').first().waitFor({ timeout: 15_000 });
    await until('both umbrella rows', async () => (await rows(sup.page, 'umbrella').count()) === 2);
    await screenshot(sup.page);

    await sup.page.getByTestId('filter-company').fill('umbrella');
    await sup.page.getByTestId('filter-company').press('Enter');
    await until('only umbrella rows', async () => (await rows(sup.page, 'initech').count()) === 0 && (await rows(sup.page, 'umbrella').count()) === 2);
    await total(sup.page, 2);

    const admin = await adminPage(context, 'initech', 'ADMIN');
    await rows(admin.page, 'initech').first().waitFor({ timeout: 15_000 });
    // One answer renders every row at once: with initech's row shown, umbrella's would be too.
    assert.equal(await rows(admin.page, 'umbrella').count(), 0, 'an initech admin sees no umbrella stream');
    assert.deepEqual(await admin.page.getByTestId('company-count').evaluateAll((trs) => trs.map((tr) => tr.dataset.name)), ['initech']);

    // Asking for another company is refused, and the page says why.
    await admin.page.getByTestId('filter-company').fill('umbrella');
    await admin.page.getByTestId('filter-company').press('Enter');
    await admin.page.getByTestId('admin-error').filter({ hasText: /^FORBIDDEN/ }).waitFor({ timeout: 10_000 });
    assert.deepEqual([...sup.problems, ...admin.problems], []);
  } finally {
    for (const s of [initech, umbrella, umbrella2]) s.close();
    await context.close();
  }
});

test('attacker-chosen subjects and channels render as text', { timeout: 60_000 }, async () => {
  const hostile = await openStream('hooli', HOSTILE, 'dashboard-updates');
  const context = await env.browser.newContext();
  try {
    const { page, problems } = await adminPage(context, 'hooli', 'ADMIN');
    const row = rows(page, 'hooli').first();
    await row.waitFor({ timeout: 15_000 });
    assert.equal(await row.locator('td').nth(3).textContent(), HOSTILE);
    assert.equal(await row.getAttribute('data-subject'), HOSTILE);
    assert.equal(await page.locator('main img').count(), 0, 'no element was made from the subject');
    // "Disconnect user" sends the subject as data, and it matches.
    await row.getByTestId('disconnect-subject').click();
    await revokedAndEnded(hostile, 'hostile subject');
    await total(page, 0);
    assert.deepEqual(problems, [], 'no script ran, no dialog opened');
  } finally {
    hostile.close();
    await context.close();
  }
});
