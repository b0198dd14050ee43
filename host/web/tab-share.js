// @ts-check
/**
 * One stream per browser: the tabs (and clients) of one origin that want the same
 * stream share one connection. A Web Lock elects the leader, which owns the real
 * connection and re-posts every event and state change on a BroadcastChannel; the
 * others follow. The lock dies with its tab, so when the leader closes the next tab in
 * line takes over and resumes from the last ID it received: followers track the
 * cursor and de-duplicate like a connection does, so a handover loses nothing and
 * shows nothing twice.
 *
 * Tabs share only when they ask for the same stream: origin of the host, company,
 * channels, transport, and who is asking (`shareKey`, by default the `sub` and `role`
 * of a string token, so tabs signed in as different users never share).
 */

/** @typedef {ReturnType<typeof import('./dispatch.js').createDispatcher>} Dispatcher */

/** True where tabs can share (Web Locks and BroadcastChannel exist). */
export function canShare(locks) {
  return Boolean(locks?.request) && typeof globalThis.BroadcastChannel === 'function';
}

/** The claims that say who a token is for, read without verifying (only to partition). */
function tokenOwner(token) {
  if (typeof token !== 'string') return '';
  try {
    const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const claims = JSON.parse(atob(part));
    return `${claims.sub ?? ''}/${claims.role ?? ''}`;
  } catch {
    return '';
  }
}

/** The lock and channel name of a stream. */
export function shareName(o, channels) {
  const origin = o.baseUrl || globalThis.location?.origin || '';
  const who = o.shareKey ?? tokenOwner(o.token);
  return `sse-edge|${origin}|${o.companyId}|${[...channels].sort().join(',')}|${o.transport}|${who}`;
}

/** An error as it crosses the channel (structured clone keeps no class). */
const plainError = (e) => (e ? { name: e.name, message: e.message, status: e.status, kind: e.kind } : null);

/**
 * @param {any} o options with defaults applied
 * @param {string[]} channels
 * @param {Dispatcher} dispatch the application's listeners in this tab
 * @param {(o: any, dispatch: any) => ReturnType<typeof import('./connection.js').createConnection>} connect
 */
export function createSharedClient(o, channels, dispatch, connect) {
  const locks = o.locks ?? globalThis.navigator?.locks;
  const name = shareName(o, channels);
  let state = { status: 'disconnected', transport: 'sse', lastEventId: o.lastEventId ?? '', lastEventTime: null, retryCount: 0, nextRetryAt: null, error: null, connectionId: null, isConnected: false, role: 'none' };
  /** The current membership; a new object per join, null when not joined. */
  let member = /** @type {any} */ (null);

  function setState(next) {
    state = { ...state, ...next, isConnected: next.status === 'connected' };
    dispatch.call(o.onConnectionChange, state.status, state);
  }

  /** An event for this tab's application: once per ID, whichever role delivered it. */
  function deliverLocal(e) {
    if (!dispatch.fresh(e.id)) return;
    if (e.id) state.lastEventId = e.id;
    if (e.type === 'reset' && e.data?.lastEventId) state.lastEventId = e.data.lastEventId;
    state.lastEventTime = Date.now();
    dispatch.emit(e);
  }

  function join() {
    const me = { channel: new BroadcastChannel(name), abort: new AbortController(), conn: null, release: null, types: new Set() };
    member = me;
    me.channel.onmessage = (m) => member === me && onMessage(me, m.data);
    setState({ status: 'connecting', role: 'follower' });
    locks
      .request(name, { signal: me.abort.signal }, () => (member === me ? lead(me) : undefined))
      .catch(() => {}); // aborted while waiting: this tab left
    me.channel.postMessage({ t: 'hello', types: dispatch.types() });
  }

  /** This tab holds the lock: open the real connection, resuming from what it has seen. */
  function lead(me) {
    const relay = {
      call: dispatch.call,
      types: () => [...new Set([...dispatch.types(), ...me.types])],
      fresh: () => true, // each receiver de-duplicates for itself
      emit(e) {
        me.channel.postMessage({ t: 'event', e });
        deliverLocal(e);
      },
    };
    me.conn = connect(
      {
        ...o,
        lastEventId: state.lastEventId,
        onConnectionChange: (_status, s) => {
          me.channel.postMessage({ t: 'state', s: { ...s, error: plainError(s.error) } });
          setState({ ...s, lastEventId: state.lastEventId, role: 'leader' });
        },
      },
      relay,
    );
    me.conn.connect();
    return new Promise((resolve) => (me.release = resolve));
  }

  function onMessage(me, msg) {
    if (me.conn) {
      // Leader: a tab joined (tell it where things stand) or asks for a reconnect.
      if (msg.t === 'hello') {
        for (const t of msg.types ?? []) {
          me.types.add(t);
          me.conn.listenFor(t);
        }
        const s = me.conn.getState();
        me.channel.postMessage({ t: 'state', s: { ...s, error: plainError(s.error) } });
      } else if (msg.t === 'types') {
        for (const t of msg.types) me.conn.listenFor(t);
      } else if (msg.t === 'connect' && me.conn.getState().status === 'failed') {
        me.conn.connect();
      }
      return;
    }
    if (msg.t === 'event') deliverLocal(msg.e);
    else if (msg.t === 'state') setState({ ...msg.s, lastEventId: state.lastEventId, lastEventTime: state.lastEventTime, role: 'follower' });
  }

  function leave() {
    const me = member;
    if (!me) return;
    member = null;
    me.conn?.destroy();
    me.release?.();
    me.abort.abort();
    me.channel.close();
  }

  return {
    connect() {
      if (member?.conn) member.conn.connect();
      else if (member) member.channel.postMessage({ t: 'connect' });
      else join();
    },
    disconnect() {
      leave();
      setState({ status: 'disconnected', nextRetryAt: null, role: 'none' });
    },
    destroy() {
      leave();
    },
    getState: () => state,
    getLastEventId: () => state.lastEventId,
    /** A type got its first listener here: the leader's EventSource must listen for it too. */
    listenFor(type) {
      if (member?.conn) member.conn.listenFor(type);
      else member?.channel.postMessage({ t: 'types', types: [type] });
    },
  };
}
