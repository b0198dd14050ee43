// The React bindings: one stream per mounted hook even under StrictMode, state updates,
// message subscriptions, accessible status components.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import React from 'react';
import TestRenderer from 'react-test-renderer';
import { bindReact } from '../../host/web/react.js';

globalThis.IS_REACT_ACT_ENVIRONMENT = true;
const { act } = TestRenderer;
const { useSSEConnection, useSSEMessage, ConnectionStatusBadge } = bindReact(React);
const settle = () => new Promise((r) => setTimeout(r, 10));

function fakeServer() {
  const streams = [];
  const fetch = async (_url, init) => {
    let ctrl;
    const body = new ReadableStream({ start: (c) => (ctrl = c) });
    const s = { init, send: (t) => ctrl.enqueue(new TextEncoder().encode(t)) };
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
