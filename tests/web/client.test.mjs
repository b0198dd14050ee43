// The client's state machine, resume, de-duplication and polling fallback, against a
// scripted fake server and fake timers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { client, fakeTimers, server, settle, stream } from './fakes.mjs';

test('connects with the token, delivers events, resumes with Last-Event-ID and drops duplicates', async () => {
  const srv = server();
  const t = fakeTimers();
  const s1 = stream();
  srv.script.push(s1.response);
  const { c, states, events } = client(srv, t);
  c.connect();
  await settle();
  assert.equal(srv.requests[0].headers.Authorization, 'Bearer t0k');
  s1.send('retry: 2000\n\nevent: connected\ndata: {"connectionId":"c1"}\n\nid: e-1\nevent: dashboard-update\ndata: {"v":1}\n\n');
  await settle();
  assert.deepEqual(states.slice(0, 2), ['connecting/sse', 'connected/sse']);
  assert.deepEqual(events.map((e) => [e.type, e.id, e.data]), [['connected', '', { connectionId: 'c1' }], ['dashboard-update', 'e-1', { v: 1 }]]);
  const s2 = stream();
  srv.script.push(s2.response);
  s1.end();
  await settle();
  assert.equal(c.getState().status, 'reconnecting');
  assert.ok(t.pending().every((d) => d >= 2000), "never faster than the server's retry");
  await t.advance(2000);
  assert.equal(srv.requests[1].headers['Last-Event-ID'], 'e-1');
  s2.send('id: e-1\nevent: dashboard-update\ndata: {"v":1}\n\nid: e-2\nevent: dashboard-update\ndata: {"v":2}\n\n');
  await settle();
  assert.deepEqual(events.filter((e) => e.id).map((e) => e.id), ['e-1', 'e-2'], 'the replayed e-1 is not delivered twice');
  c.destroy();
});

test('401 surfaces an auth error and does not retry', async () => {
  const srv = server();
  const t = fakeTimers();
  srv.script.push(new Response('{"error":"UNAUTHORIZED"}', { status: 401 }));
  const { c } = client(srv, t);
  c.connect();
  await settle();
  const st = c.getState();
  assert.equal(st.status, 'failed');
  assert.equal(st.error.kind, 'auth');
  assert.deepEqual(t.pending(), [], 'no retry scheduled');
  c.destroy();
});

test('429/503 wait at least Retry-After', async () => {
  const srv = server();
  const t = fakeTimers();
  srv.script.push(new Response('{}', { status: 503, headers: { 'retry-after': '7' } }));
  const { c } = client(srv, t);
  c.connect();
  await settle();
  assert.equal(c.getState().status, 'reconnecting');
  assert.ok(t.pending()[0] >= 7000, `waits ${t.pending()[0]} ms`);
  c.destroy();
});

test('after maxRetries consecutive failures the client fails; connect() wakes it', async () => {
  const srv = server(); // every fetch is a network error
  const t = fakeTimers();
  const { c } = client(srv, t, { maxRetries: 3, initialRetryDelay: 100, maxRetryDelay: 400 });
  c.connect();
  await settle();
  await t.advance(10_000);
  assert.equal(c.getState().status, 'failed');
  assert.equal(srv.requests.length, 4, 'first attempt + 3 retries');
  const s = stream();
  srv.script.push(s.response);
  c.connect();
  await settle();
  assert.equal(c.getState().status, 'connected');
  c.destroy();
});

test('the watchdog reconnects a silent stream', async () => {
  const srv = server();
  const t = fakeTimers();
  const s1 = stream();
  srv.script.push(s1.response, stream().response);
  const { c } = client(srv, t, { watchdogTimeout: 5000 });
  c.connect();
  await settle();
  s1.send(': heartbeat\n\n');
  await settle();
  await t.advance(4000);
  assert.equal(srv.requests.length, 1, 'a heartbeat kept it alive');
  await t.advance(2000);
  assert.equal(srv.requests.length, 2, 'silent for 5 s: reconnected');
  assert.equal(c.getState().status, 'connected');
  c.destroy();
});

test('reset events are surfaced and move the cursor', async () => {
  const srv = server();
  const t = fakeTimers();
  const s = stream();
  srv.script.push(s.response);
  const { c, resets } = client(srv, t, { lastEventId: 'old-5' });
  c.connect();
  await settle();
  assert.equal(srv.requests[0].headers['Last-Event-ID'], 'old-5');
  s.send('id: new-9\nevent: reset\ndata: {"reason":"restarted","lastEventId":"new-9"}\n\n');
  await settle();
  assert.deepEqual(resets, [{ reason: 'restarted', lastEventId: 'new-9' }]);
  assert.equal(c.getLastEventId(), 'new-9');
  c.destroy();
});

test('falls back to polling with the same cursor, then returns to SSE without loss or duplicates', async () => {
  const srv = server();
  const t = fakeTimers();
  const s1 = stream();
  srv.script.push(s1.response);
  const json = (body) => new Response(JSON.stringify(body), { status: 200, headers: { 'content-type': 'application/json' } });
  srv.polls.push(
    json({ events: [{ id: 'e-2', type: 'x', data: 2 }], next: 'e-2', reset: false }),
    json({ events: [{ id: 'e-2', type: 'x', data: 2 }, { id: 'e-3', type: 'x', data: 3 }], next: 'e-3', reset: false }),
  );
  const { c, states, events } = client(srv, t, { enablePollingFallback: true, fallbackAfter: 2, pollInterval: 1000, probeInterval: 3000, initialRetryDelay: 100 });
  c.connect();
  await settle();
  s1.send('id: e-1\nevent: x\ndata: 1\n\n');
  await settle();
  s1.end(); // SSE breaks; the retry fails too (nothing scripted): fall back to polling
  await settle();
  await t.advance(200);
  assert.equal(c.getState().transport, 'polling');
  const polls = srv.requests.filter((r) => r.url.includes('/sse/poll'));
  assert.match(polls[0].url, /since=e-1/, 'polling continues from the stream cursor');
  await t.advance(1000);
  assert.match(srv.requests.filter((r) => r.url.includes('/sse/poll'))[1].url, /since=e-2/);
  // The probe finds SSE working again and resumes from the polling cursor.
  const s2 = stream();
  srv.script.push(s2.response);
  await t.advance(2000);
  assert.equal(c.getState().transport, 'sse');
  assert.equal(srv.requests.filter((r) => r.url.includes('/sse/stream')).at(-1).headers['Last-Event-ID'], 'e-3');
  s2.send('id: e-3\nevent: x\ndata: 3\n\nid: e-4\nevent: x\ndata: 4\n\n');
  await settle();
  assert.deepEqual(events.map((e) => e.id), ['e-1', 'e-2', 'e-3', 'e-4'], 'nothing lost, nothing twice');
  assert.ok(states.includes('connected/polling'));
  assert.equal(states.at(-1), 'connected/sse');
  c.destroy();
});

test("the seed's surface: onConnectionChange(state) gets the status first; report-update is a default type", async () => {
  const { DEFAULTS } = await import('../../host/web/sse-client.js');
  assert.ok(DEFAULTS.eventTypes.includes('report-update'));
  const srv = server();
  const t = fakeTimers();
  srv.script.push(stream().response);
  const seen = [];
  const { c } = client(srv, t, { onConnectionChange: (state) => seen.push(state) });
  c.connect();
  await settle();
  assert.deepEqual(seen, ['connecting', 'connected']);
  c.destroy();
});

test("PollingFallback as the seed uses it: start, deliver in order once, stop", async () => {
  const { PollingFallback } = await import('../../host/web/sse-client.js');
  const srv = server();
  const t = fakeTimers();
  const json = (body) => new Response(JSON.stringify(body), { status: 200, headers: { 'content-type': 'application/json' } });
  srv.polls.push(
    json({ events: [{ id: 'e-1', type: 'dashboard-update', data: { v: 1 } }], next: 'e-1', reset: false }),
    json({ events: [{ id: 'e-1', type: 'dashboard-update', data: { v: 1 } }, { id: 'e-2', type: 'dashboard-update', data: { v: 2 } }], next: 'e-2', reset: false }),
  );
  const got = [];
  const fallback = new PollingFallback({ companyId: 'acme-corp', channel: 'dashboard-updates', pollInterval: 5000, fetch: srv.fetch, timers: t, onMessage: (e) => got.push(e.data.v), onError: (e) => got.push(e.message) });
  fallback.start();
  await settle();
  await t.advance(5000);
  assert.deepEqual(got, [1, 2], 'the repeated e-1 is delivered once');
  assert.match(srv.requests[1].url, /since=e-1/);
  fallback.stop();
  assert.equal(fallback.running, false);
  assert.deepEqual(t.pending(), []);
});
