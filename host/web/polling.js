// @ts-check
/**
 * PollingFallback: events over plain `GET /sse/poll` requests, for networks where a
 * stream cannot stay open. The client switches to it on its own (`enablePollingFallback`);
 * it is also exported for code written against the seed's `new PollingFallback(...)`.
 *
 * Every `await` is followed by a check that this run is still the current one, so a
 * poll that settles after `stop()` (or after the client went back to SSE) changes
 * nothing. `Retry-After` is honoured; 401/403, 204 and other 4xx stop polling.
 */
import { createDispatcher } from './dispatch.js';
import { authHeaders, channelList, isFinal, query, refusal } from './request.js';

const DEFAULTS = { baseUrl: '', pollInterval: 5000, maxServerDelay: 120000, lastEventId: '' };

export class PollingFallback {
  /** @param {import('./sse-client').PollingFallbackOptions & { onEvent?: Function, onPoll?: Function, dispatch?: any }} options internal callers pass onEvent/onPoll */
  constructor(options) {
    this.o = { ...DEFAULTS, ...options };
    this.lastEventId = this.o.lastEventId;
    this.fetch = this.o.fetch ?? globalThis.fetch.bind(globalThis);
    this.timers = this.o.timers ?? globalThis;
    /** The current run; a new object per start(), null when stopped. */
    this.run = /** @type {object | null} */ (null);
    this.timer = /** @type {any} */ (null);
    this.dispatch = this.o.dispatch ?? createDispatcher(() => this.o);
  }

  get running() {
    return this.run !== null;
  }

  /** Starts polling now, from `lastEventId`. A second call restarts. */
  start() {
    this.stop();
    const run = {};
    this.run = run;
    this.tick(run);
  }

  stop() {
    this.run = null;
    if (this.timer) this.timers.clearTimeout(this.timer);
    this.timer = null;
  }

  /** @param {object} run */
  async tick(run) {
    const o = this.o;
    let delay = o.pollInterval;
    try {
      const headers = await authHeaders(o.token);
      if (run !== this.run) return;
      const url = `${o.baseUrl}/sse/poll?${query(o.companyId, channelList(o.channel), { since: this.lastEventId })}`;
      const res = await this.fetch(url, { headers, credentials: 'include', cache: 'no-store' });
      if (run !== this.run) return;
      const refused = refusal(res, o.maxServerDelay);
      if (refused) throw refused;
      const body = await res.json();
      if (run !== this.run) return;
      this.apply(body);
      this.dispatch.call(o.onPoll, null);
    } catch (err) {
      if (run !== this.run) return;
      this.dispatch.call(o.onError, err);
      this.dispatch.call(o.onPoll, err);
      if (isFinal(err)) {
        this.stop();
        return;
      }
      delay = Math.max(delay, err?.retryAfter ?? 0);
    }
    if (run !== this.run) return; // a handler stopped or restarted polling
    this.timer = this.timers.setTimeout(() => this.tick(run), delay);
  }

  /** @param {{ events?: any[], next?: string, reset?: boolean }} body */
  apply(body) {
    if (body.reset) {
      const info = { reason: 'poll_reset', lastEventId: body.next ?? '' };
      this.lastEventId = info.lastEventId;
      this.deliver({ id: info.lastEventId, type: 'reset', data: info });
    }
    for (const e of body.events ?? []) {
      this.deliver({ id: e.id ?? '', type: e.type, data: e.data });
      if (e.id) this.lastEventId = e.id;
    }
    if (body.next && !body.reset) this.lastEventId = body.next;
  }

  /** @param {import('./dispatch.js').SSEEvent} event */
  deliver(event) {
    if (this.o.onEvent) this.o.onEvent(event);
    else if (this.dispatch.fresh(event.id)) this.dispatch.emit(event);
  }

  /** Subscribe to one event type, or to all with a single function argument. */
  subscribe(type, fn) {
    return this.dispatch.subscribe(type, fn);
  }
}
