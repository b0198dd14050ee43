// @ts-check
/**
 * The seed's React example, running: `<DashboardWithSSE>` around three widgets, each
 * listening with `useDashboardUpdate`, under StrictMode, with the status components.
 * No build step: React comes from the page (`window.React`), bound with `bindReact`.
 *
 * Query parameters (for trying failure states): `company`, `maxRetries`, `retryDelay`
 * (initial backoff, ms), `polling=0` (no polling fallback), `shared=0` (no tab sharing).
 */
import { bindReact } from './react-bind.js';

const React = /** @type {any} */ (globalThis).React;
const ReactDOM = /** @type {any} */ (globalThis).ReactDOM;
const h = React.createElement;
const { DashboardWithSSE, useDashboardUpdate, useSSE, ConnectionStatus, ConnectionStatusBadge } = bindReact(React);
const params = new URLSearchParams(location.search);
const companyId = params.get('company') ?? 'test-company';

async function fetchToken() {
  const res = await fetch(`/dev/token?company=${encodeURIComponent(companyId)}&role=VIEWER`);
  if (!res.ok) throw new Error(`no dev token (${res.status}): start the host with --dev, or pass your own token`);
  return (await res.json()).token;
}

/** The dev token, fetched once and reused (it lasts an hour): a `token()` that fails is
 *  an auth failure, so an outage of the host must not make it fail. */
let tokenPromise = /** @type {Promise<string> | null} */ (null);
function devToken() {
  tokenPromise ??= fetchToken().catch((err) => {
    tokenPromise = null;
    throw err;
  });
  return tokenPromise;
}

/** A widget that refetches when an update names it (here: shows the update itself). */
function Panel({ name, title }) {
  const [updates, setUpdates] = React.useState(/** @type {any[]} */ ([]));
  useDashboardUpdate((update) => {
    if (!update?.widgets || update.widgets.includes(name)) setUpdates((u) => [...u.slice(-49), update]);
  });
  const last = updates.at(-1);
  return h('section', { 'data-widget': name, 'data-count': updates.length },
    h('h2', null, title),
    h('div', null, `updates: ${updates.length}`),
    h('div', { className: 'value' }, last ? JSON.stringify(last) : 'waiting for updates'));
}

function Q2QFeed() {
  const [items, setItems] = React.useState(/** @type {any[]} */ ([]));
  useDashboardUpdate((update) => setItems((xs) => [...xs.slice(-49), update]));
  return h('section', { 'data-widget': 'q2q', 'data-count': items.length },
    h('h2', null, 'Q2Q feed'),
    h('ol', { role: 'log', 'aria-live': 'polite' }, items.map((it, i) => h('li', { key: i }, JSON.stringify(it)))));
}

function Header() {
  const connection = useSSE();
  return h('header', null,
    h('h1', null, `sse-edge React demo: ${companyId}`),
    h(ConnectionStatusBadge, { connection }),
    h(ConnectionStatus, { connection, position: 'bottom-right', showDetails: true }));
}

function Dashboard() {
  const options = {
    token: devToken,
    initialRetryDelay: Number(params.get('retryDelay') ?? 1000),
    maxRetries: Number(params.get('maxRetries') ?? 10),
    enablePollingFallback: params.get('polling') !== '0',
    shared: params.get('shared') !== '0',
  };
  return h(DashboardWithSSE, { companyId, options },
    h(Header),
    h('main', null,
      h(Panel, { name: 'sroi', title: 'SROI' }),
      h(Panel, { name: 'vis', title: 'VIS' }),
      h(Q2QFeed)));
}

ReactDOM.createRoot(document.getElementById('root')).render(h(React.StrictMode, null, h(Dashboard)));
