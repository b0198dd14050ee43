// The admin page's pure parts under Node: URLs, request bodies, formatting, and the
// renderers against a minimal DOM whose innerHTML throws (so rendering attacker-chosen
// strings as HTML fails the test). The page itself runs in admin.e2e.mjs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ago, apiError, connectionsUrl, errorText, renderConnections, renderCounts, renderOverview, renderRevocations, revocationText, revokeBody, sortedCounts, tokenClaims, whoText,
} from '../../host/web/admin.js';

/** Just enough DOM for the renderers: elements with children, text, data-* and attributes. */
class FakeElement {
  constructor(doc, tag) {
    this.ownerDocument = doc;
    this.tagName = tag.toUpperCase();
    this.children = [];
    this.parent = null;
    this.attrs = new Map();
    this.dataset = {};
    this.ownText = '';
    this.hidden = false;
    this.className = '';
  }
  get textContent() {
    return this.ownText + this.children.map((c) => c.textContent).join('');
  }
  set textContent(v) {
    for (const c of this.children) c.parent = null;
    this.children = [];
    this.ownText = String(v);
  }
  set innerHTML(_v) {
    throw new Error('innerHTML used');
  }
  setAttribute(k, v) {
    this.attrs.set(k, String(v));
  }
  getAttribute(k) {
    return this.attrs.get(k) ?? null;
  }
  append(...nodes) {
    for (const n of nodes) {
      n.remove();
      n.parent = this;
      this.children.push(n);
    }
  }
  replaceChildren(...nodes) {
    for (const c of this.children) c.parent = null;
    this.children = [];
    this.ownText = '';
    this.append(...nodes);
  }
  remove() {
    if (!this.parent) return;
    this.parent.children = this.parent.children.filter((c) => c !== this);
    this.parent = null;
  }
  /** Every descendant with a tag (for "no <img> was created"). */
  all(tag) {
    return this.children.flatMap((c) => [...(c.tagName === tag.toUpperCase() ? [c] : []), ...c.all(tag)]);
  }
}

function fakeDocument(ids = []) {
  const doc = { byId: new Map() };
  doc.createElement = (tag) => new FakeElement(doc, tag);
  doc.getElementById = (id) => doc.byId.get(id) ?? null;
  for (const id of ids) doc.byId.set(id, new FakeElement(doc, 'div'));
  return doc;
}

const HOSTILE = '<img src=x onerror=alert(1)>';
const conn = (id, extra = {}) => ({ id, host: 'a1b2c3d4', companyId: 'acme', subject: 'user-1', channels: ['dashboard'], openedAt: 1_000_000, ...extra });

test('the overview URL carries only the filters that are set', () => {
  assert.equal(connectionsUrl('', {}), '/sse/admin/connections');
  assert.equal(connectionsUrl('', { companyId: ' acme ', channel: '', host: undefined }), '/sse/admin/connections?companyId=acme');
  assert.equal(connectionsUrl('http://h', { companyId: 'a&b', channel: 'c', host: 'h1' }), 'http://h/sse/admin/connections?companyId=a%26b&channel=c&host=h1');
});

test('ages read as seconds, minutes, hours, days', () => {
  assert.equal(ago(0, 5_400), '5 s ago');
  assert.equal(ago(10_000, 0), '0 s ago', 'a clock ahead of ours is not negative');
  assert.equal(ago(0, 180_000), '3 min ago');
  assert.equal(ago(0, 3 * 3600_000), '3 h ago');
  assert.equal(ago(0, 4 * 86400_000), '4 d ago');
});

test('a revoke body names a company and exactly one of subject and jti', () => {
  assert.deepEqual(revokeBody({ companyId: 'acme', subject: ' user-1 ' }), { body: { companyId: 'acme', subject: 'user-1' } });
  assert.deepEqual(revokeBody({ companyId: 'acme', jti: 'abc', forSecs: '3600' }, 1000), { body: { companyId: 'acme', jti: 'abc', until: 4600 } });
  assert.ok('error' in revokeBody({ companyId: 'acme', subject: 'u', jti: 'j' }));
  assert.ok('error' in revokeBody({ companyId: 'acme' }));
  assert.ok('error' in revokeBody({ subject: 'u' }));
});

test("the server's error code and message are shown, or the status when the body is not JSON", async () => {
  const err = await apiError(new Response('{"error":"FORBIDDEN","message":"not an admin of globex"}', { status: 403 }));
  assert.equal(errorText(err), 'FORBIDDEN: not an admin of globex');
  const busy = await apiError(new Response('{"error":"RATE_LIMITED","message":"slow down"}', { status: 429, headers: { 'retry-after': '5' } }));
  assert.equal(busy.retryAfterMs, 5000);
  const proxy = await apiError(new Response('<html>bad gateway</html>', { status: 502 }));
  assert.equal(proxy.code, 'HTTP_502');
});

test('token claims are read (not verified) for who the page acts as', () => {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const token = `${b64({ alg: 'HS256' })}.${b64({ sub: 'José', company_id: 'acme', role: 'ADMIN' })}.sig`;
  const claims = tokenClaims(token);
  assert.equal(claims.sub, 'José', 'UTF-8 claims decode');
  assert.equal(whoText(claims), 'acme · ADMIN · José');
  assert.equal(tokenClaims('not-a-jwt'), null);
  assert.equal(whoText(null), 'token (not a readable JWT)');
});

test('counts sort largest first, then by name', () => {
  assert.deepEqual(sortedCounts({ b: 1, a: 1, c: 3 }), [['c', 3], ['a', 1], ['b', 1]]);
  assert.deepEqual(sortedCounts(undefined), []);
});

test('connection rows render hostile strings as text, and survive a refresh by ID', () => {
  const doc = fakeDocument();
  const tbody = doc.createElement('tbody');
  renderConnections(tbody, [conn('h-c1', { subject: HOSTILE, channels: [HOSTILE, 'reports'] }), conn('h-c2')], 61_000 + 1_000_000);
  assert.equal(tbody.children.length, 2);
  const [row] = tbody.children;
  assert.equal(row.dataset.testid, 'connection-row');
  assert.equal(row.dataset.connectionId, 'h-c1');
  assert.equal(row.dataset.subject, HOSTILE);
  assert.deepEqual(row.children.slice(0, 6).map((c) => c.textContent), ['h-c1', 'a1b2c3d4', 'acme', HOSTILE, `${HOSTILE}, reports`, '61 s ago']);
  assert.deepEqual(row.all('button').map((b) => [b.dataset.testid, b.textContent]), [['disconnect-connection', 'Disconnect'], ['disconnect-subject', 'Disconnect user']]);
  assert.deepEqual(tbody.all('img'), [], 'no element was made from the data');

  const button = row.all('button')[0];
  renderConnections(tbody, [conn('h-c3'), conn('h-c1', { subject: HOSTILE })], 2_000_000);
  assert.deepEqual(tbody.children.map((r) => r.dataset.connectionId), ['h-c3', 'h-c1'], "the server's order; h-c2 is gone");
  assert.equal(tbody.children[1], row, 'the row of a connection still open is the same element');
  assert.equal(row.all('button')[0], button, 'with the same buttons');
  assert.equal(row.children[5].textContent, '16 min ago', 'its age moved on');
});

test('count tables, revocations and the whole overview', () => {
  const ids = ['total-connections', 'hosts', 'by-company', 'by-channel', 'stats', 'connections', 'connections-note', 'revocations', 'revocations-empty'];
  const doc = fakeDocument(ids);
  const data = {
    hosts: [{ host: 'a1b2c3d4', self: true, connections: 3, answered: true }, { host: 'e5f6', self: false, connections: 0, answered: false }],
    totalConnections: 3,
    connectionsByCompany: { acme: 3 },
    connectionsByChannel: { dashboard: 2, [HOSTILE]: 1 },
    connections: [conn('a1b2c3d4-c12')],
    truncated: true,
    historySize: 40,
    rates: { publishedPerSec: 1.5, deliveredPerSec: 3 },
    counters: { published: 10, delivered: 20, resets: 1, resetsByReason: { too_old: 1 }, slowConsumerDrops: 0, limitRefusals: 2 },
    revocations: [{ companyId: 'acme', jti: 'abc', until: 1764543600 }, { companyId: 'acme', subject: HOSTILE, issuedBefore: 1764540000, until: 1764543600 }],
  };
  renderOverview(doc, data, 1_005_000);
  const $ = (id) => doc.getElementById(id);
  assert.equal($('total-connections').textContent, '3');
  assert.deepEqual($('hosts').children.map((r) => [r.dataset.host, r.dataset.answered, r.children[1].textContent, r.children[3].textContent]), [['a1b2c3d4', 'true', 'this host', 'ok'], ['e5f6', 'false', '', 'no answer']]);
  assert.deepEqual($('by-channel').children.map((r) => r.textContent), ['dashboard2', `${HOSTILE}1`]);
  const stats = Object.fromEntries($('stats').children.filter((c) => c.dataset.testid).map((c) => [c.dataset.testid, c.textContent]));
  assert.equal(stats['rate-published'], '1.5/s');
  assert.equal(stats['rate-delivered'], '3.0/s');
  assert.equal(stats['count-resets'], '1 (too_old 1)');
  assert.equal(stats['count-slow-consumer-drops'], '0');
  assert.equal(stats['count-limit-refusals'], '2');
  assert.equal(stats['history-size'], '40');
  assert.match($('connections-note').textContent, /first 1 connections/);
  const revs = $('revocations').children;
  assert.deepEqual(revs.map((r) => [r.dataset.testid, r.dataset.jti, r.dataset.subject]), [['revocation-row', 'abc', undefined], ['revocation-row', undefined, HOSTILE]]);
  assert.match(revs[1].textContent, /subject <img src=x onerror=alert\(1\)> \(tokens issued before/);
  assert.equal($('revocations-empty').hidden, true);
  assert.deepEqual(doc.getElementById('by-channel').all('img'), []);

  renderOverview(doc, { totalConnections: 0 }, 0);
  assert.equal($('connections').children.length, 0);
  assert.equal($('revocations-empty').hidden, false);
  assert.equal($('connections-note').textContent, '');
  renderCounts($('by-company'), undefined, 'company-count');
  renderRevocations($('revocations'), []);
  assert.equal(revocationText({ companyId: 'acme', jti: 'x' }), 'acme · token x');
});
