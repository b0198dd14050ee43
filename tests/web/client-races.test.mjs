// The client under races and hostile input: stale attempts and polls, async tokens,
// events without IDs, throwing handlers, capped server delays, final HTTP statuses.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { client, fakeTimers, server, settle, stream } from './fakes.mjs';

/** A promise the test settles by hand. */
function deferred() {
  let resolve;
  let reject;
  const promise = new Promise((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}

const json = (body, status = 200, headers = {}) => new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } });
const streamRequests = (srv) => srv.requests.filter((r) => r.url.includes('/sse/stream'));

/** Falls back to polling after the first stream breaks; returns the client. */
async function polling(srv, t, extra = {}) {
  const s1 = stream();
  srv.script.push(s1.response);
  const h = client(srv, t, { enablePollingFallback: true, fallbackAfter: 1, pollInterval: 1000, probeInterval: 3000, ...extra });
  h.c.connect();
  await settle();
  s1.send('id: e-1\nevent: x\ndata: 1\n\n');
  await settle();
  s1.end();
  await settle();
  assert.equal(h.c.getState().transport, 'polling');
  return h;
}

test('a poll that fails after disconnect() changes nothing', async () => {
  const srv = server();
  const t = fakeTimers();
  const poll = deferred();
  srv.polls.push(poll.promise);
  const errors = [];
  const { c, states } = await polling(srv, t, { onError: (e) => errors.push(e) });
  const reported = errors.length;
  c.disconnect();
  const before = states.length;
  poll.reject(new TypeError('network error'));
  await settle();
  assert.equal(c.getState().status, 'disconnected');
  assert.equal(states.length, before, 'no state change after disconnect()');
  assert.deepEqual(t.pending(), [], 'no timer left behind');
  assert.equal(errors.length, reported, 'the stale poll reported nothing');
  c.destroy();
});

test('a poll that fails after the switch back to SSE changes nothing', async () => {
  const srv = server();
  const t = fakeTimers();
  srv.polls.push(json({ events: [], next: 'e-1', reset: false }));
  const { c } = await polling(srv, t);
  const slow = deferred();
  srv.polls.push(slow.promise);
  await t.advance(1000); // the second poll is in flight
  const s2 = stream();
  srv.script.push(s2.response);
  await t.advance(2000); // the probe opens SSE
  assert.deepEqual([c.getState().status, c.getState().transport], ['connected', 'sse']);
  slow.reject(new TypeError('network error'));
  await settle();
  assert.deepEqual([c.getState().status, c.getState().transport], ['connected', 'sse']);
  assert.equal(srv.requests.filter((r) => r.url.includes('/sse/poll')).length, 2, 'no poll after the switch');
  c.destroy();
});

test('two quick connect() calls with an async token open one stream, with one watchdog', async () => {
  const srv = server();
  const t = fakeTimers();
  const tokens = [deferred(), deferred()];
  let calls = 0;
  const s = stream();
  srv.script.push(s.response, stream().response);
  const { c } = client(srv, t, { token: () => tokens[calls++].promise });
  c.connect();
  c.connect();
  tokens[1].resolve('new');
  await settle();
  tokens[0].resolve('old'); // the stale attempt's token arrives last
  await settle();
  assert.equal(streamRequests(srv).length, 1, 'the stale attempt never fetched');
  assert.equal(streamRequests(srv)[0].headers.Authorization, 'Bearer new');
  assert.equal(c.getState().status, 'connected');
  assert.equal(t.pending().length, 1, 'exactly one watchdog');
  c.destroy();
});

test('a rejected token() is an auth error, not a network retry', async () => {
  const srv = server();
  const t = fakeTimers();
  const { c } = client(srv, t, { token: async () => Promise.reject(new Error('refresh failed')) });
  c.connect();
  await settle();
  const st = c.getState();
  assert.equal(st.status, 'failed');
  assert.equal(st.error.kind, 'auth');
  assert.equal(srv.requests.length, 0);
  assert.deepEqual(t.pending(), [], 'no retry scheduled');
  c.destroy();
});

test('events without their own id are not duplicates of the event before them', async () => {
  const srv = server();
  const t = fakeTimers();
  const s1 = stream();
  const s2 = stream();
  srv.script.push(s1.response, s2.response);
  const { c, events } = client(srv, t, { initialRetryDelay: 10 });
  c.connect();
  await settle();
  s1.send('event: connected\ndata: {"connectionId":"c1"}\n\nid: e-5\nevent: x\ndata: 1\n\nevent: heartbeat\ndata: {}\n\nevent: closing\ndata: {"reason":"shutdown"}\n\n');
  await settle();
  s1.end();
  await settle();
  await t.advance(100);
  s2.send('event: connected\ndata: {"connectionId":"c2"}\n\n');
  await settle();
  assert.deepEqual(events.map((e) => e.type), ['connected', 'x', 'heartbeat', 'closing', 'connected']);
  assert.equal(c.getState().connectionId, 'c2', "the reconnect's connected event was seen");
  assert.equal(c.getLastEventId(), 'e-5');
  c.destroy();
});

test('a throwing handler never ends the stream; its error goes to onError', async () => {
  const srv = server();
  const t = fakeTimers();
  const s = stream();
  srv.script.push(s.response);
  const errors = [];
  const { c, events } = client(srv, t, { onError: (e) => errors.push(e.message), onMessage: () => { throw new Error('onMessage broke'); } });
  c.subscribe('x', () => { throw new Error('listener broke'); });
  c.connect();
  await settle();
  s.send('id: e-1\nevent: x\ndata: 1\n\nid: e-2\nevent: x\ndata: 2\n\n');
  await settle();
  assert.deepEqual(events.map((e) => e.id), ['e-1', 'e-2'], 'later events and other listeners still run');
  assert.deepEqual(errors, ['onMessage broke', 'listener broke', 'onMessage broke', 'listener broke']);
  assert.equal(streamRequests(srv).length, 1, 'no reconnect');
  assert.equal(c.getState().status, 'connected');
  c.destroy();
});

test('a throwing handler does not stop polling either', async () => {
  const srv = server();
  const t = fakeTimers();
  srv.polls.push(json({ events: [], next: 'e-1', reset: false }));
  const errors = [];
  const { c, events } = await polling(srv, t, { onError: (e) => errors.push(e.message) });
  c.subscribe('x', (e) => { if (e.id === 'e-2') throw new Error('listener broke'); });
  srv.polls.push(json({ events: [{ id: 'e-2', type: 'x', data: 2 }, { id: 'e-3', type: 'x', data: 3 }], next: 'e-3', reset: false }));
  await t.advance(1000);
  assert.deepEqual(events.map((e) => e.id).filter(Boolean), ['e-1', 'e-2', 'e-3']);
  assert.ok(errors.includes('listener broke'));
  assert.deepEqual([c.getState().status, c.getState().transport], ['connected', 'polling']);
  assert.equal(c.getLastEventId(), 'e-3');
  c.destroy();
});

test("the server's retry: and Retry-After are capped", async () => {
  const srv = server();
  const t = fakeTimers();
  const s = stream();
  srv.script.push(s.response);
  const { c } = client(srv, t, { maxServerDelay: 60000 });
  c.connect();
  await settle();
  s.send('retry: 999999999999\n\n');
  await settle();
  s.end();
  await settle();
  assert.ok(t.pending()[0] <= 60000, `retry: waits ${t.pending()[0]} ms`);
  c.destroy();

  const srv2 = server();
  const t2 = fakeTimers();
  srv2.script.push(new Response('{}', { status: 503, headers: { 'retry-after': '86400' } }));
  const h = client(srv2, t2, { maxServerDelay: 60000 });
  h.c.connect();
  await settle();
  assert.ok(t2.pending()[0] <= 60000, `Retry-After waits ${t2.pending()[0]} ms`);
  h.c.destroy();
});

test('204 stops reconnecting, and 400/404 are not retried', async () => {
  for (const [status, kind] of [[204, 'stopped'], [400, 'request'], [404, 'request']]) {
    const srv = server();
    const t = fakeTimers();
    srv.script.push(new Response(status === 204 ? null : '{}', { status }));
    const { c } = client(srv, t, { enablePollingFallback: true, fallbackAfter: 1 });
    c.connect();
    await settle();
    assert.equal(c.getState().status, 'failed', `${status}`);
    assert.equal(c.getState().error.kind, kind);
    assert.deepEqual(t.pending(), [], `${status}: nothing scheduled, no polling`);
    assert.equal(srv.requests.length, 1);
    c.destroy();
  }
});

test('polling honours Retry-After', async () => {
  const srv = server();
  const t = fakeTimers();
  srv.polls.push(json({}, 503, { 'retry-after': '20' }));
  const { c } = await polling(srv, t);
  const polls = () => srv.requests.filter((r) => r.url.includes('/sse/poll')).length;
  assert.equal(polls(), 1);
  await t.advance(19_000);
  assert.equal(polls(), 1, 'no poll before Retry-After');
  await t.advance(1_000);
  assert.equal(polls(), 2);
  c.destroy();
});

test('online cuts a backoff short', async () => {
  const target = new EventTarget();
  globalThis.addEventListener = target.addEventListener.bind(target);
  globalThis.removeEventListener = target.removeEventListener.bind(target);
  try {
    const srv = server();
    const t = fakeTimers();
    const { c } = client(srv, t, { initialRetryDelay: 60_000, maxRetryDelay: 60_000 });
    c.connect();
    await settle();
    assert.equal(c.getState().status, 'reconnecting');
    assert.equal(srv.requests.length, 1);
    srv.script.push(stream().response);
    target.dispatchEvent(new Event('online'));
    await settle();
    assert.equal(srv.requests.length, 2, 'reconnected at once');
    assert.equal(c.getState().status, 'connected');
    c.destroy();
  } finally {
    delete globalThis.addEventListener;
    delete globalThis.removeEventListener;
  }
});

test('a request that never answers is abandoned after connectTimeout and retried', async () => {
  const srv = server();
  const t = fakeTimers();
  srv.script.push(new Promise(() => {})); // a proxy holding the request forever
  const { c } = client(srv, t, { connectTimeout: 5000, initialRetryDelay: 100 });
  c.connect();
  await settle();
  assert.equal(c.getState().status, 'connecting');
  srv.script.push(stream().response);
  await t.advance(5000);
  assert.equal(c.getState().status, 'reconnecting');
  assert.match(c.getState().error.message, /connectTimeout/);
  await t.advance(200);
  assert.equal(c.getState().status, 'connected');
  assert.equal(streamRequests(srv).length, 2);
  c.destroy();
});

test('connect() called from onError has the final word', async () => {
  const srv = server();
  const t = fakeTimers();
  srv.script.push(new Response('{}', { status: 401 }), stream().response);
  let c;
  ({ c } = client(srv, t, { onError: (e) => e.kind === 'auth' && c.connect() }));
  c.connect();
  await settle();
  assert.equal(c.getState().status, 'connected', 'the retry from onError was not undone');
  assert.deepEqual(t.pending().length, 1, 'only the watchdog: no stale retry timer');
  c.destroy();
});

test('while polling, a probe counts only once the stream sends bytes (a buffering proxy sends headers only)', async () => {
  const srv = server();
  const t = fakeTimers();
  srv.polls.push(json({ events: [], next: 'e-1', reset: false }), json({ events: [], next: 'e-1', reset: false }), json({ events: [], next: 'e-1', reset: false }));
  const { c } = await polling(srv, t, { connectTimeout: 2000 });
  srv.script.push(stream({ silent: true }).response);
  await t.advance(3000); // the probe gets headers, then nothing
  assert.equal(c.getState().transport, 'polling', 'still polling');
  await t.advance(2000);
  assert.equal(c.getState().transport, 'polling', 'the silent probe was abandoned, polling goes on');
  assert.ok(srv.requests.filter((r) => r.url.includes('/sse/poll')).length >= 3);
  c.destroy();
});
