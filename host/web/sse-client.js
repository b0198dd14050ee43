// @ts-check
/**
 * createSSEClient: a resilient client for sse-edge streams (the package's main entry).
 *
 * - Resumes with the last seen ID, surfaces `reset` (refetch your state), and delivers
 *   each event ID at most once, across reconnects, transport switches and tabs.
 * - Tabs of one origin that want the same stream share one connection (`shared`,
 *   on by default where Web Locks and BroadcastChannel exist; see tab-share.js).
 * - A throwing handler never ends the stream: its error goes to `onError`.
 * - A revocation (`closing` with reason `revoked`) holds the client at `revoked` until
 *   its token changes.
 * - Connection details (backoff, polling fallback, watchdog): connection.js.
 */
import { createConnection } from './connection.js';
import { createDispatcher } from './dispatch.js';
import { channelList } from './request.js';
import { canShare, createSharedClient } from './tab-share.js';

export { PollingFallback } from './polling.js';
export { HttpError, RevokedError, TokenError } from './request.js';

/** @typedef {'disconnected'|'connecting'|'connected'|'reconnecting'|'failed'|'revoked'} ConnectionStatus */
/** @typedef {'sse'|'polling'} Transport */

export const DEFAULTS = {
  baseUrl: '',
  initialRetryDelay: 1000,
  maxRetryDelay: 30000,
  maxRetries: 10,
  /** Cap on the server's `retry:` and `Retry-After` (a hostile or buggy value cannot park the client). */
  maxServerDelay: 120000,
  stableAfter: 10000,
  /** An attempt with no byte of the stream after this long is abandoned and retried. */
  connectTimeout: 20000,
  watchdogTimeout: 75000,
  enablePollingFallback: false,
  pollInterval: 5000,
  probeInterval: 30000,
  fallbackAfter: 2,
  /** While revoked, how often the token is resolved again to see whether it changed. */
  revokedRecheckMs: 30000,
  shared: true,
  transport: /** @type {'fetch'|'eventsource'} */ ('fetch'),
  // Native EventSource has no wildcard: these named events (the seed's channel table) are
  // listened for in addition to every type passed to subscribe().
  eventTypes: ['dashboard-update', 'evidence-update', 'evidence-deleted', 'report-update', 'report-ready', 'report-failed'],
};

/**
 * @param {import('./sse-client').SSEClientOptions} options
 * @returns {import('./sse-client').SSEClient}
 */
export function createSSEClient(options) {
  if (!options?.companyId) throw new TypeError('createSSEClient: companyId is required');
  if (!options.channel || channelList(options.channel).length === 0) throw new TypeError('createSSEClient: channel is required');
  const o = { ...DEFAULTS, ...options };
  const channels = channelList(o.channel);
  let impl = /** @type {any} */ (null);
  // Callbacks are read from `o` on every call: the React hooks pass wrappers that read
  // the latest props.
  const dispatch = createDispatcher(
    () => o,
    (type) => impl?.listenFor(type),
  );
  const share = o.shared && canShare(o.locks ?? globalThis.navigator?.locks);
  impl = share ? createSharedClient(o, channels, dispatch, createConnection) : createConnection(o, dispatch);
  return {
    connect: () => impl.connect(),
    disconnect: () => impl.disconnect(),
    destroy: () => impl.destroy(),
    getState: () => impl.getState(),
    getLastEventId: () => impl.getLastEventId(),
    subscribe: (type, fn) => dispatch.subscribe(type, fn),
  };
}
