// @ts-check
/**
 * React bindings (React is a peer dependency, passed in once with `bindReact(React)`
 * so this module needs no bundler and no JSX). StrictMode-safe: every effect cleans up
 * what it started, so a double mount opens one stream, not two.
 *
 *   import * as React from 'react';
 *   import { bindReact } from '/web/react.js';
 *   const { useSSEConnection, useDashboardUpdates, ConnectionStatus } = bindReact(React);
 */
import { createSSEClient } from './sse-client.js';

/** @param {typeof import('react')} React */
export function bindReact(React) {
  const h = React.createElement;
  const SSEContext = React.createContext(/** @type {any} */ (null));

  /** Provides one connection to a subtree. */
  function SSEProvider({ options, children }) {
    const connection = useSSEConnection(options);
    return h(SSEContext.Provider, { value: connection }, children);
  }

  /** @param {import('./sse-client').SSEClientOptions & { autoConnect?: boolean }} options */
  function useSSEConnection(options) {
    const { autoConnect = true, ...rest } = options;
    const optsRef = React.useRef(rest);
    optsRef.current = rest;
    const [state, setState] = React.useState(() => ({ status: 'disconnected', transport: 'sse', isConnected: false }));
    const clientRef = React.useRef(/** @type {any} */ (null));
    const key = `${rest.companyId}|${[].concat(rest.channel).join(',')}|${rest.transport ?? ''}`;
    React.useEffect(() => {
      const client = createSSEClient({
        ...optsRef.current,
        onConnectionChange: (_status, s) => {
          setState(s);
          optsRef.current.onConnectionChange?.(_status, s);
        },
      });
      clientRef.current = client;
      if (autoConnect) client.connect();
      return () => {
        client.destroy();
        clientRef.current = null;
      };
    }, [key, autoConnect]);
    const subscribe = React.useCallback((type, fn) => clientRef.current?.subscribe(type, fn) ?? (() => {}), [key]);
    return React.useMemo(
      () => ({
        ...state,
        subscribe,
        connect: () => clientRef.current?.connect(),
        disconnect: () => clientRef.current?.disconnect(),
        getLastEventId: () => clientRef.current?.getLastEventId() ?? '',
      }),
      [state, subscribe],
    );
  }

  /** Calls `handler(data)` for events of `type` on `connection`. */
  function useSSEMessage(connection, type, handler) {
    const ref = React.useRef(handler);
    ref.current = handler;
    React.useEffect(() => connection.subscribe(type, (e) => ref.current(e.data)), [connection.subscribe, type]);
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

  const DashboardContext = React.createContext(/** @type {any} */ (null));

  /** The seed's DashboardWithSSE: one dashboard connection shared by its widgets. */
  function DashboardWithSSE({ companyId, children, options = {} }) {
    const connection = useSSEConnection({ companyId, channel: 'dashboard-updates', enablePollingFallback: true, ...options });
    return h(DashboardContext.Provider, { value: connection }, h(ConnectionStatusBanner, { connection }), children);
  }

  /** Inside DashboardWithSSE: `handler(update)` on every dashboard update. */
  function useDashboardUpdate(handler) {
    const connection = React.useContext(DashboardContext);
    if (!connection) throw new Error('useDashboardUpdate must be used inside <DashboardWithSSE>');
    useSSEMessage(connection, 'dashboard-update', handler);
  }

  const LABELS = { connected: 'Live', connecting: 'Connecting…', reconnecting: 'Reconnecting…', failed: 'Offline', disconnected: 'Disconnected' };
  const COLORS = { connected: '#1a7f37', connecting: '#9a6700', reconnecting: '#9a6700', failed: '#cf222e', disconnected: '#6e7781' };

  function label(c) {
    return c.status === 'connected' && c.transport === 'polling' ? 'Live (polling)' : LABELS[c.status];
  }

  function Dot({ status }) {
    return h('span', { 'aria-hidden': true, style: { display: 'inline-block', width: 8, height: 8, borderRadius: 4, background: COLORS[status] } });
  }

  /** Full indicator with details: position, last event time, retry countdown. */
  function ConnectionStatus({ connection, position = 'top-right', showDetails = false }) {
    const [, tick] = React.useState(0);
    React.useEffect(() => {
      const t = setInterval(() => tick((n) => n + 1), 1000);
      return () => clearInterval(t);
    }, []);
    const [v, hz] = position.split('-');
    const details = showDetails
      ? [
          connection.lastEventTime ? ` · last event ${new Date(connection.lastEventTime).toLocaleTimeString()}` : '',
          connection.nextRetryAt ? ` · retry in ${Math.max(0, Math.ceil((connection.nextRetryAt - Date.now()) / 1000))}s` : '',
        ].join('')
      : '';
    return h('div', { role: 'status', 'aria-live': 'polite', style: { position: 'fixed', [v]: 12, [hz]: 12, padding: '4px 8px', borderRadius: 6, background: '#fff', boxShadow: '0 1px 3px #0003', font: '12px sans-serif' } },
      h(Dot, { status: connection.status }), ' ', label(connection), details);
  }

  function ConnectionStatusCompact({ connection }) {
    return h('span', { role: 'status', 'aria-label': label(connection), title: label(connection) }, h(Dot, { status: connection.status }));
  }

  function ConnectionStatusBadge({ connection }) {
    return h('span', { role: 'status', style: { padding: '2px 6px', borderRadius: 10, color: '#fff', background: COLORS[connection.status], font: '11px sans-serif' } }, label(connection));
  }

  /** Shown only while not live; dismissible. */
  function ConnectionStatusBanner({ connection, onDismiss }) {
    const [dismissed, setDismissed] = React.useState(false);
    if (dismissed || connection.status === 'connected' || connection.status === 'disconnected') return null;
    return h('div', { role: 'status', style: { padding: 8, background: '#fff8c5', font: '13px sans-serif' } },
      connection.status === 'failed' ? 'Live updates are offline. ' : 'Reconnecting to live updates… ',
      h('button', { type: 'button', onClick: () => { setDismissed(true); onDismiss?.(); } }, 'Dismiss'));
  }

  return {
    SSEProvider,
    SSEContext,
    useSSEConnection,
    useSSEMessage,
    useDashboardUpdates,
    useEvidenceUpdates,
    DashboardWithSSE,
    useDashboardUpdate,
    ConnectionStatus,
    ConnectionStatusCompact,
    ConnectionStatusBadge,
    ConnectionStatusBanner,
  };
}
