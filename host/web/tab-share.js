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
 * of the token, read when the tab joins, so tabs signed in as different users never
 * share; a token that cannot be read shares with no one).
 *
 * A follower that gets a new token after an auth failure asks the leader to step down,
 * so a tab with a fresh token leads; `online` and a tab becoming visible wake the
 * leader's connection from any tab. After a revocation the leader steps down only for a
 * tab whose token is not the revoked one (compared by SHA-256, tokens never cross the
 * channel), so no tab opens a stream with the revoked token.
 */
import { resolveToken } from './request.js';

/** @typedef {ReturnType<typeof import('./dispatch.js').createDispatcher>} Dispatcher */

/** True where tabs can share (Web Locks and BroadcastChannel exist). */
export function canShare(locks) {
  return Boolean(locks?.request) && typeof globalThis.BroadcastChannel === 'function';
}

/** The claims that say who a token is for, read without verifying (only to partition);
 *  null when the token cannot be read. */
export function tokenOwner(token) {
  if (typeof token !== 'string' || token === '') return token === undefined || token === '' ? '' : null;
  try {
    const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const claims = JSON.parse(atob(part));
    return `${claims.sub ?? ''}/${claims.role ?? ''}`;
  } catch {
    return null;
  }
}

/** Who is asking: `shareKey`, else the owner of the current token (null: unknown). */
async function owner(o) {
  if (o.shareKey !== undefined) return String(o.shareKey);
  try {
    return tokenOwner(typeof o.token === 'function' ? await o.token() : o.token);
  } catch {
    return null; // the leader's own token() call reports the failure
  }
}

/** The lock and channel name of a stream; an unknown owner gets a name of its own. */
export function shareName(o, channels, who) {
  const origin = o.baseUrl || globalThis.location?.origin || '';
  const key = who ?? `unshared-${Math.random().toString(36).slice(2)}-${Date.now()}`;
  return `sse-edge|${origin}|${o.companyId}|${[...channels].sort().join(',')}|${o.transport}|${key}`;
}

/**
 * A token's SHA-256 (hex), to compare tokens between tabs without posting them; '' for
 * no token; null where WebCrypto is missing (plain-HTTP pages).
 * @param {string | undefined} value
 */
export async function tokenDigest(value) {
  const subtle = globalThis.crypto?.subtle;
  if (!subtle) return null;
  if (!value) return '';
  const hash = await subtle.digest('SHA-256', new TextEncoder().encode(value));
  return [...new Uint8Array(hash)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/** An error as it crosses the channel (structured clone keeps no class). */
const plainError = (e) => (e ? { name: e.name, message: e.message, status: e.status, kind: e.kind, code: e.code } : null);

/**
 * @param {any} o options with defaults applied
 * @param {string[]} channels
 * @param {Dispatcher} dispatch the application's listeners in this tab
 * @param {(o: any, dispatch: any) => ReturnType<typeof import('./connection.js').createConnection>} connect
 */
export function createSharedClient(o, channels, dispatch, connect) {
  const locks = o.locks ?? globalThis.navigator?.locks;
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

  async function join() {
    const me = { channel: null, abort: new AbortController(), conn: null, release: null, leaving: false, types: new Set() };
    member = me;
    setState({ status: 'connecting', role: 'follower' });
    const name = shareName(o, channels, await owner(o));
    if (member !== me) return; // left while the token was read
    me.channel = new BroadcastChannel(name);
    me.channel.onmessage = (m) => member === me && onMessage(me, m.data);
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
          if (me.leaving) return; // its last word (disconnected) is not the stream's state
          me.channel.postMessage({ t: 'state', s: { ...s, error: plainError(s.error) } });
          setState({ ...s, lastEventId: state.lastEventId, role: 'leader' });
        },
      },
      relay,
    );
    me.channel.postMessage({ t: 'leader' }); // followers answer with the types they need
    me.conn.connect();
    return new Promise((resolve) => (me.release = resolve));
  }

  function onMessage(me, msg) {
    if (me.conn) {
      // Leader: a tab joined (tell it where things stand), needs event types, asks for a
      // reconnect, or woke up.
      if (msg.t === 'hello' || msg.t === 'types') {
        for (const t of msg.types ?? []) {
          me.types.add(t);
          me.conn.listenFor(t);
        }
      }
      if (msg.t === 'hello') {
        const s = me.conn.getState();
        me.channel.postMessage({ t: 'state', s: { ...s, error: plainError(s.error) } });
      } else if (msg.t === 'connect') {
        const s = me.conn.getState();
        // After an auth failure this tab's token is the stale one: let the asking tab lead.
        if (s.status === 'revoked') revokedConnect(me, msg.token);
        else if (s.error?.kind === 'auth') stepDown();
        else if (s.status === 'failed') me.conn.connect();
      } else if (msg.t === 'wake') {
        me.conn.wake();
      }
      return;
    }
    if (msg.t === 'event') deliverLocal(msg.e);
    else if (msg.t === 'state') setState({ ...msg.s, lastEventId: state.lastEventId, lastEventTime: state.lastEventTime, role: 'follower' });
    else if (msg.t === 'leader') me.channel.postMessage({ t: 'types', types: dispatch.types() });
  }

  /**
   * Leader, revoked: a follower whose token differs from the revoked one leads (an
   * unknown digest too: WebCrypto missing); else this tab checks its own token again.
   * @param {any} me @param {string | null | undefined} theirs the asking tab's token digest
   */
  async function revokedConnect(me, theirs) {
    const mine = await tokenDigest(await me.conn.revokedToken());
    if (member !== me || me.conn.getState().status !== 'revoked') return;
    if (theirs == null || mine === null || theirs !== mine) stepDown();
    else me.conn.connect();
  }

  /** Follower, the stream revoked: asks to connect with a digest of this tab's token. */
  async function askAfterRevocation(me) {
    let digest = null;
    try {
      digest = await tokenDigest(await resolveToken(o.token));
    } catch {
      // this tab's token() failed: let it lead, its own connection reports the failure
    }
    if (member === me) me.channel?.postMessage({ t: 'connect', token: digest });
  }

  /** Gives the stream to the next tab in line and queues up again behind it. */
  function stepDown() {
    leave();
    join();
  }

  /** A follower tab woke (online, visible): the leader's connection should know. */
  function wake() {
    if (member?.channel && !member.conn) member.channel.postMessage({ t: 'wake' });
  }
  const onVisible = () => globalThis.document?.visibilityState === 'visible' && wake();
  globalThis.addEventListener?.('online', wake);
  globalThis.document?.addEventListener?.('visibilitychange', onVisible);

  function leave() {
    const me = member;
    if (!me) return;
    member = null;
    me.leaving = true;
    me.conn?.destroy();
    me.release?.();
    me.abort.abort();
    me.channel?.close();
  }

  return {
    connect() {
      if (member?.conn) member.conn.connect();
      else if (member?.channel && state.status === 'revoked') askAfterRevocation(member);
      else if (member?.channel) member.channel.postMessage({ t: 'connect' });
      else if (!member) join();
    },
    disconnect() {
      leave();
      setState({ status: 'disconnected', nextRetryAt: null, role: 'none' });
    },
    destroy() {
      leave();
      globalThis.removeEventListener?.('online', wake);
      globalThis.document?.removeEventListener?.('visibilitychange', onVisible);
    },
    getState: () => state,
    getLastEventId: () => state.lastEventId,
    /** A type got its first listener here: the leader's EventSource must listen for it too. */
    listenFor(type) {
      if (member?.conn) member.conn.listenFor(type);
      else member?.channel?.postMessage({ t: 'types', types: [type] });
    },
  };
}
