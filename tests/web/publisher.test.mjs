// @sse-edge/publisher (host/publisher-node) against a real dev sse-host: the seed's
// helpers land on their channels, a publish whose reply is lost is retried and stored
// once, refusals are final with the host's code, an unreachable host is given up on.
import assert from 'node:assert/strict';
import { connect, createServer } from 'node:net';
import { after, before, test } from 'node:test';

import { devHost } from './harness.mjs';
import {
  Publisher,
  PublishError,
  broadcastDashboardUpdate,
  configure,
} from '../../host/publisher-node/publisher.js';

const QUICK = { attempts: 3, baseDelayMs: 10, maxDelayMs: 50, timeoutMs: 5000 };
let host;
let company = 0;

before(async () => {
  host = await devHost();
});
after(async () => host?.close());

/** A fresh company per test, so counts start at zero. */
function nextCompany() {
  company += 1;
  return `pub-${company}`;
}

async function devToken(companyId, role) {
  const res = await fetch(`${host.base}/dev/token?company=${companyId}&role=${role}`);
  return (await res.json()).token;
}

/** Polls `channel` of `companyId` as a viewer after `since` (the head when absent). */
async function poll(companyId, channel, since) {
  const token = await devToken(companyId, 'VIEWER');
  const cursor = since ? `&since=${encodeURIComponent(since)}` : '';
  const res = await fetch(`${host.base}/sse/poll?companyId=${companyId}&channel=${channel}&limit=100${cursor}`, {
    headers: { authorization: `Bearer ${token}` },
  });
  assert.equal(res.status, 200);
  return res.json();
}

/** A reader of what `channel` receives from now on: call `read()` for (id, type) pairs. */
async function watch(companyId, channel) {
  const { next } = await poll(companyId, channel);
  return {
    async read() {
      const { events, reset } = await poll(companyId, channel, next);
      assert.ok(!reset, 'no history was lost');
      return events.map((e) => [e.id, e.type]);
    },
  };
}

/**
 * A relay to the host that loses the reply of its first connection: it forwards the
 * request, waits for the host's first byte (the publish is stored by then) and closes
 * the client's socket without passing the reply on. Later connections are relayed whole.
 */
async function losingFirstReply() {
  let connections = 0;
  const open = new Set();
  const server = createServer((client) => {
    connections += 1;
    open.add(client);
    client.on('close', () => open.delete(client));
    const upstream = connect(host.port, '127.0.0.1');
    client.pipe(upstream);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    if (connections === 1) {
      upstream.once('data', () => {
        upstream.destroy();
        client.destroy();
      });
    } else {
      upstream.pipe(client);
    }
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    base: `http://127.0.0.1:${server.address().port}`,
    connections: () => connections,
    // fetch keeps connections alive for seconds: cut them rather than wait.
    close: () => {
      for (const socket of open) socket.destroy();
      return new Promise((r) => server.close(r));
    },
  };
}

test('a publish whose reply is lost is retried and stored once', async () => {
  const c = nextCompany();
  const relay = await losingFirstReply();
  const dashboard = await watch(c, 'dashboard-updates');
  try {
    const sse = new Publisher({ baseUrl: relay.base, token: await devToken(c, 'PUBLISHER'), retry: QUICK });
    const id = await sse.broadcastDashboardUpdate(c, { widgets: ['sroi'] });
    assert.ok(relay.connections() >= 2, 'the first reply was lost, so it retried');
    assert.deepEqual(await dashboard.read(), [[id, 'dashboard-update']], 'stored once');
  } finally {
    await relay.close();
  }
});

test("the seed's helpers and batches reach their channels in order", async () => {
  const c = nextCompany();
  const token = await devToken(c, 'PUBLISHER');
  const [dash, evid, rep] = await Promise.all(
    ['dashboard-updates', 'evidence-updates', 'report-updates'].map((ch) => watch(c, ch)),
  );
  configure({ baseUrl: host.base, token: async () => token });
  const dashboard = await broadcastDashboardUpdate(c, { d: 1 });
  const sse = new Publisher({ baseUrl: host.base, token });
  const evidence = await sse.broadcastEvidenceUpdate(c, { e: 1 });
  const report = await sse.broadcastReportUpdate(c, { r: 1 });
  const [ready, again] = await sse.publishBatch(c, [
    { channel: 'report-updates', type: 'report-ready', data: { report: 7 } },
    { channel: 'dashboard-updates', type: 'dashboard-update', data: { d: 2 } },
  ]);
  assert.deepEqual(await dash.read(), [[dashboard, 'dashboard-update'], [again, 'dashboard-update']]);
  assert.deepEqual(await evid.read(), [[evidence, 'evidence-update']]);
  assert.deepEqual(await rep.read(), [[report, 'report-update'], [ready, 'report-ready']]);
});

/** Requests the host refused so far, from its metrics (every attempt counts). */
async function refused() {
  const text = await (await fetch(`${host.base}/metrics`)).text();
  return text
    .split('\n')
    .filter((l) => l.startsWith('sse_denied_total'))
    .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
}

test("refusals are final and carry the host's code", async () => {
  const c = nextCompany();
  const viewer = new Publisher({ baseUrl: host.base, token: await devToken(c, 'VIEWER'), retry: QUICK });
  const before = await refused();
  await assert.rejects(viewer.broadcastDashboardUpdate(c, 1), (e) => {
    assert.ok(e instanceof PublishError);
    assert.deepEqual([e.kind, e.status, e.code], ['refused', 403, 'FORBIDDEN']);
    return true;
  });
  assert.equal((await refused()) - before, 1, 'one attempt, no retry');
  const dashboard = await watch(c, 'dashboard-updates');
  const sse = new Publisher({ baseUrl: host.base, token: await devToken(c, 'PUBLISHER') });
  const one = [{ channel: 'dashboard-updates', type: 'x', data: 1 }];
  await sse.publishBatch(c, one, { idempotencyKey: 'job-9' });
  assert.deepEqual(await sse.publishBatch(c, one, { idempotencyKey: 'job-9' }).then((ids) => ids.length), 1);
  await assert.rejects(
    sse.publishBatch(c, [{ channel: 'dashboard-updates', type: 'x', data: 2 }], { idempotencyKey: 'job-9' }),
    (e) => e.kind === 'refused' && e.status === 422 && e.code === 'IDEMPOTENCY_KEY_REUSED',
  );
  assert.equal((await dashboard.read()).length, 1);
});

test('an unreachable host is given up on after the attempts; bad options throw at once', async () => {
  const closed = await new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = s.address().port;
      s.close(() => resolve(port));
    });
  });
  const sse = new Publisher({ baseUrl: `http://127.0.0.1:${closed}`, token: 't', retry: QUICK });
  await assert.rejects(sse.broadcastDashboardUpdate('acme', 1), (e) => e.kind === 'gave-up' && e.attempts === 3);
  assert.throws(() => new Publisher({ baseUrl: 'sse.example.com', token: 't' }), (e) => e.kind === 'config');
  assert.throws(() => new Publisher({ baseUrl: 'http://x', token: 7 }), (e) => e.kind === 'config');
  assert.throws(() => new Publisher({ baseUrl: 'http://x', token: 't', retry: { attempts: NaN } }), (e) => e.kind === 'config');
  await assert.rejects(sse.publishBatch('acme', [], { idempotencyKey: 'has space' }), (e) => e.kind === 'config');
});
