/** Types of `@sse-edge/client`: the sse-edge browser client (plain ES modules, no build step). */

/**
 * `revoked`: an admin disconnected or revoked this user (the server ended the stream
 * with a `closing` event, reason `revoked`). The client does not reconnect or poll until
 * its token changes; see `SSEClientOptions.revokedRecheckMs`.
 */
export type ConnectionStatus = 'disconnected' | 'connecting' | 'connected' | 'reconnecting' | 'failed' | 'revoked';
export type Transport = 'sse' | 'polling';

export interface SSEEvent<T = unknown> {
  /** The event ID (resume cursor); empty for events without one. */
  id: string;
  /** The event type (`event:` field), e.g. `dashboard-update`, `reset`. */
  type: string;
  /** The payload, parsed as JSON when it is JSON. */
  data: T;
}

export interface ConnectionState {
  status: ConnectionStatus;
  transport: Transport;
  isConnected: boolean;
  lastEventId: string;
  lastEventTime: number | null;
  retryCount: number;
  /** When the next reconnect attempt happens (ms since the epoch), if scheduled. */
  nextRetryAt: number | null;
  /**
   * The last error. `kind` says what happens next: `auth` (401/403 or a failing
   * `token()`: refresh the token, then `connect()`), `stopped` (204: the server said
   * stop), `request` (another 4xx: the request is wrong), `retry` (408/429/5xx: retried
   * after a delay); network errors have no kind and are retried. A revocation is an
   * `auth` error with `code: 'REVOKED'` (a `RevokedError`). In a tab that follows
   * another tab's shared stream this is a plain object with the same fields.
   */
  error: (Error & { status?: number; kind?: ErrorKind; code?: string }) | null;
  connectionId: string | null;
  /** With tab sharing: whether this tab holds the stream (`leader`) or follows one. */
  role?: 'leader' | 'follower' | 'none';
}

export type ErrorKind = 'auth' | 'stopped' | 'request' | 'retry';

export interface SSEClientOptions {
  companyId: string;
  channel: string | string[];
  /** Bearer token, or a function returning the current one (called on every attempt,
   *  and once when a tab joins a shared stream; a function that throws or rejects is an
   *  auth error, not retried). */
  token?: string | (() => string | Promise<string>);
  /** Origin of the host; '' for same origin. */
  baseUrl?: string;
  /** `fetch` (default, sends the token in a header) or `eventsource` (cookie auth). */
  transport?: 'fetch' | 'eventsource';
  /** With `eventsource`: named event types to listen for besides those passed to
   *  `subscribe` (a native EventSource has no wildcard). Default: the seed's types. */
  eventTypes?: string[];
  initialRetryDelay?: number;
  maxRetryDelay?: number;
  maxRetries?: number;
  /** A connection open this long resets the backoff. */
  stableAfter?: number;
  /** An attempt with no byte of the stream after this long is abandoned and retried (default 20000). */
  connectTimeout?: number;
  /** Reconnect when nothing (not even a heartbeat) arrived for this long (fetch transport). */
  watchdogTimeout?: number;
  enablePollingFallback?: boolean;
  pollInterval?: number;
  /** While polling, how often to try SSE again. */
  probeInterval?: number;
  /** Consecutive SSE failures before falling back to polling. */
  fallbackAfter?: number;
  /**
   * After a revocation, how often (ms, default 30000) the token is resolved again; the
   * client reconnects only when it differs from the revoked one (also checked on
   * `connect()`, `online` and the tab becoming visible). A static string token stays
   * revoked: pass a token function that returns the new token, or create a new client.
   * Without `token` (cookie auth) only an explicit `connect()` reconnects.
   */
  revokedRecheckMs?: number;
  /** Cap on the server's `retry:` and `Retry-After`, in ms (default 120000). */
  maxServerDelay?: number;
  /** Resume from this ID on the first connect. */
  lastEventId?: string;
  /**
   * Share one stream between the tabs (and clients) of this origin that ask for the same
   * stream (default true; needs Web Locks and BroadcastChannel, else each tab connects).
   */
  shared?: boolean;
  /** Who is asking, for sharing: tabs with different keys never share. Default: the
   *  `sub` and `role` of the token when the tab joins (a token that is not a readable JWT
   *  shares with no one; no token at all, cookie auth, shares by origin). */
  shareKey?: string;
  /** Called with the status first (as the seed calls it) and the whole state second. */
  onConnectionChange?: (status: ConnectionStatus, state: ConnectionState) => void;
  /** Every data event (not `connected`, `heartbeat` or `closing`). */
  onMessage?: (event: SSEEvent) => void;
  /** Connection errors, and errors thrown by handlers (which never end the stream). */
  onError?: (error: Error) => void;
  /** History was lost: refetch state; the stream continues from `lastEventId`. */
  onReset?: (info: { reason: string; lastEventId: string }) => void;
  /** Test seams. */
  fetch?: typeof fetch;
  timers?: { setTimeout: typeof setTimeout; clearTimeout: typeof clearTimeout };
  random?: () => number;
  locks?: Pick<LockManager, 'request'>;
}

export interface SSEClient {
  /** Connects; after a revocation, only if the token is no longer the revoked one. */
  connect(): void;
  disconnect(): void;
  /** Stops and removes the client's global listeners (online, visibility). */
  destroy(): void;
  /** Subscribe to one event type, or to all with a single function argument. */
  subscribe<T = unknown>(type: string, fn: (event: SSEEvent<T>) => void): () => void;
  subscribe<T = unknown>(fn: (event: SSEEvent<T>) => void): () => void;
  getState(): ConnectionState;
  getLastEventId(): string;
}

export function createSSEClient(options: SSEClientOptions): SSEClient;

export interface PollingFallbackOptions {
  companyId: string;
  channel: string | string[];
  token?: string | (() => string | Promise<string>);
  baseUrl?: string;
  /** Milliseconds between polls (default 5000); `Retry-After` stretches it. */
  pollInterval?: number;
  maxServerDelay?: number;
  /** Poll from this ID. */
  lastEventId?: string;
  onMessage?: (event: SSEEvent) => void;
  onError?: (error: Error) => void;
  onReset?: (info: { reason: string; lastEventId: string }) => void;
  fetch?: typeof fetch;
  timers?: { setTimeout: typeof setTimeout; clearTimeout: typeof clearTimeout };
}

/** The seed's polling fallback: `GET /sse/poll` on an interval, from a cursor. */
export class PollingFallback {
  constructor(options: PollingFallbackOptions);
  /** Starts (or restarts) polling from `lastEventId`. */
  start(): void;
  /** Stops; a poll in flight changes nothing when it settles. */
  stop(): void;
  readonly running: boolean;
  /** The cursor: the last event ID received (or the server's `next`). */
  lastEventId: string;
  subscribe<T = unknown>(type: string, fn: (event: SSEEvent<T>) => void): () => void;
  subscribe<T = unknown>(fn: (event: SSEEvent<T>) => void): () => void;
}

export class HttpError extends Error {
  constructor(status: number, retryAfter?: number);
  status: number;
  retryAfter: number;
  kind: ErrorKind;
}

export class TokenError extends Error {
  constructor(cause: unknown);
  kind: 'auth';
}

/** `state.error` after a revocation: only a new token helps. */
export class RevokedError extends Error {
  constructor();
  code: 'REVOKED';
  kind: 'auth';
}
