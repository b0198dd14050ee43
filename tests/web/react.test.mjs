// The React bindings: one stream per mounted hook even under StrictMode, provider and
// child hooks, options read fresh, status components.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import React from 'react';
import TestRenderer from 'react-test-renderer';
import { bindReact } from '../../host/web/react-bind.js';

globalThis.IS_REACT_ACT_ENVIRONMENT = true;
const { act } = TestRenderer;
const { useSSEConnection, useSSEMessage, ConnectionStatusBadge } = bindReact(React);
const settle = () => new Promise((r) => setTimeout(r, 10));

function fakeServer() {
  const streams = [];
  const fetch = async (_url, init) => {
    let ctrl;
    const body = new ReadableStream({ start: (c) => ((ctrl = c), c.enqueue(new TextEncoder().encode(':\n\n'))) });
    const s = { url: String(_url), init, send: (t) => !init.signal.aborted && ctrl.enqueue(new TextEncoder().encode(t)) };
    streams.push(s);
    return new Response(body, { status: 200, headers: { 'content-type': 'text/event-stream' } });
  };
  return { fetch, streams, open: () => streams.filter((s) => !s.init.signal.aborted) };
}

test('StrictMode opens exactly one stream, and updates reach the component', async () => {
  const srv = fakeServer();
  const received = [];
  function Widget() {
    const connection = useSSEConnection({ companyId: 'acme', channel: 'dashboard-updates', token: 't', fetch: srv.fetch });
    useSSEMessage(connection, 'dashboard-update', (data) => received.push(data));
    return React.createElement(ConnectionStatusBadge, { connection });
  }
  let root;
  await act(async () => {
    root = TestRenderer.create(React.createElement(React.StrictMode, null, React.createElement(Widget)));
    await settle();
  });
  assert.equal(srv.open().length, 1, 'the StrictMode double mount left one live stream');
  const badge = root.root.findByProps({ role: 'status' });
  assert.equal(badge.children.join(''), 'Live');
  await act(async () => {
    srv.open()[0].send('id: e-1\nevent: dashboard-update\ndata: {"widgets":["sroi"]}\n\n');
    await settle();
  });
  assert.deepEqual(received, [{ widgets: ['sroi'] }]);
  await act(async () => root.unmount());
  assert.equal(srv.open().length, 0, 'unmount closes the stream');
});

const { DashboardWithSSE, useDashboardUpdate, SSEProvider, useSSEEvent, ConnectionStatusBanner } = bindReact(React);
const send = (srv, text) => srv.open().forEach((s) => s.send(text));

for (const strict of [false, true]) {
  test(`a widget's useDashboardUpdate under <DashboardWithSSE> receives updates${strict ? ' (StrictMode)' : ''}`, async () => {
    const srv = fakeServer();
    const got = [];
    function SROIPanel() {
      useDashboardUpdate((update) => got.push(['sroi', update]));
      return null;
    }
    function VISPanel() {
      useDashboardUpdate((update) => got.push(['vis', update]));
      return null;
    }
    const tree = React.createElement(DashboardWithSSE, { companyId: 'acme', options: { token: 't', fetch: srv.fetch } }, React.createElement(SROIPanel), React.createElement(VISPanel));
    let root;
    await act(async () => {
      root = TestRenderer.create(strict ? React.createElement(React.StrictMode, null, tree) : tree);
      await settle();
    });
    assert.equal(srv.open().length, 1, 'one stream for the dashboard');
    await act(async () => {
      send(srv, 'id: e-1\nevent: dashboard-update\ndata: {"widgets":["sroi"]}\n\n');
      await settle();
    });
    assert.deepEqual(got, [['sroi', { widgets: ['sroi'] }], ['vis', { widgets: ['sroi'] }]]);
    await act(async () => root.unmount());
    assert.equal(srv.open().length, 0);
  });
}

test('SSEProvider + useSSEEvent in a child; the child handler may change between renders', async () => {
  const srv = fakeServer();
  const got = [];
  let setLabel;
  function Child() {
    const [label, set] = React.useState('first');
    setLabel = set;
    useSSEEvent('report-update', (data) => got.push([label, data.n]));
    return null;
  }
  let root;
  await act(async () => {
    root = TestRenderer.create(React.createElement(SSEProvider, { options: { companyId: 'acme', channel: 'report-updates', token: 't', fetch: srv.fetch } }, React.createElement(Child)));
    await settle();
  });
  await act(async () => {
    send(srv, 'id: r-1\nevent: report-update\ndata: {"n":1}\n\n');
    await settle();
  });
  await act(async () => {
    setLabel('second');
    await settle();
  });
  await act(async () => {
    send(srv, 'id: r-2\nevent: report-update\ndata: {"n":2}\n\n');
    await settle();
  });
  assert.deepEqual(got, [['first', 1], ['second', 2]]);
  assert.equal(srv.streams.length, 1, 'a new handler does not reconnect');
  await act(async () => root.unmount());
});

test('callbacks and the token are read fresh; an option that shapes the connection reconnects', async () => {
  const srv = fakeServer();
  const seen = [];
  let update;
  function Widget() {
    const [props, set] = React.useState({ tag: 'a', token: 'tok-1', baseUrl: '' });
    update = set;
    useSSEConnection({ companyId: 'acme', channel: 'dashboard-updates', token: props.token, baseUrl: props.baseUrl, fetch: srv.fetch, onMessage: (e) => seen.push([props.tag, e.id]) });
    return null;
  }
  let root;
  await act(async () => {
    root = TestRenderer.create(React.createElement(Widget));
    await settle();
  });
  await act(async () => {
    update({ tag: 'b', token: 'tok-2', baseUrl: '' });
    await settle();
  });
  await act(async () => {
    send(srv, 'id: e-1\nevent: dashboard-update\ndata: {}\n\n');
    await settle();
  });
  assert.deepEqual(seen, [['b', 'e-1']], 'the latest onMessage ran');
  assert.equal(srv.streams.length, 1, 'a new token or callback does not reconnect by itself');
  await act(async () => {
    update({ tag: 'b', token: 'tok-2', baseUrl: 'http://127.0.0.1:1' });
    await settle();
  });
  assert.equal(srv.streams.length, 2, 'a new baseUrl reconnects');
  assert.equal(srv.open().length, 1);
  assert.equal(srv.streams[1].url, 'http://127.0.0.1:1/sse/stream?companyId=acme&channel=dashboard-updates');
  assert.equal(srv.streams[1].init.headers.Authorization, 'Bearer tok-2', 'the reconnect sent the latest token');
  await act(async () => root.unmount());
});

test('a dismissed banner returns on the next outage; a failed connection offers Retry now', async () => {
  const conn = (status, extra = {}) => ({ status, transport: 'sse', isConnected: status === 'connected', connect: () => retries.push(1), ...extra });
  const retries = [];
  let root;
  const render = (c) => act(async () => {
    if (root) root.update(React.createElement(ConnectionStatusBanner, { connection: c }));
    else root = TestRenderer.create(React.createElement(ConnectionStatusBanner, { connection: c }));
  });
  const text = () => (root.toJSON() ? JSON.stringify(root.toJSON()) : null);
  await render(conn('reconnecting'));
  assert.match(text(), /Reconnecting/);
  await act(async () => root.root.findByProps({ children: 'Dismiss' }).props.onClick());
  assert.equal(text(), null, 'dismissed');
  await render(conn('reconnecting'));
  assert.equal(text(), null, 'stays dismissed during this outage');
  await render(conn('connected'));
  await render(conn('failed'));
  assert.match(text(), /offline/, 'back on the next outage');
  await act(async () => root.root.findByProps({ children: 'Retry now' }).props.onClick());
  assert.deepEqual(retries, [1]);
  await render(conn('failed', { error: { kind: 'auth' } }));
  assert.equal(root.root.findAllByProps({ children: 'Retry now' }).length, 0, 'no Retry now after an auth failure');
  await act(async () => root.unmount());
});

test('after a revocation the badge says so, and a new token prop reconnects once', async () => {
  const srv = fakeServer();
  let update;
  function Widget() {
    const [token, set] = React.useState('tok-1');
    update = set;
    const connection = useSSEConnection({ companyId: 'acme', channel: 'dashboard-updates', token, fetch: srv.fetch });
    return React.createElement(ConnectionStatusBadge, { connection });
  }
  let root;
  await act(async () => {
    root = TestRenderer.create(React.createElement(Widget));
    await settle();
  });
  await act(async () => {
    send(srv, 'retry: 86400000\n\nevent: closing\ndata: {"reason":"revoked"}\n\n');
    await settle();
  });
  const badge = () => root.root.findByProps({ role: 'status' });
  assert.equal(badge().props['data-status'], 'revoked');
  assert.equal(badge().children.join(''), 'Access revoked');
  assert.equal(srv.open().length, 0, 'the revoked stream is closed and not reopened');
  await act(async () => {
    update('tok-1'); // the same token again: nothing
    await settle();
  });
  assert.equal(srv.streams.length, 1);
  await act(async () => {
    update('tok-2');
    await settle();
  });
  assert.equal(srv.streams.length, 2, 'the new token reconnected');
  assert.equal(srv.streams[1].init.headers.Authorization, 'Bearer tok-2');
  assert.equal(badge().props['data-status'], 'connected');
  await act(async () => root.unmount());
});

test('the banner explains a revocation and offers no Retry now', async () => {
  let root;
  await act(async () => {
    root = TestRenderer.create(React.createElement(ConnectionStatusBanner, { connection: { status: 'revoked', transport: 'sse', isConnected: false, error: { kind: 'auth', code: 'REVOKED' }, connect: () => {} } }));
  });
  assert.match(JSON.stringify(root.toJSON()), /stopped by an administrator/);
  assert.equal(root.root.findAllByProps({ children: 'Retry now' }).length, 0);
  await act(async () => root.unmount());
});
