// A revocation (the server's `closing` event with reason `revoked`) is final until the
// token changes: no reconnect, no polling, no request with the revoked token, whatever
// wakes the client; a new token reconnects exactly once. Other closing reasons still
// reconnect.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RevokedError } from '../../host/web/sse-client.js';
import { client, fakeTimers, server, settle, stream } from './fakes.mjs';

/** What the host sends when an admin disconnects or revokes a user. */
const REVOKED_FRAME = 'retry: 86400000\n\nevent: closing\ndata: {"reason":"revoked"}\n\n';
const RECHECK = 30_000;
const streamRequests = (srv) => srv.requests.filter((r) => r.url.includes('/sse/stream'));

/**
 * A client connected with a token function returning `token.value`, then revoked (the
 * frame, then the stream ends, as the host does). Returns the harness.
 */
async function revokedClient(extra = {}) {
  const srv = server();
  const t = fakeTimers();
  const s1 = stream();
  srv.script.push(s1.response);
  const token = { value: 'tok-1', calls: 0, fail: false };
  const errors = [];
  const h = client(srv, t, {
    token: async () => {
      token.calls++;
      if (token.fail) throw new Error('refresh failed');
      return token.value;
    },
    onError: (e) => errors.push(e),
    ...extra,
  });
  h.c.connect();
  await settle();
  s1.send('retry: 2000\n\nevent: connected\ndata: {"connectionId":"c1"}\n\nid: e-1\nevent: x\ndata: 1\n\n');
  await settle();
  assert.equal(h.c.getState().status, 'connected');
  s1.send(REVOKED_FRAME);
  s1.end();
  await settle();
  return { ...h, srv, t, token, errors };
}

test('a revoked stream stays revoked while the token is the same; a new token reconnects exactly once', async () => {
  // A watchdog longer than the test's clock, so only re-checks could open requests.
  const { c, srv, t, token, errors, states, events } = await revokedClient({ watchdogTimeout: RECHECK * 20 });
  const st = c.getState();
  assert.equal(st.status, 'revoked');
  assert.equal(st.isConnected, false);
  assert.equal(st.error.code, 'REVOKED');
  assert.equal(st.error.kind, 'auth', 'an auth error: apps that refresh tokens on auth errors do so');
  assert.ok(st.error instanceof RevokedError);
  assert.deepEqual(errors.map((e) => e.code), ['REVOKED'], 'onError heard of it once');
  assert.ok(events.some((e) => e.type === 'closing' && e.data.reason === 'revoked'), 'the closing event still reaches listeners');
  assert.deepEqual(t.pending(), [RECHECK], "only the re-check timer: the huge retry: schedules nothing");
  assert.equal(states.at(-1), 'revoked/sse');

  const callsBefore = token.calls;
  await t.advance(RECHECK * 5);
  assert.equal(streamRequests(srv).length, 1, 'no request with the revoked token');
  assert.equal(token.calls - callsBefore, 5, 'the token was resolved again on every re-check');
  c.connect(); // an explicit connect with the same token changes nothing
  await settle();
  assert.equal(streamRequests(srv).length, 1);
  assert.equal(c.getState().status, 'revoked');
  assert.equal(srv.requests.length, 1, 'no polling either');

  token.value = 'tok-2';
  const s2 = stream();
  srv.script.push(s2.response);
  await t.advance(RECHECK);
  assert.equal(streamRequests(srv).length, 2, 'the new token reconnected');
  assert.equal(streamRequests(srv)[1].headers.Authorization, 'Bearer tok-2');
  assert.equal(streamRequests(srv)[1].headers['Last-Event-ID'], 'e-1', 'resumes where the revoked stream stopped');
  assert.equal(c.getState().status, 'connected');
  assert.equal(c.getState().error, null);
  await t.advance(RECHECK * 3);
  assert.equal(streamRequests(srv).length, 2, 'exactly one new request: the re-checks stopped');

  // The revoked frame's retry: is not carried over to the new token's stream.
  s2.end();
  await settle();
  assert.equal(c.getState().status, 'reconnecting');
  assert.ok(t.pending().every((d) => d < 5000), `backs off normally, waits ${t.pending()}`);
  c.destroy();
});

test('an explicit connect() with a new token reconnects at once; disconnect() does not forget the revoked token', async () => {
  const { c, srv, t, token } = await revokedClient();
  c.disconnect();
  c.connect();
  await settle();
  assert.equal(c.getState().status, 'revoked', 'still the revoked token: revoked again, nothing opened');
  assert.equal(streamRequests(srv).length, 1);
  assert.deepEqual(t.pending(), [RECHECK], 'and the re-check timer runs again');

  token.value = 'tok-2';
  srv.script.push(stream().response);
  c.connect();
  await settle();
  assert.equal(c.getState().status, 'connected');
  assert.equal(streamRequests(srv).length, 2);
  assert.equal(streamRequests(srv)[1].headers.Authorization, 'Bearer tok-2');
  c.destroy();
});

test('online and the tab becoming visible re-check the token at once', async () => {
  const target = new EventTarget();
  const doc = Object.assign(new EventTarget(), { visibilityState: 'visible' });
  globalThis.addEventListener = target.addEventListener.bind(target);
  globalThis.removeEventListener = target.removeEventListener.bind(target);
  globalThis.document = /** @type {any} */ (doc);
  try {
    const { c, srv, token } = await revokedClient();
    target.dispatchEvent(new Event('online'));
    doc.dispatchEvent(new Event('visibilitychange'));
    await settle();
    assert.equal(streamRequests(srv).length, 1, 'same token: nothing opened');
    assert.equal(c.getState().status, 'revoked');

    token.value = 'tok-2';
    srv.script.push(stream().response);
    doc.dispatchEvent(new Event('visibilitychange'));
    await settle();
    assert.equal(streamRequests(srv).length, 2, 'visible with a new token: reconnected without waiting for the timer');
    assert.equal(c.getState().status, 'connected');
    target.dispatchEvent(new Event('online'));
    await settle();
    assert.equal(streamRequests(srv).length, 2, 'online while connected opens nothing more');
    c.destroy();
  } finally {
    delete globalThis.addEventListener;
    delete globalThis.removeEventListener;
    delete globalThis.document;
  }
});

test('a static string token stays revoked', async () => {
  const srv = server();
  const t = fakeTimers();
  const s = stream();
  srv.script.push(s.response);
  const { c } = client(srv, t, { token: 'static' });
  c.connect();
  await settle();
  s.send(REVOKED_FRAME);
  s.end();
  await settle();
  await t.advance(RECHECK * 4);
  c.connect();
  await settle();
  assert.equal(c.getState().status, 'revoked');
  assert.equal(srv.requests.length, 1);
  c.destroy();
});

test('with the polling fallback on, a revocation does not fall back to polling', async () => {
  const { c, srv, t } = await revokedClient({ enablePollingFallback: true, fallbackAfter: 1, pollInterval: 1000, probeInterval: 3000 });
  await t.advance(RECHECK * 2);
  assert.equal(c.getState().status, 'revoked');
  assert.equal(c.getState().transport, 'sse');
  assert.deepEqual(srv.requests.map((r) => new URL(r.url, 'http://h').pathname), ['/sse/stream']);
  c.destroy();
});

test('a closing listener that calls connect() cannot undo the revocation', async () => {
  const srv = server();
  const t = fakeTimers();
  const s = stream();
  srv.script.push(s.response, stream().response);
  const h = client(srv, t, { token: async () => 'same' });
  h.c.subscribe('closing', () => h.c.connect());
  h.c.connect();
  await settle();
  s.send(REVOKED_FRAME);
  s.end();
  await settle();
  assert.equal(h.c.getState().status, 'revoked');
  assert.equal(srv.requests.length, 1);
  h.c.destroy();
});

test('a token() that fails while revoked keeps the client revoked and re-checking', async () => {
  const { c, srv, t, token } = await revokedClient();
  token.fail = true;
  await t.advance(RECHECK * 2);
  assert.equal(c.getState().status, 'revoked');
  assert.equal(c.getState().error.code, 'REVOKED');
  assert.deepEqual(t.pending(), [RECHECK]);
  token.fail = false;
  token.value = 'tok-2';
  srv.script.push(stream().response);
  await t.advance(RECHECK);
  assert.equal(c.getState().status, 'connected');
  assert.equal(streamRequests(srv).length, 2);
  c.destroy();
});

test('the new token refused with 401 UNAUTHORIZED is final, as any auth failure', async () => {
  const { c, srv, t, token } = await revokedClient();
  token.value = 'tok-2';
  srv.script.push(new Response('{"error":"UNAUTHORIZED","message":"token revoked"}', { status: 401 }));
  await t.advance(RECHECK);
  assert.equal(c.getState().status, 'failed');
  assert.equal(c.getState().error.kind, 'auth');
  assert.equal(c.getState().error.status, 401);
  assert.deepEqual(t.pending(), [], 'nothing scheduled');
  c.destroy();
});

test('closing with reason expired or shutdown still reconnects', async () => {
  for (const reason of ['expired', 'shutdown']) {
    const srv = server();
    const t = fakeTimers();
    const s1 = stream();
    srv.script.push(s1.response);
    const { c } = client(srv, t, { token: async () => 'same' });
    c.connect();
    await settle();
    s1.send(`retry: 1000\n\nevent: closing\ndata: {"reason":"${reason}"}\n\n`);
    s1.end();
    await settle();
    assert.equal(c.getState().status, 'reconnecting', reason);
    srv.script.push(stream().response);
    await t.advance(1000);
    assert.equal(c.getState().status, 'connected', reason);
    assert.equal(streamRequests(srv).length, 2, `${reason}: reconnected with the same token`);
    c.destroy();
  }
});

test('disconnect() from onConnectionChange at the revocation leaves nothing scheduled', async () => {
  const srv = server();
  const t = fakeTimers();
  const s = stream();
  srv.script.push(s.response);
  let c;
  ({ c } = client(srv, t, { token: async () => 'same', onConnectionChange: (status) => status === 'revoked' && c.disconnect() }));
  c.connect();
  await settle();
  s.send(REVOKED_FRAME);
  s.end();
  await settle();
  assert.equal(c.getState().status, 'disconnected');
  assert.deepEqual(t.pending(), [], 'no re-check timer on a disconnected client');
  c.destroy();
});
