// @ts-check
/**
 * Delivery to the application: listeners by event type, de-duplication by event ID,
 * and handlers that cannot hurt the stream. Shared by the client's own connection, the
 * polling fallback and the tab-sharing follower, so every path delivers the same way.
 */

/** How many recent event IDs are remembered for de-duplication. */
const SEEN_IDS = 1000;
/** Event types that are about the connection, not the application's data. */
const CONTROL = new Set(['connected', 'closing', 'heartbeat']);

/**
 * @typedef {{ id: string, type: string, data: any }} SSEEvent
 * @typedef {{
 *   onMessage?: (e: SSEEvent) => void,
 *   onReset?: (info: any) => void,
 *   onError?: (err: Error) => void,
 * }} Callbacks
 */

/** Parses a payload as JSON when it is JSON, else keeps the text. */
export function parseData(raw) {
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}

/**
 * Calls `fn(...args)`; an exception goes to `onError` (and never further), so one
 * broken handler cannot end the stream or stop the other handlers.
 * @param {() => Callbacks} callbacks
 */
export function guard(callbacks) {
  return (fn, ...args) => {
    if (!fn) return;
    try {
      fn(...args);
    } catch (err) {
      try {
        callbacks().onError?.(err instanceof Error ? err : new Error(String(err)));
      } catch {
        /* an onError that throws has nowhere left to report to */
      }
    }
  };
}

/**
 * @param {() => Callbacks} callbacks read on every event, so they may change
 * @param {(type: string) => void} [onNewType] told when a type gets its first listener
 */
export function createDispatcher(callbacks, onNewType) {
  /** @type {Map<string, Set<Function>>} */
  const listeners = new Map();
  const seen = new Set();
  const order = [];
  const call = guard(callbacks);

  return {
    call,
    /** Event types with listeners (without `*`). */
    types: () => [...listeners.keys()].filter((t) => t !== '*'),
    /** @param {string | Function} type @param {Function} [fn] @returns {() => void} */
    subscribe(type, fn) {
      const [key, handler] = typeof type === 'function' ? ['*', type] : [type, fn];
      if (typeof handler !== 'function') throw new TypeError('subscribe needs a handler function');
      if (!listeners.has(key)) {
        listeners.set(key, new Set());
        if (key !== '*') onNewType?.(key);
      }
      listeners.get(key)?.add(handler);
      return () => listeners.get(key)?.delete(handler);
    },
    /** Records an ID as delivered; false when it was already. Empty IDs always pass. */
    fresh(id) {
      if (!id) return true;
      if (seen.has(id)) return false;
      seen.add(id);
      order.push(id);
      if (order.length > SEEN_IDS) seen.delete(order.shift());
      return true;
    },
    /**
     * Delivers one event to the application: `onReset` for resets, `onMessage` for
     * data events, then the listeners of its type and of `*`.
     * @param {SSEEvent} event
     */
    emit(event) {
      const cb = callbacks();
      if (event.type === 'reset') call(cb.onReset, event.data);
      if (!CONTROL.has(event.type)) call(cb.onMessage, event);
      for (const key of [event.type, '*']) for (const fn of [...(listeners.get(key) ?? [])]) call(fn, event);
    },
  };
}
