'use client';
// @ts-check
/**
 * `@sse-edge/client/react`: the React hooks and components, bound to the `react`
 * package (a peer dependency). `'use client'` lets Next.js import it from client
 * components. Pages without a build step use `bindReact(window.React)` from
 * `./react-bind.js` instead.
 */
import * as React from 'react';
import { bindReact } from './react-bind.js';

const bound = bindReact(React);

export const {
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
  ConnectionStatus,
  ConnectionStatusCompact,
  ConnectionStatusBadge,
  ConnectionStatusBanner,
} = bound;
export { bindReact };
