// @ts-check
/**
 * Status components for a connection from `useSSEConnection`: an indicator with
 * details, a dot, a badge and a banner. Only the short label sits in a live region:
 * the ticking details (retry countdown) are outside it, so a screen reader announces a
 * change of state once, not every second.
 */

const LABELS = { connected: 'Live', connecting: 'Connecting…', reconnecting: 'Reconnecting…', failed: 'Offline', revoked: 'Access revoked', disconnected: 'Disconnected' };
const COLORS = { connected: '#1a7f37', connecting: '#9a6700', reconnecting: '#9a6700', failed: '#cf222e', revoked: '#cf222e', disconnected: '#6e7781' };

/** @param {{ status: string, transport?: string }} c */
export function statusLabel(c) {
  return c.status === 'connected' && c.transport === 'polling' ? 'Live (polling)' : LABELS[c.status] ?? c.status;
}

/** @param {typeof import('react')} React */
export function statusComponents(React) {
  const h = React.createElement;

  function Dot({ status }) {
    return h('span', { 'aria-hidden': true, style: { display: 'inline-block', width: 8, height: 8, borderRadius: 4, background: COLORS[status] } });
  }

  /** Re-renders every second while `on`: for countdowns. */
  function useTick(on) {
    const [, tick] = React.useState(0);
    React.useEffect(() => {
      if (!on) return undefined;
      const t = setInterval(() => tick((n) => n + 1), 1000);
      return () => clearInterval(t);
    }, [on]);
  }

  /** Full indicator with details: position, last event time, retry countdown. */
  function ConnectionStatus({ connection, position = 'top-right', showDetails = false }) {
    useTick(showDetails);
    const [v, hz] = position.split('-');
    const live = showDetails ? connection.getState?.() ?? connection : connection;
    const details = showDetails
      ? [
          live.lastEventTime ? ` · last event ${new Date(live.lastEventTime).toLocaleTimeString()}` : '',
          live.nextRetryAt ? ` · retry in ${Math.max(0, Math.ceil((live.nextRetryAt - Date.now()) / 1000))}s` : '',
        ].join('')
      : '';
    return h('div', { 'data-status': connection.status, style: { position: 'fixed', [v]: 12, [hz]: 12, padding: '4px 8px', borderRadius: 6, background: '#fff', boxShadow: '0 1px 3px #0003', color: '#1f2328', font: '12px sans-serif' } },
      h('span', { role: 'status', 'aria-live': 'polite' }, h(Dot, { status: connection.status }), ' ', statusLabel(connection)),
      h('span', { className: 'sse-status-details' }, details));
  }

  function ConnectionStatusCompact({ connection }) {
    return h('span', { role: 'status', 'aria-label': statusLabel(connection), title: statusLabel(connection) }, h(Dot, { status: connection.status }));
  }

  function ConnectionStatusBadge({ connection }) {
    return h('span', { role: 'status', 'data-status': connection.status, style: { padding: '2px 6px', borderRadius: 10, color: '#fff', background: COLORS[connection.status], font: '11px sans-serif' } }, statusLabel(connection));
  }

  /**
   * Shown while not live; dismissible for this outage only (it returns on the next
   * one). A failed connection offers "Retry now", except after an auth failure or a
   * revocation, where only a new token helps.
   */
  function ConnectionStatusBanner({ connection, onDismiss }) {
    const [dismissed, setDismissed] = React.useState(false);
    const live = connection.status === 'connected';
    React.useEffect(() => {
      if (live) setDismissed(false);
    }, [live]);
    if (dismissed || live || connection.status === 'disconnected') return null;
    const failed = connection.status === 'failed';
    const auth = connection.error?.kind === 'auth';
    const text = connection.status === 'revoked'
      ? 'Live updates were stopped by an administrator; they resume with a new sign-in. '
      : failed ? (auth ? 'Not signed in for live updates. ' : 'Live updates are offline. ') : 'Reconnecting to live updates… ';
    return h('div', { role: 'status', className: 'sse-banner', style: { padding: 8, background: '#fff8c5', font: '13px sans-serif' } },
      text,
      failed && !auth ? h('button', { type: 'button', onClick: () => connection.connect() }, 'Retry now') : null,
      ' ',
      h('button', { type: 'button', onClick: () => { setDismissed(true); onDismiss?.(); } }, 'Dismiss'));
  }

  return { ConnectionStatus, ConnectionStatusCompact, ConnectionStatusBadge, ConnectionStatusBanner };
}
