// Tab sharing without a browser: Node's BroadcastChannel and a Web Locks stand-in that
// grants one holder per name in request order. The real thing runs in tabs.e2e.mjs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSSEClient } from '../../host/web/sse-client.js';
import { fakeTimers, server, settle, stream } from './fakes.mjs';

/** A LockManager's `request` with exclusive locks, FIFO, and abortable waits. */
function fakeLocks() {
  const queues = new Map();
  async function grant(name) {
    const q = queues.get(name);
    if (!q?.length || q.running) return;
    q.running = true;
    const { cb, resolve } = q[0];
    try {
      resolve(await cb({ name }));
    } finally {
      q.shift();
      q.running = false;
      grant(name);
    }
  }
  return {
    request(name, opts, cb) {
      return new Promise((resolve, reject) => {
        if (!queues.has(name)) queues.set(name, []);
        const q = queues.get(name);
        const entry = { cb, resolve };
        q.push(entry);
        opts.signal?.addEventListener('abort', () => {
          const i = q.indexOf(entry);
          if (i > 0 || (i === 0 && !q.running)) {
            q.splice(i, 1);
            reject(new DOMException('aborted', 'AbortError'));
          }
        });
        grant(name);
      });
    },
  };
}

/** An unsigned JWT-shaped token: sharing reads only who it is for. */
const jwt = (sub, role = 'VIEWER') => `e30.${Buffer.from(JSON.stringify({ sub, role })).toString('base64url')}.sig`;

function tab(srv, t, locks, extra = {}) {
  const events = [];
  const c = createSSEClient({ companyId: 'acme', channel: 'dashboard-updates', token: jwt('user-1'), fetch: srv.fetch, timers: t, locks, random: () => 0.5, ...extra });
  c.subscribe('x', (e) => events.push(e.id));
  return { c, events };
}

/** Two tabs on one fake server, `a` connected first (the leader), then `b`. */
async function twoTabs(...streams) {
  const srv = server();
  const t = fakeTimers();
  const locks = fakeLocks();
  srv.script.push(...streams.map((s) => s.response));
  const a = tab(srv, t, locks);
  const b = tab(srv, t, locks);
  a.c.connect();
  await settle();
  b.c.connect();
  await settle();
  return { srv, a, b };
}

test('tabs share one stream; when the leader leaves, a follower resumes from its last ID', async () => {
  const s1 = stream();
  const s2 = stream();
  const { srv, a, b } = await twoTabs(s1, s2);
  assert.equal(srv.requests.length, 1, 'one stream for two clients');
  assert.deepEqual([a.c.getState().role, b.c.getState().role], ['leader', 'follower']);
  assert.equal(b.c.getState().status, 'connected', "the follower shows the leader's status");

  s1.send('id: e-1\nevent: x\ndata: 1\n\n');
  await settle();
  assert.deepEqual([a.events, b.events], [['e-1'], ['e-1']]);

  a.c.destroy();
  await settle();
  assert.equal(srv.requests.length, 2, 'the follower took over');
  assert.equal(srv.requests[1].headers['Last-Event-ID'], 'e-1');
  assert.equal(b.c.getState().role, 'leader');
  s2.send('id: e-1\nevent: x\ndata: 1\n\nid: e-2\nevent: x\ndata: 2\n\n');
  await settle();
  assert.deepEqual(b.events, ['e-1', 'e-2'], 'the replayed e-1 is not shown twice');
  b.c.destroy();
});

test('clients for different users or streams do not share, and shared: false opts out', async () => {
  const srv = server();
  const t = fakeTimers();
  const locks = fakeLocks();
  const clients = [
    tab(srv, t, locks),
    tab(srv, t, locks, { token: async () => jwt('user-1') }), // shares with the first
    tab(srv, t, locks, { token: async () => jwt('user-2') }),
    tab(srv, t, locks, { token: jwt('user-1', 'ADMIN') }),
    tab(srv, t, locks, { channel: ['dashboard-updates', 'report-updates'] }),
    tab(srv, t, locks, { shared: false }),
    tab(srv, t, locks, { token: 'not-a-jwt' }), // who it is for is unknown: no sharing
    tab(srv, t, locks, { token: 'not-a-jwt' }),
    tab(srv, t, locks, { token: jwt('user-2'), shareKey: 'team-a' }),
    tab(srv, t, locks, { token: jwt('user-3'), shareKey: 'team-a' }), // shares by shareKey
  ];
  srv.script.push(...clients.map(() => stream().response));
  for (const { c } of clients) c.connect();
  await settle();
  assert.equal(srv.requests.length, 8);
  assert.deepEqual(clients.map(({ c }) => c.getState().role), ['leader', 'follower', 'leader', 'leader', 'leader', undefined, 'leader', 'leader', 'leader', 'follower']);
  for (const { c } of clients) c.destroy();
});

test('a follower with a new token after an auth failure takes the lead', async () => {
  const srv = server();
  const t = fakeTimers();
  const locks = fakeLocks();
  srv.script.push(new Response('{}', { status: 401 }));
  const a = tab(srv, t, locks);
  a.c.connect();
  await settle();
  const b = tab(srv, t, locks);
  b.c.connect();
  await settle();
  assert.equal(b.c.getState().error?.kind, 'auth', 'the follower sees the auth failure');
  srv.script.push(stream().response);
  b.c.connect(); // the app got a fresh token in this tab
  await settle();
  assert.equal(b.c.getState().role, 'leader');
  assert.equal(b.c.getState().status, 'connected');
  assert.equal(a.c.getState().role, 'follower');
  assert.equal(srv.requests.length, 2);
  a.c.destroy();
  b.c.destroy();
});

test('a follower that disconnects stops receiving; the leader keeps its stream', async () => {
  const s1 = stream();
  const { srv, a, b } = await twoTabs(s1);
  b.c.disconnect();
  s1.send('id: e-1\nevent: x\ndata: 1\n\n');
  await settle();
  assert.deepEqual([a.events, b.events], [['e-1'], []]);
  assert.equal(b.c.getState().status, 'disconnected');
  assert.equal(a.c.getState().status, 'connected');
  assert.equal(srv.requests.length, 1);
  a.c.destroy();
});

test('a revocation reaches the follower tabs; only a tab with another token takes the stream back', async () => {
  const srv = server();
  const t = fakeTimers();
  const locks = fakeLocks();
  const s1 = stream();
  srv.script.push(s1.response);
  const bToken = { value: jwt('user-1') };
  const a = tab(srv, t, locks);
  a.c.connect();
  await settle();
  const b = tab(srv, t, locks, { token: () => bToken.value });
  b.c.connect();
  await settle();
  assert.deepEqual([a.c.getState().role, b.c.getState().role], ['leader', 'follower']);
  s1.send('retry: 86400000\n\nevent: closing\ndata: {"reason":"revoked"}\n\n');
  s1.end();
  await settle();
  for (const { c } of [a, b]) {
    assert.equal(c.getState().status, 'revoked');
    assert.equal(c.getState().error?.code, 'REVOKED', `${c.getState().role}: the code crosses the channel`);
  }
  b.c.connect(); // the same token as the revoked one: the leader checks its own, opens nothing
  await settle();
  assert.equal(srv.requests.length, 1, 'nothing opened with the revoked token');
  assert.equal(b.c.getState().role, 'follower');

  bToken.value = `${jwt('user-1')}-fresh`; // the user signed in again in this tab
  srv.script.push(stream().response);
  b.c.connect();
  await settle();
  assert.equal(b.c.getState().role, 'leader', 'the tab with the new token leads');
  assert.equal(b.c.getState().status, 'connected');
  assert.equal(srv.requests.length, 2);
  assert.equal(srv.requests[1].headers.Authorization, `Bearer ${bToken.value}`);
  a.c.destroy();
  b.c.destroy();
});
