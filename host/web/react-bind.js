// @ts-check
/**
 * React bindings, bound to the React they are given: `bindReact(React)` needs no bundler
 * and no JSX (pages without a build step pass `window.React`); `@sse-edge/client/react`
 * binds them to the `react` package.
 *
 * - Listeners live in a store the hook owns, not in the client: a child's
 *   `useSSEEvent` (or `useDashboardUpdate`) registers before its provider's effect has
 *   created the client, and keeps working when the client is re-created.
 * - Callbacks (`onMessage`, `onError`, `onReset`, `onConnectionChange`) and `token`
 *   are read fresh on every call; every other option is part of the connection's key,
 *   so changing it reconnects.
 * - Status comes through `useSyncExternalStore`. StrictMode-safe: every effect cleans
 *   up what it started, so a double mount leaves one stream.
 */
import { createSSEClient } from './sse-client.js';
import { createDispatcher } from './dispatch.js';
import { statusComponents } from './react-status.js';

const INITIAL = Object.freeze({ status: 'disconnected', transport: 'sse', isConnected: false, lastEventId: '', lastEventTime: null, retryCount: 0, nextRetryAt: null, error: null, connectionId: null });

/** Options that are read on every call (or, `lastEventId`, only at the start) instead of
 *  reconnecting when they change. */
const LIVE = new Set(['token', 'onMessage', 'onError', 'onReset', 'onConnectionChange', 'autoConnect', 'lastEventId']);

/** A key that changes exactly when an option that shapes the connection changes. */
export function connectionKey(options) {
  const shaping = Object.entries(options)
    .filter(([k, v]) => !LIVE.has(k) && typeof v !== 'function' && v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : 1));
  return JSON.stringify([shaping, options.token === undefined]);
}

/**
 * What a hook owns for the life of its component: the listeners and the status
 * snapshot, with the current client attached behind them.
 * @param {() => any} latest the latest options
 */
function createStore(latest) {
  let client = /** @type {any} */ (null);
  let snapshot = /** @type {any} */ (INITIAL);
  const watchers = new Set();
  const noop = () => {};
  // A type's first listener: the client's EventSource (if any) must listen for it.
  const listeners = createDispatcher(() => ({ onError: (e) => latest().onError?.(e) }), (type) => client?.subscribe(type, noop));
  return {
    attach(c) {
      client = c;
      c.subscribe((e) => listeners.emit(e));
      for (const type of listeners.types()) c.subscribe(type, noop);
    },
    detach(c) {
      if (client === c) client = null;
    },
    get client() {
      return client;
    },
    setState(s) {
      snapshot = s;
      for (const fn of [...watchers]) fn();
    },
    watch(fn) {
      watchers.add(fn);
      return () => watchers.delete(fn);
    },
    snapshot: () => snapshot,
    subscribe: (type, fn) => listeners.subscribe(type, fn),
    connect: () => client?.connect(),
    disconnect: () => client?.disconnect(),
    getLastEventId: () => client?.getLastEventId() ?? snapshot.lastEventId,
    getState: () => client?.getState() ?? snapshot,
  };
}

/** @param {typeof import('react')} React */
export function bindReact(React) {
  const h = React.createElement;

  /** @param {import('./sse-client').SSEClientOptions & { autoConnect?: boolean }} options */
  function useSSEConnection(options) {
    const { autoConnect = true, ...rest } = options;
    const latestRef = React.useRef(rest);
    latestRef.current = rest;
    const [store] = React.useState(() => createStore(() => latestRef.current));
    const key = connectionKey(rest);
    React.useEffect(() => {
      const latest = () => latestRef.current;
      const client = createSSEClient({
        ...latest(),
        token: latest().token === undefined ? undefined : () => {
          const t = latest().token;
          return typeof t === 'function' ? t() : t;
        },
        onConnectionChange: (status, s) => {
          if (store.client === client) store.setState(s); // not the torn-down client's last word
          latest().onConnectionChange?.(status, s);
        },
        onMessage: (e) => latest().onMessage?.(e),
        onError: (e) => latest().onError?.(e),
        onReset: (info) => latest().onReset?.(info),
      });
      store.attach(client);
      store.setState(client.getState());
      if (autoConnect) client.connect();
      return () => {
        store.detach(client);
        client.destroy();
      };
    }, [key, autoConnect]);
    // A new token after an auth failure or a revocation (an `auth` error too) is what
    // the app does to recover: connect again (after a revocation the client checks that
    // the token really changed).
    const token = typeof rest.token === 'string' ? rest.token : null;
    React.useEffect(() => {
      if (token && store.client?.getState().error?.kind === 'auth') store.client.connect();
    }, [token]);
    const state = React.useSyncExternalStore(store.watch, store.snapshot, store.snapshot);
    return React.useMemo(
      () => ({
        ...state,
        subscribe: store.subscribe,
        connect: store.connect,
        disconnect: store.disconnect,
        getLastEventId: store.getLastEventId,
        getState: store.getState,
      }),
      [state, store],
    );
  }

  /** Calls `handler(data)` for events of `type` on `connection`; the handler may change. */
  function useSSEMessage(connection, type, handler) {
    const ref = React.useRef(handler);
    ref.current = handler;
    React.useEffect(() => connection.subscribe(type, (e) => ref.current(e.data)), [connection.subscribe, type]);
  }

  const SSEContext = React.createContext(/** @type {any} */ (null));

  /** Provides one connection to a subtree. */
  function SSEProvider({ options, children }) {
    const connection = useSSEConnection(options);
    return h(SSEContext.Provider, { value: connection }, children);
  }

  /** The connection of the nearest SSEProvider (or DashboardWithSSE). */
  function useSSE() {
    const connection = React.useContext(SSEContext);
    if (!connection) throw new Error('useSSE must be used inside <SSEProvider> or <DashboardWithSSE>');
    return connection;
  }

  /** Inside a provider: `handler(data)` on every event of `type`. */
  function useSSEEvent(type, handler) {
    useSSEMessage(useSSE(), type, handler);
  }

  function useDashboardUpdates(companyId, onUpdate, options = {}) {
    const connection = useSSEConnection({ companyId, channel: 'dashboard-updates', ...options });
    useSSEMessage(connection, 'dashboard-update', onUpdate);
    return connection;
  }

  function useEvidenceUpdates(companyId, onUpdate, options = {}) {
    const connection = useSSEConnection({ companyId, channel: 'evidence-updates', ...options });
    useSSEMessage(connection, 'evidence-update', onUpdate);
    useSSEMessage(connection, 'evidence-deleted', onUpdate);
    return connection;
  }

  const status = statusComponents(React);

  /** The seed's DashboardWithSSE: one dashboard connection shared by its widgets. */
  function DashboardWithSSE({ companyId, children, options = {} }) {
    const connection = useSSEConnection({ companyId, channel: 'dashboard-updates', enablePollingFallback: true, ...options });
    return h(SSEContext.Provider, { value: connection }, h(status.ConnectionStatusBanner, { connection }), children);
  }

  /** Inside DashboardWithSSE: `handler(update)` on every dashboard update. */
  function useDashboardUpdate(handler) {
    useSSEEvent('dashboard-update', handler);
  }

  return {
    SSEProvider,
    SSEContext,
    useSSE,
    useSSEEvent,
    useSSEConnection,
    useSSEMessage,
    useDashboardUpdates,
    useEvidenceUpdates,
    DashboardWithSSE,
    useDashboardUpdate,
    ...status,
  };
}
