// @ts-check
/**
 * The admin page (`/admin`): who is connected, on which hosts, how traffic flows, and
 * the controls to disconnect streams and revoke users or tokens. A company ADMIN sees
 * its company; a super-admin sees every company (or one, with the company filter).
 *
 * - Polls `GET /sse/admin/connections` every 2 s, one request at a time; an answer that
 *   arrives after a newer request started is dropped. 401/403 stop polling until the
 *   token changes; 429/503 wait out `Retry-After`.
 * - Subjects, channels and company names are chosen by users: everything is rendered
 *   with DOM nodes and `textContent`, never as HTML.
 * - Connection rows are kept by connection ID across refreshes, so a button under the
 *   pointer (or the keyboard focus) is not replaced every 2 s.
 * - The pure parts (URLs, request bodies, formatting, rendering into given elements) are
 *   exported for tests; `start(document)` wires the page.
 */

export const POLL_MS = 2000;
/** Longest wait a `Retry-After` can impose on the page. */
const MAX_BACKOFF_MS = 60_000;
export const TOKEN_KEY = 'sse-edge-admin-token';

/**
 * @typedef {{ host: string, self?: boolean, connections?: number, answered?: boolean }} HostInfo
 * @typedef {{ id: string, host: string, companyId: string, subject: string, channels: string[], openedAt: number }} ConnectionInfo
 * @typedef {{ companyId: string, jti?: string, subject?: string, issuedBefore?: number, until?: number }} Revocation
 * @typedef {{
 *   hosts?: HostInfo[],
 *   totalConnections?: number,
 *   connectionsByCompany?: Record<string, number>,
 *   connectionsByChannel?: Record<string, number>,
 *   connectionsByHost?: Record<string, number>,
 *   connections?: ConnectionInfo[],
 *   truncated?: boolean,
 *   historySize?: number,
 *   rates?: { publishedPerSec?: number, deliveredPerSec?: number },
 *   counters?: { published?: number, delivered?: number, resets?: number, resetsByReason?: Record<string, number>, slowConsumerDrops?: number, limitRefusals?: number },
 *   revocations?: Revocation[],
 * }} Overview
 * @typedef {{ companyId?: string, channel?: string, host?: string }} Filters
 * @typedef {{ code: string, message: string, status: number, retryAfterMs: number }} ApiError
 */

// --- pure helpers ------------------------------------------------------------------

/**
 * The overview URL with the filters that are set.
 * @param {string} base origin of the host ('' for this page's)
 * @param {Filters} filters
 */
export function connectionsUrl(base, filters) {
  const p = new URLSearchParams();
  for (const key of /** @type {const} */ (['companyId', 'channel', 'host'])) {
    const v = filters[key]?.trim();
    if (v) p.set(key, v);
  }
  const q = p.toString();
  return `${base}/sse/admin/connections${q ? `?${q}` : ''}`;
}

/**
 * "12 s ago", "3 min ago", "2 h ago", "4 d ago".
 * @param {number} then ms since the epoch @param {number} now
 */
export function ago(then, now) {
  const s = Math.max(0, Math.floor((now - then) / 1000));
  if (s < 120) return `${s} s ago`;
  if (s < 2 * 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 2 * 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

/** @param {number} unixSecs */
function clock(unixSecs) {
  return new Date(unixSecs * 1000).toLocaleString();
}

/**
 * The body of `POST /sse/admin/revoke` from the form's values, or an error message
 * (exactly one of subject and jti; a company).
 * @param {{ companyId?: string, subject?: string, jti?: string, forSecs?: string | number }} form
 * @param {number} [nowSecs]
 * @returns {{ body: Record<string, string | number> } | { error: string }}
 */
export function revokeBody(form, nowSecs = Math.floor(Date.now() / 1000)) {
  const companyId = form.companyId?.trim() ?? '';
  const subject = form.subject?.trim() ?? '';
  const jti = form.jti?.trim() ?? '';
  if (!companyId) return { error: 'Enter the company.' };
  if (Boolean(subject) === Boolean(jti)) return { error: 'Enter a subject or a token ID (jti), not both.' };
  /** @type {Record<string, string | number>} */
  const body = subject ? { companyId, subject } : { companyId, jti };
  const forSecs = Number(form.forSecs || 0);
  if (forSecs > 0) body.until = nowSecs + forSecs;
  return { body };
}

/**
 * What the server said when it refused, from an error response.
 * @param {Response} res
 * @returns {Promise<ApiError>}
 */
export async function apiError(res) {
  let code = `HTTP_${res.status}`;
  let message = res.statusText || '';
  try {
    const body = await res.json();
    if (typeof body?.error === 'string') code = body.error;
    if (typeof body?.message === 'string') message = body.message;
  } catch {
    // not JSON (a proxy's page): the status is all there is
  }
  const secs = Number(res.headers.get('retry-after'));
  return { code, message, status: res.status, retryAfterMs: Number.isFinite(secs) && secs > 0 ? Math.min(MAX_BACKOFF_MS, secs * 1000) : 0 };
}

/** @param {{ code: string, message?: string }} err */
export function errorText(err) {
  return err.message ? `${err.code}: ${err.message}` : err.code;
}

/**
 * The claims of a JWT, read without verifying: only to prefill the company and say who
 * the page acts as (the server decides what the token may do). Null when unreadable.
 * @param {string} token
 * @returns {Record<string, any> | null}
 */
export function tokenClaims(token) {
  try {
    const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const json = decodeURIComponent(
      [...atob(part)].map((c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`).join(''),
    );
    const claims = JSON.parse(json);
    return claims && typeof claims === 'object' ? claims : null;
  } catch {
    return null;
  }
}

/** "acme · ADMIN · user-1" for the token's claims. */
export function whoText(claims) {
  if (!claims) return 'token (not a readable JWT)';
  const role = Array.isArray(claims.roles) ? claims.roles.join(',') : claims.role;
  return [claims.company_id, role, claims.sub].filter((v) => v !== undefined && v !== '').map(String).join(' · ');
}

/** Entries of a count record, largest first, then by name. */
export function sortedCounts(record) {
  return Object.entries(record ?? {}).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
}

/** "user-2 (tokens issued before …)" or "token abc" for a revocation. */
export function revocationText(r) {
  const what = r.jti !== undefined ? `token ${r.jti}` : `subject ${r.subject ?? ''}${r.issuedBefore ? ` (tokens issued before ${clock(r.issuedBefore)})` : ''}`;
  return `${r.companyId} · ${what}${r.until ? ` · until ${clock(r.until)}` : ''}`;
}

/** @param {number | undefined} n */
const num = (n) => (typeof n === 'number' ? String(n) : '–');
/** @param {number | undefined} n */
const rate = (n) => (typeof n === 'number' ? `${n.toFixed(1)}/s` : '–');

// --- rendering: DOM nodes and textContent only --------------------------------------

/**
 * An element with text, attributes and `data-*` values set through the DOM.
 * @param {Document} doc
 * @param {string} tag
 * @param {{ text?: string, data?: Record<string, string>, attrs?: Record<string, string> }} [opts]
 */
export function el(doc, tag, { text, data, attrs } = {}) {
  const e = doc.createElement(tag);
  if (text !== undefined) e.textContent = text;
  for (const [k, v] of Object.entries(data ?? {})) e.dataset[k] = v;
  for (const [k, v] of Object.entries(attrs ?? {})) e.setAttribute(k, v);
  return e;
}

/**
 * A table body of (name, count) rows, largest first.
 * @param {HTMLElement} tbody @param {Record<string, number> | undefined} counts @param {string} testid
 */
export function renderCounts(tbody, counts, testid) {
  const doc = tbody.ownerDocument;
  tbody.replaceChildren(
    ...sortedCounts(counts).map(([name, n]) => {
      const tr = el(doc, 'tr', { data: { testid, name } });
      tr.append(el(doc, 'td', { text: name }), el(doc, 'td', { text: String(n), attrs: { class: 'n' } }));
      return tr;
    }),
  );
}

/** @param {HTMLElement} tbody @param {HostInfo[] | undefined} hosts */
export function renderHosts(tbody, hosts) {
  const doc = tbody.ownerDocument;
  tbody.replaceChildren(
    ...(hosts ?? []).map((h) => {
      const tr = el(doc, 'tr', { data: { testid: 'host-row', host: h.host, answered: String(h.answered !== false) } });
      tr.append(
        el(doc, 'td', { text: h.host }),
        el(doc, 'td', { text: h.self ? 'this host' : '' }),
        el(doc, 'td', { text: num(h.connections), attrs: { class: 'n' } }),
        el(doc, 'td', { text: h.answered === false ? 'no answer' : 'ok' }),
      );
      return tr;
    }),
  );
}

/**
 * The connections table, keyed by connection ID: rows of connections still open are
 * updated in place (their buttons survive the refresh), others removed.
 * @param {HTMLElement} tbody @param {ConnectionInfo[] | undefined} connections @param {number} now
 */
export function renderConnections(tbody, connections, now) {
  const doc = tbody.ownerDocument;
  /** @type {Map<string, HTMLElement>} */
  const existing = new Map();
  for (const row of [...tbody.children]) existing.set(/** @type {HTMLElement} */ (row).dataset.connectionId ?? '', /** @type {HTMLElement} */ (row));
  const rows = (connections ?? []).map((c) => {
    const row = existing.get(c.id) ?? connectionRow(doc, c);
    existing.delete(c.id);
    const cells = /** @type {HTMLElement[]} */ ([...row.children]);
    const texts = [c.id, c.host, c.companyId, c.subject, (c.channels ?? []).join(', '), ago(c.openedAt, now)];
    texts.forEach((t, i) => {
      if (cells[i].textContent !== t) cells[i].textContent = t;
    });
    return row;
  });
  for (const gone of existing.values()) gone.remove();
  // append() moves existing nodes: the rows end up in the server's order.
  tbody.append(...rows);
}

/** @param {Document} doc @param {ConnectionInfo} c */
function connectionRow(doc, c) {
  const tr = el(doc, 'tr', { data: { testid: 'connection-row', connectionId: c.id, companyId: c.companyId, subject: c.subject } });
  for (let i = 0; i < 6; i++) tr.append(el(doc, 'td'));
  tr.children[5].className = 'ago';
  const actions = el(doc, 'td', { attrs: { class: 'actions' } });
  actions.append(
    el(doc, 'button', { text: 'Disconnect', data: { testid: 'disconnect-connection', action: 'disconnect-connection' }, attrs: { type: 'button', title: 'End this stream' } }),
    el(doc, 'button', { text: 'Disconnect user', data: { testid: 'disconnect-subject', action: 'disconnect-subject' }, attrs: { type: 'button', title: "End every stream of this user in this company" } }),
  );
  tr.append(actions);
  return tr;
}

/** @param {HTMLElement} list @param {Revocation[] | undefined} revocations */
export function renderRevocations(list, revocations) {
  const doc = list.ownerDocument;
  list.replaceChildren(
    ...(revocations ?? []).map((r) =>
      el(doc, 'li', { text: revocationText(r), data: { testid: 'revocation-row', companyId: r.companyId, ...(r.jti !== undefined ? { jti: r.jti } : { subject: r.subject ?? '' }) } }),
    ),
  );
}

/**
 * Definition-list pairs: rates, counters, resets by reason.
 * @param {HTMLElement} dl @param {Overview} data
 */
export function renderStats(dl, data) {
  const doc = dl.ownerDocument;
  const c = data.counters ?? {};
  const reasons = sortedCounts(c.resetsByReason).map(([r, n]) => `${r} ${n}`).join(', ');
  /** @type {[string, string, string][]} */
  const pairs = [
    ['Published', rate(data.rates?.publishedPerSec), 'rate-published'],
    ['Delivered', rate(data.rates?.deliveredPerSec), 'rate-delivered'],
    ['Events published', num(c.published), 'count-published'],
    ['Events delivered', num(c.delivered), 'count-delivered'],
    ['Resets', `${num(c.resets)}${reasons ? ` (${reasons})` : ''}`, 'count-resets'],
    ['Slow-consumer drops', num(c.slowConsumerDrops), 'count-slow-consumer-drops'],
    ['Limit refusals', num(c.limitRefusals), 'count-limit-refusals'],
    ['History size', num(data.historySize), 'history-size'],
  ];
  dl.replaceChildren(...pairs.flatMap(([k, v, testid]) => [el(doc, 'dt', { text: k }), el(doc, 'dd', { text: v, data: { testid } })]));
}

/**
 * Everything the overview shows, into the page's elements (found by ID under `root`).
 * @param {Document} doc @param {Overview} data @param {number} now
 */
export function renderOverview(doc, data, now) {
  const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (doc.getElementById(id));
  $('total-connections').textContent = num(data.totalConnections);
  renderHosts($('hosts'), data.hosts);
  renderCounts($('by-company'), data.connectionsByCompany, 'company-count');
  renderCounts($('by-channel'), data.connectionsByChannel, 'channel-count');
  renderStats($('stats'), data);
  renderConnections($('connections'), data.connections, now);
  const shown = data.connections?.length ?? 0;
  $('connections-note').textContent = data.truncated ? `Showing the first ${shown} connections: narrow the list with the filters.` : '';
  renderRevocations($('revocations'), data.revocations);
  $('revocations-empty').hidden = (data.revocations?.length ?? 0) > 0;
}

// --- the page -------------------------------------------------------------------------

/**
 * Wires the page: token, polling, filters, actions.
 * @param {Document} doc
 * @param {{ fetch?: typeof fetch, storage?: Storage, base?: string }} [deps] test seams
 */
export function start(doc, deps = {}) {
  const fetchImpl = deps.fetch ?? globalThis.fetch.bind(globalThis);
  const storage = deps.storage ?? globalThis.sessionStorage;
  const base = deps.base ?? '';
  const $ = (/** @type {string} */ id) => /** @type {any} */ (doc.getElementById(id));
  let token = storage?.getItem(TOKEN_KEY) ?? '';
  /** Bumped by every refresh: an older answer arriving late is dropped. */
  let seq = 0;
  let timer = /** @type {any} */ (null);
  /** Set after 401/403: polling waits for the user (another token, filter or action). */
  let refused = false;
  /** A new token (or a refusal): the next good answer says so in the status line. */
  let fresh = false;

  /** The last action's refusal: shown until the next action, whatever the polls say. */
  let actionError = /** @type {{ code: string, message?: string } | null} */ (null);

  const status = (/** @type {string} */ text) => ($('admin-status').textContent = text);
  function showError(/** @type {{ code: string, message?: string } | null} */ err) {
    const shown = err ?? actionError;
    $('admin-error').textContent = shown ? errorText(shown) : '';
    $('admin-error').hidden = !shown;
  }

  const auth = () => ({ authorization: `Bearer ${token}` });
  /** @returns {Filters} */
  const filters = () => ({ companyId: $('filter-company').value, channel: $('filter-channel').value, host: $('filter-host').value });

  function schedule(ms) {
    if (timer) clearTimeout(timer);
    timer = setTimeout(refresh, ms);
  }

  async function refresh() {
    timer = null;
    const mine = ++seq;
    if (!token) {
      status('Enter an admin token (or get a dev token) to see the connections.');
      return;
    }
    if (refused) return;
    let next = POLL_MS;
    try {
      const res = await fetchImpl(connectionsUrl(base, filters()), { headers: auth(), cache: 'no-store' });
      if (mine !== seq) return;
      if (res.ok) {
        const data = await res.json();
        if (mine !== seq) return;
        renderOverview(doc, data, Date.now());
        showError(null);
        if (fresh) status(`Live: refreshing every ${POLL_MS / 1000} s.`);
        fresh = false;
        $('admin-updated').textContent = `updated ${new Date().toLocaleTimeString()}`;
      } else {
        const err = await apiError(res);
        if (mine !== seq) return;
        showError(err);
        if (res.status === 401 || res.status === 403) {
          refused = true;
          fresh = true; // the next good answer says the page is live again
          renderOverview(doc, {}, 0); // what is on the page is no longer this token's to see
          status(res.status === 401 ? 'The token was refused: enter another one.' : 'Not allowed with this token: change the filters or the token.');
          return;
        }
        next = Math.max(POLL_MS, err.retryAfterMs);
      }
    } catch (e) {
      if (mine !== seq) return;
      showError({ code: 'NETWORK', message: e instanceof Error ? e.message : String(e) });
    }
    schedule(next);
  }

  /** Refreshes at once (after an action, a new token or filter): the user asked. */
  function refreshNow() {
    if (timer) clearTimeout(timer);
    refused = false;
    refresh();
  }

  function useToken(/** @type {string} */ value) {
    token = value.trim();
    fresh = true;
    $('token').value = token;
    if (token) storage?.setItem(TOKEN_KEY, token);
    else storage?.removeItem(TOKEN_KEY);
    const claims = token ? tokenClaims(token) : null;
    $('admin-who').textContent = token ? `as ${whoText(claims)}` : '';
    if (claims?.company_id) $('revoke-company').value = String(claims.company_id);
    renderOverview(doc, {}, 0); // the previous token's view is not this one's
    $('admin-updated').textContent = '';
    refreshNow();
  }

  /** POSTs an action; returns the JSON answer, or null after showing the refusal. */
  async function post(/** @type {string} */ path, /** @type {object} */ body) {
    actionError = null;
    try {
      const res = await fetchImpl(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...auth() }, body: JSON.stringify(body) });
      if (!res.ok) {
        actionError = await apiError(res);
        showError(actionError);
        status(`Refused: ${errorText(actionError)}`);
        return null;
      }
      showError(null);
      return await res.json();
    } catch (e) {
      actionError = { code: 'NETWORK', message: e instanceof Error ? e.message : String(e) };
      showError(actionError);
      return null;
    } finally {
      refreshNow();
    }
  }

  const plural = (/** @type {number} */ n) => `${n} connection${n === 1 ? '' : 's'}`;

  async function disconnect(/** @type {Record<string, string>} */ body, /** @type {string} */ what) {
    status(`Disconnecting ${what}…`);
    const answer = await post('/sse/admin/disconnect', body);
    if (answer) status(`Disconnected ${what}: ${plural(Number(answer.disconnected ?? 0))} ended.`);
  }

  // Row buttons, by delegation: the row's data-* says what to disconnect.
  $('connections').addEventListener('click', (/** @type {MouseEvent} */ e) => {
    const button = /** @type {HTMLElement} */ (e.target).closest?.('button[data-action]');
    const row = /** @type {HTMLElement | null} */ (button?.closest('tr') ?? null);
    if (!button || !row) return;
    const { connectionId = '', companyId = '', subject = '' } = row.dataset;
    if (/** @type {HTMLElement} */ (button).dataset.action === 'disconnect-connection') disconnect({ connectionId }, `connection ${connectionId}`);
    else disconnect({ companyId, subject }, `${subject} in ${companyId}`);
  });

  $('token-form').addEventListener('submit', (/** @type {Event} */ e) => {
    e.preventDefault();
    useToken($('token').value);
  });

  $('dev-token').addEventListener('click', async () => {
    const q = new URLSearchParams({ company: $('dev-company').value.trim(), role: $('dev-role').value });
    try {
      const res = await fetchImpl(`${base}/dev/token?${q}`);
      if (res.status === 404) {
        // Not a --dev host: there is no such thing as a dev token here.
        $('dev-tokens').hidden = true;
        status('Dev tokens exist only on a host started with --dev: paste a token.');
        return;
      }
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      useToken((await res.json()).token ?? '');
    } catch (err) {
      showError({ code: 'DEV_TOKEN', message: err instanceof Error ? err.message : String(err) });
    }
  });

  $('filters').addEventListener('submit', (/** @type {Event} */ e) => {
    e.preventDefault();
    refreshNow();
  });
  $('filters').addEventListener('change', refreshNow);

  $('revoke-form').addEventListener('submit', async (/** @type {Event} */ e) => {
    e.preventDefault();
    const form = { companyId: $('revoke-company').value, subject: $('revoke-subject').value, jti: $('revoke-jti').value, forSecs: $('revoke-for').value };
    const made = revokeBody(form);
    if ('error' in made) {
      status(made.error);
      return;
    }
    const what = 'subject' in made.body ? `${made.body.subject} in ${made.body.companyId}` : `token ${made.body.jti} in ${made.body.companyId}`;
    status(`Revoking ${what}…`);
    const answer = await post('/sse/admin/revoke', made.body);
    if (!answer) return;
    status(`Revoked ${what}: ${plural(Number(answer.disconnected ?? 0))} ended.`);
    $('revoke-subject').value = '';
    $('revoke-jti').value = '';
  });

  useToken(token);
}

if (globalThis.document?.getElementById('admin-app')) start(globalThis.document);
