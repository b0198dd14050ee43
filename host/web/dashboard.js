// @ts-check
/**
 * The demo dashboard: a live feed over createSSEClient, with status and a dev publish
 * form. The feed is a bounded `role="log"`; the live status region changes only when
 * the state does (the ticking details are outside it); a failed client offers
 * "Retry now". Tabs with the same company and channels share one stream.
 */
import { createSSEClient } from './sse-client.js';

const $ = (/** @type {string} */ id) => /** @type {any} */ (document.getElementById(id));
const LABELS = { connected: 'Connected', connecting: 'Connecting…', reconnecting: 'Reconnecting…', failed: 'Failed', revoked: 'Revoked', disconnected: 'Disconnected' };
/** @type {import('./sse-client').SSEClient | null} */
let client = null;
let count = 0;
/** Feed entries kept on the page; older ones are dropped. */
const FEED_MAX = 200;

/** Sets text only when it changed, so live regions announce changes, not ticks. */
function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}

/** @param {string} status @param {boolean} auth */
function bannerText(status, auth) {
  if (status === 'revoked') return 'An administrator revoked this session: enter a new token and connect again.';
  if (auth) return 'Not authorized: get a new token and connect again.';
  return status === 'failed' ? 'Live updates are offline.' : 'Connection lost; reconnecting…';
}

function render(state) {
  const status = $('status');
  status.dataset.status = state.status;
  status.dataset.transport = state.transport;
  setText(status, state.status === 'connected' && state.transport === 'polling' ? 'Connected (polling)' : LABELS[state.status]);
  const retry = state.nextRetryAt ? ` · retry in ${Math.max(0, Math.ceil((state.nextRetryAt - Date.now()) / 1000))}s` : '';
  const last = state.lastEventTime ? ` · last event ${new Date(state.lastEventTime).toLocaleTimeString()}` : '';
  const role = state.role && state.role !== 'none' ? ` · ${state.role} tab` : '';
  setText($('details'), `${state.transport}${role}${state.lastEventId ? ` · ${state.lastEventId}` : ''}${last}${retry}`);
  const banner = $('banner');
  if (state.status === 'reconnecting' || state.status === 'failed' || state.status === 'revoked') {
    const auth = state.error?.kind === 'auth';
    setText($('banner-text'), bannerText(state.status, auth));
    $('retry').hidden = !(state.status === 'failed' && !auth);
    if (!banner.dataset.dismissed) banner.classList.add('show');
  } else {
    banner.classList.remove('show');
    delete banner.dataset.dismissed;
  }
}

function addToFeed(event, cls = '') {
  const li = document.createElement('li');
  li.className = cls;
  li.dataset.id = event.id;
  li.textContent = `${event.id || '-'}  ${event.type}  ${JSON.stringify(event.data)}`;
  const feed = $('feed');
  feed.prepend(li);
  while (feed.children.length > FEED_MAX) feed.lastElementChild.remove();
  $('count').textContent = String(++count);
}

async function devToken(company) {
  const res = await fetch(`/dev/token?company=${encodeURIComponent(company)}&role=VIEWER`);
  return res.ok ? (await res.json()).token : '';
}

/** Bumped by each connect: a connect still waiting for its dev token when another
 *  starts gives up, so two quick submits leave one client. */
let attempt = 0;

async function connect(e) {
  e?.preventDefault();
  const mine = ++attempt;
  client?.destroy();
  client = null;
  const companyId = $('company').value;
  const channel = [...document.querySelectorAll('input[name=channel]:checked')].map((c) => /** @type {HTMLInputElement} */ (c).value);
  if (!$('token').value) $('token').value = await devToken(companyId);
  if (mine !== attempt) return;
  const transport = $('transport').value;
  if (transport === 'eventsource') document.cookie = `sse_token=${$('token').value}; path=/sse; SameSite=Strict`;
  client = createSSEClient({
    companyId,
    channel,
    transport,
    token: () => $('token').value,
    enablePollingFallback: $('polling').checked,
    shared: new URLSearchParams(location.search).get('shared') !== '0',
    pollInterval: Number(new URLSearchParams(location.search).get('pollInterval') ?? 5000),
    probeInterval: Number(new URLSearchParams(location.search).get('probeInterval') ?? 30000),
    initialRetryDelay: 500,
    onConnectionChange: (_s, state) => render(state),
    onReset: (info) => addToFeed({ id: info.lastEventId, type: 'reset', data: info }, 'reset'),
  });
  client.subscribe((ev) => !['reset', 'connected', 'heartbeat'].includes(ev.type) && addToFeed(ev));
  client.connect();
}

$('connect-form').addEventListener('submit', connect);
$('disconnect').addEventListener('click', () => client?.disconnect());
$('retry').addEventListener('click', () => client?.connect());
$('dismiss').addEventListener('click', () => {
  $('banner').classList.remove('show');
  $('banner').dataset.dismissed = '1';
});
$('publish-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const body = { companyId: $('company').value, channel: $('publish-channel').value, type: $('event-type').value, data: JSON.parse($('event-data').value) };
  const res = await fetch('/sse/test-broadcast', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  $('publish-result').textContent = res.ok ? `published ${(await res.json()).id}` : `publish failed: ${res.status}`;
});
setInterval(() => client && render(client.getState()), 1000);
connect();
