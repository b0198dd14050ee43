// A typed use of every entry of @sse-edge/client, as an app would write it. The package
// test installs the packed tarball beside this file and runs `tsc --noEmit` over it, so
// a wrong or missing type in the package fails the test.
'use client';
import { createSSEClient, PollingFallback, HttpError, RevokedError, type ConnectionState, type SSEEvent } from '@sse-edge/client';
import { createParser, type ParsedEvent } from '@sse-edge/client/parser';
import {
  DashboardWithSSE,
  useDashboardUpdate,
  useSSEConnection,
  useSSEMessage,
  SSEProvider,
  useSSEEvent,
  ConnectionStatus,
  ConnectionStatusBadge,
  bindReact,
} from '@sse-edge/client/react';
import * as React from 'react';

interface DashboardUpdate {
  widgets?: string[];
  reason: string;
}

const client = createSSEClient({
  companyId: 'acme-corp',
  channel: ['dashboard-updates', 'report-updates'],
  token: async () => 'jwt',
  revokedRecheckMs: 30_000,
  onConnectionChange: (status, state: ConnectionState) => console.log(status === 'revoked', state.isConnected, state.error?.kind, state.error?.code),
  onMessage: (event: SSEEvent) => console.log(event.id, event.type),
  onError: (error) => console.error(error instanceof HttpError ? error.status : error instanceof RevokedError ? error.code : error.message),
});
const off: () => void = client.subscribe<DashboardUpdate>('dashboard-update', (e) => e.data.widgets?.includes('sroi'));
off();
client.connect();

const fallback = new PollingFallback({ companyId: 'acme-corp', channel: 'dashboard-updates', pollInterval: 5000, onMessage: (e) => e.data });
fallback.start();
fallback.stop();

const parser = createParser({ onEvent: (e: ParsedEvent) => e.id ?? e.lastEventId });
parser.feed('data: x\n\n');

export function SROIPanel({ companyId }: { companyId: string }) {
  const [value, setValue] = React.useState<number | null>(null);
  useDashboardUpdate<DashboardUpdate>((update) => {
    if (update.widgets?.includes('sroi')) setValue(companyId.length);
  });
  return <div>SROI: {value}</div>;
}

export function Dashboard({ companyId }: { companyId: string }) {
  return (
    <DashboardWithSSE companyId={companyId} options={{ token: () => 'jwt' }}>
      <SROIPanel companyId={companyId} />
    </DashboardWithSSE>
  );
}

export function Reports() {
  useSSEEvent<{ reportId: string }>('report-ready', (data) => data.reportId);
  return null;
}

export function Standalone({ companyId }: { companyId: string }) {
  const connection = useSSEConnection({ companyId, channel: 'evidence-updates', autoConnect: true, enablePollingFallback: true });
  useSSEMessage<{ id: string }>(connection, 'evidence-update', (data) => data.id);
  return (
    <SSEProvider options={{ companyId, channel: 'report-updates' }}>
      <ConnectionStatus connection={connection} position="top-right" showDetails />
      <ConnectionStatusBadge connection={connection} />
      <Reports />
    </SSEProvider>
  );
}

export const bound = bindReact(React).useSSEConnection;
