/** Types of the sse-edge browser client (plain ES modules, no build step). */

export type ConnectionStatus = 'disconnected' | 'connecting' | 'connected' | 'reconnecting' | 'failed';
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
  /** The last error; `kind: 'auth'` for 401/403 (refresh the token, then `connect()`). */
  error: (Error & { status?: number; kind?: 'auth' }) | null;
  connectionId: string | null;
}

export interface SSEClientOptions {
  companyId: string;
  channel: string | string[];
  /** Bearer token, or a function returning the current one (called on every connect). */
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
  /** Reconnect when nothing (not even a heartbeat) arrived for this long. */
  watchdogTimeout?: number;
  enablePollingFallback?: boolean;
  pollInterval?: number;
  /** While polling, how often to try SSE again. */
  probeInterval?: number;
  /** Consecutive SSE failures before falling back to polling. */
  fallbackAfter?: number;
  /** Resume from this ID on the first connect. */
  lastEventId?: string;
  onConnectionChange?: (status: ConnectionStatus, state: ConnectionState) => void;
  onMessage?: (event: SSEEvent) => void;
  onError?: (error: Error) => void;
  /** History was lost: refetch state; the stream continues from `lastEventId`. */
  onReset?: (info: { reason: string; lastEventId: string }) => void;
  /** Test seams. */
  fetch?: typeof fetch;
  timers?: { setTimeout: typeof setTimeout; clearTimeout: typeof clearTimeout };
  random?: () => number;
}

export interface SSEClient {
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
