// @ts-check
/**
 * createSSEClient: a resilient client for sse-edge streams.
 *
 * - Transports: `fetch` (default; can send `Authorization`, sees heartbeat comments) and
 *   `eventsource` (native EventSource, for cookie auth), plus the polling fallback.
 * - Reconnects with exponential backoff and jitter, never faster than the server's
 *   `retry:`; honours `Retry-After` on 429/503; stops on 401/403 with an auth error (the
 *   app refreshes its token and calls `connect()`); `failed` after `maxRetries`
 *   consecutive failures, woken by `online`, the tab becoming visible, or `connect()`.
 * - Resumes with the last seen ID, surfaces `reset` (refetch your state), and delivers
 *   each event ID at most once, across reconnects and transport switches.
 * - A watchdog reconnects when neither an event nor a heartbeat arrived in time.
 */
import { backoffDelay, retryAfterMs } from './backoff.js';
import { createParser } from './sse-parser.js';

/** @typedef {'disconnected'|'connecting'|'connected'|'reconnecting'|'failed'} ConnectionStatus */
/** @typedef {'sse'|'polling'} Transport */

const DEFAULTS = {
  baseUrl: '',
  initialRetryDelay: 1000,
  maxRetryDelay: 30000,
  maxRetries: 10,
  stableAfter: 10000,
  watchdogTimeout: 75000,
  enablePollingFallback: false,
  pollInterval: 5000,
  probeInterval: 30000,
  fallbackAfter: 2,
  transport: /** @type {'fetch'|'eventsource'} */ ('fetch'),
  // Native EventSource has no wildcard: these named events (the seed's channel table) are
  // listened for in addition to every type passed to subscribe().
  eventTypes: ['dashboard-update', 'evidence-update', 'evidence-deleted', 'report-ready', 'report-failed'],
};

class HttpError extends Error {
  /** @param {number} status @param {number} retryAfter */
  constructor(status, retryAfter) {
    super(`HTTP ${status}`);
    this.status = status;
    this.retryAfter = retryAfter;
  }
}

/**
 * @param {import('./sse-client').SSEClientOptions} options
 * @returns {import('./sse-client').SSEClient}
 */
export function createSSEClient(options) {
  const o = { ...DEFAULTS, ...options };
  const channels = Array.isArray(o.channel) ? o.channel : [o.channel];
  const fetchImpl = o.fetch ?? globalThis.fetch.bind(globalThis);
  const timers = o.timers ?? { setTimeout: globalThis.setTimeout.bind(globalThis), clearTimeout: globalThis.clearTimeout.bind(globalThis) };
  /** @type {Map<string, Set<Function>>} */
  const listeners = new Map();
  const seen = new Set();
  const seenOrder = [];
  const state = {
    status: /** @type {ConnectionStatus} */ ('disconnected'),
    transport: /** @type {Transport} */ ('sse'),
    lastEventId: o.lastEventId ?? '',
    lastEventTime: /** @type {number|null} */ (null),
    retryCount: 0,
    nextRetryAt: /** @type {number|null} */ (null),
    error: /** @type {any} */ (null),
    connectionId: /** @type {string|null} */ (null),
  };
  let serverRetry = 0;
  let generation = 0;
  /** @type {AbortController|null} */
  let abort = null;
  /** @type {any} */
  let retryTimer = null;
  /** @type {any} */
  let watchdog = null;
  /** @type {any} */
  let pollTimer = null;
  /** @type {any} */
  let probeTimer = null;
  /** @type {EventSource|null} */
  let source = null;
  /** Event types the current EventSource listens for. */
  let esTypes = new Set();
  let connectedAt = 0;

  function query(extra) {
    const p = new URLSearchParams({ companyId: o.companyId });
    for (const c of channels) p.append('channel', c);
    for (const [k, v] of Object.entries(extra)) if (v) p.set(k, v);
    return p.toString();
  }

  async function headers() {
    /** @type {Record<string,string>} */
    const h = {};
    const token = typeof o.token === 'function' ? await o.token() : o.token;
    if (token) h.Authorization = `Bearer ${token}`;
    return h;
  }

  function setStatus(status, extra = {}) {
    Object.assign(state, { status }, extra);
    o.onConnectionChange?.(status, getState());
  }

  function getState() {
    return { ...state, isConnected: state.status === 'connected' };
  }

  function emit(type, event) {
    for (const key of [type, '*']) for (const fn of listeners.get(key) ?? []) fn(event);
  }

  /** Delivers an event once per ID; returns false for a duplicate. */
  function deliver(type, id, raw) {
    if (id) {
      if (seen.has(id)) return false;
      seen.add(id);
      seenOrder.push(id);
      if (seenOrder.length > 1000) seen.delete(seenOrder.shift());
      state.lastEventId = id;
    }
    let data = raw;
    try {
      data = JSON.parse(raw);
    } catch {
      /* not JSON: deliver the text */
    }
    state.lastEventTime = Date.now();
    const event = { id, type, data };
    if (type === 'connected') {
      state.connectionId = data?.connectionId ?? null;
      return true;
    }
    if (type === 'reset') {
      if (data?.lastEventId) state.lastEventId = data.lastEventId;
      o.onReset?.(data);
    }
    if (type !== 'closing' && type !== 'heartbeat') o.onMessage?.(event);
    emit(type, event);
    return true;
  }

  function armWatchdog(gen) {
    if (watchdog) timers.clearTimeout(watchdog);
    watchdog = timers.setTimeout(() => {
      if (gen === generation) fail(new Error('no event or heartbeat within the watchdog timeout'), gen);
    }, o.watchdogTimeout);
  }

  function clearTimers() {
    for (const t of [retryTimer, watchdog, pollTimer, probeTimer]) if (t) timers.clearTimeout(t);
    retryTimer = watchdog = pollTimer = probeTimer = null;
  }

  async function runFetch(gen) {
    abort = new AbortController();
    const url = `${o.baseUrl}/sse/stream?${query({})}`;
    const h = { Accept: 'text/event-stream', ...(await headers()) };
    if (state.lastEventId) h['Last-Event-ID'] = state.lastEventId;
    const res = await fetchImpl(url, { headers: h, signal: abort.signal, credentials: 'include', cache: 'no-store' });
    if (!res.ok) throw new HttpError(res.status, retryAfterMs(res.headers.get('retry-after')));
    if (!(res.headers.get('content-type') ?? '').startsWith('text/event-stream')) throw new Error('not an event stream');
    onOpen(gen, 'sse');
    const parser = createParser({
      onEvent: (e) => gen === generation && deliver(e.type, e.lastEventId, e.data),
      onRetry: (ms) => (serverRetry = ms),
    });
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    armWatchdog(gen);
    for (;;) {
      const { done, value } = await reader.read();
      if (gen !== generation) return;
      if (done) throw new Error('stream ended');
      armWatchdog(gen);
      parser.feed(decoder.decode(value, { stream: true }));
    }
  }

  /** Native EventSource only reports named events it listens for: listen per type. */
  function listenFor(type) {
    if (!source || type === '*' || esTypes.has(type)) return;
    esTypes.add(type);
    const gen = generation;
    source.addEventListener(type, (e) => gen === generation && deliver(type, /** @type {MessageEvent} */ (e).lastEventId, /** @type {MessageEvent} */ (e).data));
  }

  function runEventSource(gen) {
    const url = `${o.baseUrl}/sse/stream?${query({ lastEventId: state.lastEventId })}`;
    const es = new EventSource(url, { withCredentials: true });
    source = es;
    esTypes = new Set();
    for (const t of ['message', 'connected', 'reset', 'closing', ...o.eventTypes, ...listeners.keys()]) listenFor(t);
    es.onopen = () => onOpen(gen, 'sse');
    es.onerror = () => {
      if (gen !== generation) return;
      if (es.readyState === EventSource.CLOSED) fail(new Error('EventSource closed'), gen);
      else setStatus('reconnecting');
    };
  }

  function onOpen(gen, transport) {
    if (gen !== generation) return;
    connectedAt = Date.now();
    stopPolling();
    setStatus('connected', { transport, error: null, nextRetryAt: null });
  }

  function start() {
    const gen = ++generation;
    clearTimers();
    setStatus(state.retryCount === 0 ? 'connecting' : 'reconnecting');
    if (o.transport === 'eventsource') {
      runEventSource(gen);
      return;
    }
    runFetch(gen).catch((err) => fail(err, gen));
  }

  function teardown() {
    abort?.abort();
    abort = null;
    source?.close();
    source = null;
  }

  function fail(err, gen) {
    if (gen !== generation || state.status === 'disconnected') return;
    generation++;
    teardown();
    if (watchdog) timers.clearTimeout(watchdog);
    if (connectedAt && Date.now() - connectedAt >= o.stableAfter) state.retryCount = 0;
    connectedAt = 0;
    if (failedAuth(err)) return;
    state.retryCount++;
    if (o.enablePollingFallback && state.retryCount >= o.fallbackAfter) {
      startPolling();
      return;
    }
    if (state.retryCount > o.maxRetries) {
      setStatus('failed');
      return;
    }
    schedule(err instanceof HttpError ? err.retryAfter : 0);
  }

  /** Records an error; for 401/403 stops for good (no blind retries) and returns true. */
  function failedAuth(err) {
    state.error = err;
    o.onError?.(err);
    if (!(err instanceof HttpError && (err.status === 401 || err.status === 403))) return false;
    stopPolling();
    setStatus('failed', { error: Object.assign(err, { kind: 'auth' }) });
    return true;
  }

  function schedule(retryAfter) {
    const delay = Math.max(
      retryAfter,
      backoffDelay(state.retryCount - 1, { initial: o.initialRetryDelay, max: o.maxRetryDelay, floor: serverRetry, random: o.random }),
    );
    setStatus('reconnecting', { nextRetryAt: Date.now() + delay });
    retryTimer = timers.setTimeout(start, delay);
  }

  // --- polling fallback: same cursor, same de-duplication ---------------------------
  function startPolling() {
    const gen = generation;
    setStatus('connected', { transport: 'polling', nextRetryAt: null });
    const tick = async () => {
      if (gen !== generation || state.transport !== 'polling') return;
      try {
        const res = await fetchImpl(`${o.baseUrl}/sse/poll?${query({ since: state.lastEventId })}`, {
          headers: await headers(),
          credentials: 'include',
          cache: 'no-store',
        });
        if (!res.ok) throw new HttpError(res.status, retryAfterMs(res.headers.get('retry-after')));
        const body = await res.json();
        if (gen !== generation || state.transport !== 'polling') return;
        if (body.reset) deliver('reset', body.next, JSON.stringify({ reason: 'poll_reset', lastEventId: body.next }));
        for (const e of body.events) deliver(e.type, e.id, JSON.stringify(e.data));
        if (body.next && !body.reset) state.lastEventId = body.next;
        if (state.status !== 'connected') setStatus('connected', { transport: 'polling', error: null });
      } catch (err) {
        if (failedAuth(err)) return;
        setStatus('reconnecting', { transport: 'polling' });
      }
      pollTimer = timers.setTimeout(tick, o.pollInterval);
    };
    tick();
    probeTimer = timers.setTimeout(probe, o.probeInterval);
  }

  function stopPolling() {
    if (pollTimer) timers.clearTimeout(pollTimer);
    if (probeTimer) timers.clearTimeout(probeTimer);
    pollTimer = probeTimer = null;
    if (state.transport === 'polling') state.transport = 'sse';
  }

  /** Tries SSE again while polling; polling stops only once the stream is open. */
  function probe() {
    if (state.transport !== 'polling') return;
    const gen = generation;
    runFetch(gen).catch((err) => {
      if (gen !== generation) return;
      if (state.transport === 'polling') {
        teardown(); // SSE still unavailable: keep polling, probe again later
        probeTimer = timers.setTimeout(probe, o.probeInterval);
      } else {
        fail(err, gen); // the probe had switched back to SSE and that stream ended
      }
    });
  }

  function wake() {
    if (state.status === 'failed' && !(state.error && state.error.kind === 'auth')) connect();
  }
  const onVisible = () => globalThis.document?.visibilityState === 'visible' && wake();

  function connect() {
    state.retryCount = 0;
    state.error = null;
    teardown();
    stopPolling();
    start();
  }

  function disconnect() {
    generation++;
    clearTimers();
    teardown();
    stopPolling();
    setStatus('disconnected', { nextRetryAt: null });
  }

  globalThis.addEventListener?.('online', wake);
  globalThis.document?.addEventListener?.('visibilitychange', onVisible);

  return {
    connect,
    disconnect,
    getState,
    getLastEventId: () => state.lastEventId,
    subscribe(type, fn) {
      const [key, handler] = typeof type === 'function' ? ['*', type] : [type, fn];
      if (!listeners.has(key)) listeners.set(key, new Set());
      listeners.get(key).add(handler);
      listenFor(key);
      return () => listeners.get(key)?.delete(handler);
    },
    destroy() {
      disconnect();
      globalThis.removeEventListener?.('online', wake);
      globalThis.document?.removeEventListener?.('visibilitychange', onVisible);
    },
  };
}
