/** Types of `@sse-edge/client/react` (React 18 or later as a peer dependency). */
import type * as React from 'react';
import type { ConnectionState, SSEClientOptions, SSEEvent } from './sse-client';

export interface SSEConnection extends ConnectionState {
  /** Subscribe to one event type, or to all with a single function argument. Works
   *  before the connection is open and across reconnects. */
  subscribe<T = unknown>(type: string, fn: (event: SSEEvent<T>) => void): () => void;
  subscribe<T = unknown>(fn: (event: SSEEvent<T>) => void): () => void;
  connect(): void;
  disconnect(): void;
  getLastEventId(): string;
  /** The current state, fresher than the render's (last event time, retry countdown). */
  getState(): ConnectionState;
}

export type SSEConnectionOptions = SSEClientOptions & {
  /** Connect on mount (default true). */
  autoConnect?: boolean;
};

/** One connection for the component's life; options that shape it reconnect when they
 *  change, callbacks and `token` are read fresh. */
export function useSSEConnection(options: SSEConnectionOptions): SSEConnection;
/** Calls `handler(data)` for events of `type` on `connection`. */
export function useSSEMessage<T = any>(connection: SSEConnection, type: string, handler: (data: T) => void): void;
export function useDashboardUpdates<T = any>(companyId: string, onUpdate: (data: T) => void, options?: Partial<SSEConnectionOptions>): SSEConnection;
export function useEvidenceUpdates<T = any>(companyId: string, onUpdate: (data: T) => void, options?: Partial<SSEConnectionOptions>): SSEConnection;

export const SSEContext: React.Context<SSEConnection | null>;
/** Provides one connection to a subtree. */
export function SSEProvider(props: { options: SSEConnectionOptions; children?: React.ReactNode }): React.ReactElement;
/** The connection of the nearest SSEProvider or DashboardWithSSE (throws outside one). */
export function useSSE(): SSEConnection;
/** Inside a provider: `handler(data)` on every event of `type`. */
export function useSSEEvent<T = any>(type: string, handler: (data: T) => void): void;

/** The seed's DashboardWithSSE: one `dashboard-updates` connection for its widgets,
 *  with polling fallback and a status banner. */
export function DashboardWithSSE(props: { companyId: string; options?: Partial<SSEConnectionOptions>; children?: React.ReactNode }): React.ReactElement;
/** Inside DashboardWithSSE: `handler(update)` on every `dashboard-update`. */
export function useDashboardUpdate<T = any>(handler: (update: T) => void): void;

type Corner = 'top-right' | 'top-left' | 'bottom-right' | 'bottom-left';
export function ConnectionStatus(props: { connection: SSEConnection; position?: Corner; showDetails?: boolean }): React.ReactElement;
export function ConnectionStatusCompact(props: { connection: SSEConnection }): React.ReactElement;
export function ConnectionStatusBadge(props: { connection: SSEConnection }): React.ReactElement;
/** Shown while not live; dismissible for one outage; "Retry now" when failed. */
export function ConnectionStatusBanner(props: { connection: SSEConnection; onDismiss?: () => void }): React.ReactElement | null;

/** The same API bound to a given React (for pages without a build step). */
export function bindReact(react: typeof React): {
  useSSEConnection: typeof useSSEConnection;
  useSSEMessage: typeof useSSEMessage;
  useDashboardUpdates: typeof useDashboardUpdates;
  useEvidenceUpdates: typeof useEvidenceUpdates;
  SSEContext: typeof SSEContext;
  SSEProvider: typeof SSEProvider;
  useSSE: typeof useSSE;
  useSSEEvent: typeof useSSEEvent;
  DashboardWithSSE: typeof DashboardWithSSE;
  useDashboardUpdate: typeof useDashboardUpdate;
  ConnectionStatus: typeof ConnectionStatus;
  ConnectionStatusCompact: typeof ConnectionStatusCompact;
  ConnectionStatusBadge: typeof ConnectionStatusBadge;
  ConnectionStatusBanner: typeof ConnectionStatusBanner;
};
