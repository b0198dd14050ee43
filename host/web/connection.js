// @ts-check
/**
 * One tab's own connection to the host: the state machine behind `createSSEClient`.
 *
 * - Transports: `fetch` (default; sends `Authorization`, sees heartbeat comments) and
 *   `eventsource` (native EventSource, for cookie auth), plus the polling fallback.
 * - Every attempt has its own AbortController and generation: an attempt that finds
 *   itself superseded after any `await` aborts itself and touches nothing (no status,
 *   no watchdog, no events), so quick `connect()` calls open one stream.
 * - Reconnects with exponential backoff and jitter, never faster than the server's
 *   `retry:` (capped by `maxServerDelay`); waits out `Retry-After`; stops for good on
 *   401/403 or a failing `token()` (auth), 204 (the server said stop) and other 4xx
 *   (the request is wrong); `failed` after `maxRetries` consecutive failures.
 * - `online` and the tab becoming visible cut a pending backoff short and wake a
 *   failed (but not finally refused) client.
 * - A `closing` event with reason `revoked` (an admin disconnected or revoked this user)
 *   is final until the token changes: status `revoked`, no reconnect, no polling. The
 *   client remembers the token the revoked stream used and reconnects only once its
 *   token (resolved again) differs: checked on `connect()`, `online`, the tab becoming
 *   visible and every `revokedRecheckMs`. A static string token stays revoked: the app
 *   must supply a new token (a token function that returns it, or a new client). The
 *   frame's huge `retry:` is capped like any other and is not what stops the client.
 */
import { backoffDelay } from './backoff.js';
import { parseData } from './dispatch.js';
import { PollingFallback } from './polling.js';
import { RevokedError, bearer, channelList, isFinal, query, refusal, resolveToken } from './request.js';
import { createParser } from './sse-parser.js';

/**
 * @param {any} o the client's options, defaults applied
 * @param {ReturnType<typeof import('./dispatch.js').createDispatcher>} dispatch
 */
export function createConnection(o, dispatch) {
  const channels = channelList(o.channel);
  const fetchImpl = o.fetch ?? globalThis.fetch.bind(globalThis);
  const timers = o.timers ?? { setTimeout: globalThis.setTimeout.bind(globalThis), clearTimeout: globalThis.clearTimeout.bind(globalThis) };
  const state = {
    status: /** @type {import('./sse-client').ConnectionStatus} */ ('disconnected'),
    transport: /** @type {import('./sse-client').Transport} */ ('sse'),
    lastEventId: o.lastEventId ?? '',
    lastEventTime: /** @type {number|null} */ (null),
    retryCount: 0,
    nextRetryAt: /** @type {number|null} */ (null),
    error: /** @type {any} */ (null),
    connectionId: /** @type {string|null} */ (null),
  };
  let serverRetry = 0;
  let generation = 0;
  /** The AbortController of the attempt that owns the stream (or is opening it). */
  let live = /** @type {AbortController|null} */ (null);
  let retryTimer = /** @type {any} */ (null);
  let watchdog = /** @type {any} */ (null);
  let probeTimer = /** @type {any} */ (null);
  let poller = /** @type {PollingFallback|null} */ (null);
  let source = /** @type {EventSource|null} */ (null);
  /** Event types the current EventSource listens for. */
  let esTypes = new Set();
  /** The last event ID the current EventSource reported (to tell an event's own ID). */
  let esLastId = '';
  let connectedAt = 0;
  /** The token the current stream was opened with (settles to undefined when unknown). */
  let usedToken = /** @type {Promise<string|undefined>} */ (Promise.resolve(undefined));
  /** While set, the token the server revoked: the client opens nothing with it again. */
  let revokedWith = /** @type {Promise<string|undefined>|null} */ (null);
  let recheckTimer = /** @type {any} */ (null);

  const snapshot = () => ({ ...state, isConnected: state.status === 'connected' });

  function setStatus(status, extra = {}) {
    Object.assign(state, { status }, extra);
    dispatch.call(o.onConnectionChange, status, snapshot());
  }

  /** One event from any transport; `data` already parsed. */
  function deliver(event) {
    if (!dispatch.fresh(event.id)) return;
    if (event.id) state.lastEventId = event.id;
    state.lastEventTime = Date.now();
    if (event.type === 'connected') state.connectionId = event.data?.connectionId ?? null;
    if (event.type === 'reset' && event.data?.lastEventId) state.lastEventId = event.data.lastEventId;
    // Stop before the application hears of it, so a handler that calls connect() goes
    // through the token check instead of being undone.
    if (event.type === 'closing' && event.data?.reason === 'revoked') revoke();
    dispatch.emit(event);
  }

  function armWatchdog(gen) {
    if (watchdog) timers.clearTimeout(watchdog);
    watchdog = timers.setTimeout(() => {
      if (gen === generation) fail(new Error('no event or heartbeat within the watchdog timeout'), gen);
    }, o.watchdogTimeout);
  }

  function clearTimers() {
    for (const t of [retryTimer, watchdog, probeTimer, recheckTimer]) if (t) timers.clearTimeout(t);
    retryTimer = watchdog = probeTimer = recheckTimer = null;
  }

  /**
   * Opens a fetch stream for generation `gen`. The attempt fails (once) through
   * `onError` when it errors, or when no byte of the stream arrived within
   * `connectTimeout` (a hung token(), a proxy holding the request, a buffering proxy).
   */
  function attemptFetch(gen, onError = fail) {
    const ctrl = new AbortController();
    live = ctrl;
    let failed = false;
    const failOnce = (err) => {
      if (failed) return;
      failed = true;
      timers.clearTimeout(deadline);
      if (live === ctrl && gen === generation) onError(err, gen);
    };
    const deadline = timers.setTimeout(() => {
      ctrl.abort();
      failOnce(new Error(`no stream within connectTimeout (${o.connectTimeout} ms)`));
    }, o.connectTimeout);
    // Returns normally only when superseded: nothing to report, the deadline goes too.
    runFetch(gen, ctrl, () => timers.clearTimeout(deadline)).then(() => timers.clearTimeout(deadline), failOnce);
  }

  async function runFetch(gen, ctrl, opened) {
    const stale = () => {
      if (gen === generation && live === ctrl) return false;
      ctrl.abort();
      return true;
    };
    const token = await resolveToken(o.token);
    if (stale()) return;
    usedToken = Promise.resolve(token);
    const headers = { Accept: 'text/event-stream', ...bearer(token) };
    if (state.lastEventId) headers['Last-Event-ID'] = state.lastEventId;
    const url = `${o.baseUrl}/sse/stream?${query(o.companyId, channels)}`;
    const res = await fetchImpl(url, { headers, signal: ctrl.signal, credentials: 'include', cache: 'no-store' });
    if (stale()) return;
    const refused = refusal(res, o.maxServerDelay);
    if (refused) throw refused;
    if (!(res.headers.get('content-type') ?? '').startsWith('text/event-stream')) throw new Error('not an event stream');
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    const parser = createParser({
      onEvent: (e) => !stale() && deliver({ id: e.id ?? '', type: e.type, data: parseData(e.data) }),
      onRetry: (ms) => (serverRetry = Math.min(ms, o.maxServerDelay)),
    });
    let open = false;
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (stale()) return;
        if (done) throw new Error('stream ended');
        if (!open) {
          // Open once bytes flow, not at the headers: a buffering proxy sends headers
          // and then nothing (the host writes `retry:` and `connected` at once).
          open = true;
          opened();
          onOpen('sse');
          if (stale()) return; // onConnectionChange called connect() or disconnect()
        }
        armWatchdog(gen);
        parser.feed(decoder.decode(value, { stream: true }));
      }
    } finally {
      if (live !== ctrl || gen !== generation) reader.cancel().catch(() => {});
    }
  }

  /** Native EventSource only reports named events it listens for: listen per type. */
  function listenFor(type) {
    if (!source || esTypes.has(type)) return;
    esTypes.add(type);
    const es = source;
    // A MessageEvent carries the last ID seen, not its own: an event whose ID did not
    // change had none of its own (a heartbeat, `closing`), so it is not a duplicate.
    es.addEventListener(type, (e) => {
      if (es !== source) return;
      const m = /** @type {MessageEvent} */ (e);
      const own = m.lastEventId !== esLastId ? m.lastEventId : '';
      esLastId = m.lastEventId;
      deliver({ id: own, type, data: parseData(m.data) });
    });
  }

  function runEventSource(gen) {
    const url = `${o.baseUrl}/sse/stream?${query(o.companyId, channels, { lastEventId: state.lastEventId })}`;
    const es = new EventSource(url, { withCredentials: true });
    source = es;
    // The cookie carries the credentials; the token option (if any) is what the app
    // keeps them in, and what a revocation is compared against.
    usedToken = resolveToken(o.token).catch(() => undefined);
    esTypes = new Set();
    esLastId = '';
    for (const t of ['message', 'connected', 'reset', 'closing', 'heartbeat', ...o.eventTypes, ...dispatch.types()]) listenFor(t);
    es.onopen = () => gen === generation && onOpen('sse');
    // Every error closes it and goes through this client's backoff, retry count and
    // fallback (the browser's own reconnect is a fixed delay with no limit). A native
    // EventSource cannot tell a 401 from a network error, so neither is final here.
    es.onerror = () => gen === generation && fail(new Error('EventSource connection failed'), gen);
  }

  function onOpen(transport) {
    connectedAt = Date.now();
    stopPolling();
    setStatus('connected', { transport, error: null, nextRetryAt: null });
  }

  function start() {
    const gen = ++generation;
    clearTimers();
    teardown();
    setStatus(state.retryCount === 0 ? 'connecting' : 'reconnecting', { nextRetryAt: null });
    if (gen !== generation) return; // onConnectionChange called connect() or disconnect()
    if (o.transport === 'eventsource') runEventSource(gen);
    else attemptFetch(gen);
  }

  function teardown() {
    live?.abort();
    live = null;
    source?.close();
    source = null;
  }

  /**
   * The live attempt failed: schedule the next one, fall back to polling, or stop.
   * `onError` runs last, so a handler that calls `connect()` or `disconnect()` has the
   * final word; so does an `onConnectionChange` that does (checked after each).
   */
  function fail(err, gen) {
    if (gen !== generation || state.status === 'disconnected') return;
    const g = ++generation;
    teardown();
    if (watchdog) timers.clearTimeout(watchdog);
    watchdog = null;
    if (connectedAt && Date.now() - connectedAt >= o.stableAfter) state.retryCount = 0;
    connectedAt = 0;
    state.error = err;
    if (isFinal(err)) {
      stopPolling();
      setStatus('failed', { error: err, nextRetryAt: null });
    } else {
      state.retryCount++;
      if (o.enablePollingFallback && state.retryCount >= o.fallbackAfter) {
        startPolling();
      } else if (state.retryCount > o.maxRetries) {
        setStatus('failed', { nextRetryAt: null });
      } else {
        const delay = Math.max(
          err?.retryAfter ?? 0,
          backoffDelay(state.retryCount - 1, { initial: o.initialRetryDelay, max: o.maxRetryDelay, floor: serverRetry, random: o.random }),
        );
        setStatus('reconnecting', { nextRetryAt: Date.now() + delay });
        if (g === generation) retryTimer = timers.setTimeout(start, delay);
      }
    }
    if (g === generation) dispatch.call(o.onError, err);
  }

  // --- polling fallback: same cursor, same de-duplication ---------------------------
  function startPolling() {
    const gen = generation;
    poller = new PollingFallback({
      companyId: o.companyId,
      channel: channels,
      baseUrl: o.baseUrl,
      token: o.token,
      pollInterval: o.pollInterval,
      maxServerDelay: o.maxServerDelay,
      lastEventId: state.lastEventId,
      fetch: fetchImpl,
      timers,
      onEvent: (e) => gen === generation && deliver(e),
      onPoll: (err) => gen === generation && polled(err),
    });
    setStatus('connected', { transport: 'polling', nextRetryAt: null });
    if (gen !== generation) return; // onConnectionChange called connect() or disconnect()
    poller.start();
    probeTimer = timers.setTimeout(probe, o.probeInterval);
  }

  /** After each poll: the cursor moves on, the status follows the outcome; `onError` last. */
  function polled(err) {
    if (!err) {
      if (poller?.lastEventId) state.lastEventId = poller.lastEventId;
      if (state.status !== 'connected') setStatus('connected', { transport: 'polling', error: null });
      return;
    }
    state.error = err;
    let g = generation;
    if (isFinal(err)) {
      g = ++generation;
      clearTimers();
      stopPolling();
      setStatus('failed', { error: err, nextRetryAt: null });
    } else {
      setStatus('reconnecting', { transport: 'polling' });
    }
    if (g === generation) dispatch.call(o.onError, err);
  }

  function stopPolling() {
    poller?.stop();
    poller = null;
    if (probeTimer) timers.clearTimeout(probeTimer);
    probeTimer = null;
    if (state.transport === 'polling') state.transport = 'sse';
  }

  /** Tries SSE again while polling; polling stops only once the stream is open. */
  function probe() {
    probeTimer = null;
    if (!poller) return;
    attemptFetch(generation, (err, gen) => {
      if (poller) probeTimer = timers.setTimeout(probe, o.probeInterval); // SSE still unavailable
      else fail(err, gen); // the probe had become the stream, and the stream ended
    });
  }

  // --- revocation: final until the token changes ------------------------------------
  /** The server revoked this stream's credentials: stop everything, remember the token. */
  function revoke() {
    generation++;
    clearTimers();
    teardown();
    stopPolling();
    connectedAt = 0;
    revokedWith = usedToken;
    holdRevoked(new RevokedError());
  }

  /** Status `revoked` with the re-check timer armed; `onError` last (it may connect()). */
  function holdRevoked(err) {
    const g = generation;
    setStatus('revoked', { error: err, nextRetryAt: null });
    if (g !== generation) return; // onConnectionChange called disconnect()
    armRecheck();
    dispatch.call(o.onError, err);
  }

  function armRecheck() {
    if (recheckTimer) timers.clearTimeout(recheckTimer);
    recheckTimer = timers.setTimeout(() => {
      recheckTimer = null;
      recheck(false);
    }, o.revokedRecheckMs);
  }

  /**
   * While revoked: resolves the token again and reconnects only if it is not the
   * revoked one. Without a token option (cookie auth) there is nothing to compare, so
   * an explicit `connect()` (the app says it has new credentials) reconnects.
   * @param {boolean} explicit called from connect()
   */
  async function recheck(explicit) {
    const gen = generation;
    const revoked = revokedWith;
    let changed = false;
    try {
      const [old, now] = await Promise.all([revoked, resolveToken(o.token)]);
      changed = now !== old || (explicit && o.token === undefined);
    } catch {
      // A failing token() offers no new token: stay revoked, check again later.
    }
    if (gen !== generation || revoked !== revokedWith) return; // disconnected, or already reconnected
    if (!changed) {
      if (!recheckTimer) armRecheck();
      return;
    }
    revokedWith = null;
    serverRetry = 0; // the revoked stream's `retry:` was meant for the revoked token
    state.retryCount = 0;
    state.error = null;
    start();
  }

  /** `online`, or the tab became visible: skip a pending backoff, wake a failed client. */
  function wake() {
    if (state.status === 'revoked') recheck(false);
    else if (state.status === 'failed' && !isFinal(state.error)) connect();
    else if (state.status === 'reconnecting' && retryTimer) start();
    else if (poller && probeTimer) {
      timers.clearTimeout(probeTimer);
      probe();
    }
  }
  const onVisible = () => globalThis.document?.visibilityState === 'visible' && wake();

  function connect() {
    if (revokedWith) {
      // Still the revoked token? Then stay (or be again) revoked and open nothing.
      if (state.status !== 'revoked') {
        generation++;
        clearTimers();
        teardown();
        stopPolling();
        const g = generation;
        setStatus('revoked', { error: new RevokedError(), nextRetryAt: null });
        if (g !== generation) return; // onConnectionChange called connect() or disconnect()
        armRecheck();
      }
      recheck(true);
      return;
    }
    state.retryCount = 0;
    state.error = null;
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
    getState: snapshot,
    /** The token the server revoked (null when not revoked): tab sharing compares it. */
    revokedToken: () => revokedWith,
    getLastEventId: () => state.lastEventId,
    listenFor,
    wake,
    destroy() {
      disconnect();
      globalThis.removeEventListener?.('online', wake);
      globalThis.document?.removeEventListener?.('visibilitychange', onVisible);
    },
  };
}
