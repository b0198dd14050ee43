// Fakes shared by the client's unit tests: timers the test advances, scripted stream
// and poll responses, and a client wired to them.
import { createSSEClient } from '../../host/web/sse-client.js';

export function fakeTimers() {
  let now = 0;
  let next = 1;
  const queue = new Map();
  return {
    setTimeout: (fn, ms) => (queue.set(next, { at: now + ms, fn }), next++),
    clearTimeout: (id) => queue.delete(id),
    async advance(ms) {
      const end = now + ms;
      for (;;) {
        const due = [...queue.entries()].filter(([, t]) => t.at <= end).sort((a, b) => a[1].at - b[1].at)[0];
        if (!due) break;
        queue.delete(due[0]);
        now = due[1].at;
        due[1].fn();
        await settle();
      }
      now = end;
    },
    pending: () => [...queue.values()].map((t) => t.at - now),
  };
}

export const settle = () => new Promise((r) => setTimeout(r, 5));

/** A stream response the test writes to. Like the host, it sends something at once (a
 *  comment here): the client counts a stream as open when its first bytes arrive. */
export function stream({ silent = false } = {}) {
  let ctrl;
  const enc = new TextEncoder();
  const body = new ReadableStream({
    start: (c) => {
      ctrl = c;
      if (!silent) c.enqueue(enc.encode(':\n\n'));
    },
  });
  return {
    response: new Response(body, { status: 200, headers: { 'content-type': 'text/event-stream' } }),
    send: (text) => ctrl.enqueue(enc.encode(text)),
    end: () => ctrl.close(),
  };
}

/** Scripted responses: stream requests and poll requests have their own queues; an
 *  empty queue is a network error. */
export function server() {
  const requests = [];
  const script = [];
  const polls = [];
  const fetch = async (url, init = {}) => {
    requests.push({ url: String(url), headers: init.headers ?? {} });
    const next = (String(url).includes('/sse/poll') ? polls : script).shift();
    if (!next) throw new TypeError('network error');
    return next;
  };
  return { fetch, requests, script, polls };
}


/** A client on the fakes that records its states, events and resets. */
export function client(srv, timers, extra = {}) {
  const states = [];
  const events = [];
  const resets = [];
  const c = createSSEClient({
    companyId: 'acme', channel: ['dashboard-updates'], token: 't0k', fetch: srv.fetch, timers, random: () => 0.5,
    onConnectionChange: (s, st) => states.push(`${s}/${st.transport}`), onReset: (r) => resets.push(r), ...extra,
  });
  c.subscribe((e) => events.push(e));
  return { c, states, events, resets };
}

