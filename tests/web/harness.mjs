// What the browser tests share: a real dev sse-host on a free loopback port, Debian's
// Chromium, and a publish helper. Each test file starts its own and stops it.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { before, after } from 'node:test';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
export const artifacts = join(here, '..', 'artifacts');
const CHROMIUM = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium';
const HOST_BIN = process.env.SSE_HOST_BIN ?? join(process.env.CARGO_TARGET_DIR ?? join(process.env.HOME, '.cache/sse-edge/target'), 'debug/sse-host');

/** True once something accepts TCP connections on the loopback `port`. */
function tcpOpen(port) {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1', () => (s.destroy(), resolve(true)));
    s.on('error', () => resolve(false));
  });
}

async function freePort() {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
  });
}

/**
 * A dev host that can be killed and started again on the same port and secrets.
 * `tls: { cert, key }` serves its own TLS; `edge: 'envoy'` trusts only identities signed
 * by an Envoy in front (started with `startEnvoy`, which needs `host.policy`).
 */
export async function devHost({ tls = null, edge = null } = {}) {
  assert.ok(existsSync(HOST_BIN), `${HOST_BIN} is missing: cargo build -p sse-host (or set SSE_HOST_BIN)`);
  const devDir = mkdtempSync(join(tmpdir(), 'sse-browser-'));
  // The dev secrets, written here so an Envoy in front can carry the same policy.
  const secrets = { jwt: randomBytes(32).toString('hex'), edge: randomBytes(32).toString('hex') };
  writeFileSync(join(devDir, 'dev-secrets.json'), JSON.stringify(secrets), { mode: 0o600 });
  const port = await freePort();
  const base = `${tls ? 'https' : 'http'}://127.0.0.1:${port}`;
  const args = ['serve', '--dev', '--listen', `127.0.0.1:${port}`];
  if (tls) args.push('--tls-cert', tls.cert, '--tls-key', tls.key);
  if (edge) args.push('--edge', edge);
  let child = null;
  const host = {
    port,
    base,
    /** The policy the dev host runs (host/src/dev.rs, DevSecrets::policy_json). */
    policy: { jwt: { issuers: ['sse-host-dev'], audiences: ['sse'], hmac_secret: secrets.jwt }, routes: { dev_mode: true }, edge: { secret: secrets.edge } },
    async start() {
      child = spawn(HOST_BIN, args, {
        env: { ...process.env, SSE_HOST_DEV_DIR: devDir, RUST_LOG: 'warn' },
        stdio: ['ignore', 'ignore', 'inherit'],
      });
      const up = () => (tls ? tcpOpen(port) : fetch(`${base}/healthz`).then((r) => r.ok));
      for (let i = 0; i < 200; i++) {
        try {
          if (await up()) return;
        } catch {
          /* not up yet */
        }
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error('sse-host did not start');
    },
    async stop() {
      if (!child || child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await exited;
    },
    /** Where publishes go (the host, or an Envoy's plain listener in front of it). Node's
     *  fetch does not trust a TLS host's test certificate: publish from the page there. */
    publishBase: base,
    /** Publishes a dashboard update through the dev test-broadcast; returns its ID. */
    async publish(data, company = 'test-company') {
      const res = await fetch(`${host.publishBase}/sse/test-broadcast`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ companyId: company, channel: 'dashboard-updates', type: 'dashboard-update', data }),
      });
      assert.equal(res.status, 200);
      return (await res.json()).id;
    },
    /** Open streams of a company, from `/sse/stats` with a company ADMIN's token. */
    async connections(company = 'test-company') {
      const { token } = await (await fetch(`${base}/dev/token?company=${company}&role=ADMIN`)).json();
      const stats = await (await fetch(`${base}/sse/stats`, { headers: { authorization: `Bearer ${token}` } })).json();
      return stats.totalConnections;
    },
    async close() {
      await host.stop();
      rmSync(devDir, { recursive: true, force: true });
    },
  };
  await host.start();
  return host;
}

/** Debian's Chromium, headless; `extraArgs` e.g. to trust a test certificate. */
export async function launchChromium(extraArgs = []) {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install -y chromium (or set CHROMIUM_BIN)`);
  mkdirSync(artifacts, { recursive: true });
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', ...extraArgs],
  });
}

/**
 * A self-signed P-256 certificate for localhost and 127.0.0.1 (openssl), and the
 * Chromium flag that trusts exactly it (by its public key's SHA-256).
 */
export function devCert(dir) {
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert,
    '-days', '2', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], { stdio: 'ignore' });
  const spki = execFileSync('openssl', ['x509', '-pubkey', '-noout', '-in', cert]);
  const der = execFileSync('openssl', ['pkey', '-pubin', '-outform', 'der'], { input: spki });
  const hash = createHash('sha256').update(der).digest('base64');
  return { cert, key, trust: `--ignore-certificate-errors-spki-list=${hash}` };
}

/**
 * The real Envoy with the shipped envoy/envoy.yaml in front of `host` (as
 * tests/support/envoy.rs renders it): the built filter, the host's dev policy, both
 * listeners on ports Envoy picks, and `tlsDir` (holding cert.pem and key.pem) for the
 * TLS listener. Returns the listeners' URLs; `stop()` ends it.
 */
export async function startEnvoy(host, tlsDir) {
  const wasm = process.env.SSE_FILTER_WASM ?? join(here, '../../plugin/dist/sse_filter.wasm');
  assert.ok(existsSync(wasm), `${wasm} is missing: plugin/build.sh (or set SSE_FILTER_WASM)`);
  const envoyBin = process.env.ENVOY_BIN ?? 'envoy';
  const dir = mkdtempSync(join(tmpdir(), 'sse-browser-envoy-'));
  const shipped = readFileSync(join(here, '../../envoy/envoy.yaml'), 'utf8');
  const out = [];
  const lines = shipped.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (line.trim() === 'value: |') {
      const indent = line.length - line.trimStart().length;
      out.push(`${' '.repeat(indent)}value: '${JSON.stringify(host.policy).replaceAll("'", "''")}'`);
      while (i + 1 < lines.length && lines[i + 1].length - lines[i + 1].trimStart().length > indent) i++;
      continue;
    }
    out.push(line.replace('port_value: 10000', 'port_value: 0').replace('port_value: 10443', 'port_value: 0').replace('port_value: 9901', 'port_value: 0')
      .replace('address: 0.0.0.0', 'address: 127.0.0.1').replace('/etc/envoy/sse_filter.wasm', wasm).replaceAll('/etc/envoy/tls', tlsDir)
      .replace('address: sse-host, port_value: 4000', `address: 127.0.0.1, port_value: ${host.port}`));
  }
  writeFileSync(join(dir, 'envoy.yaml'), out.join('\n'));
  writeFileSync(join(tlsDir, 'sds.yaml'), readFileSync(join(here, '../../envoy/tls/sds.yaml'), 'utf8').replaceAll('/etc/envoy/tls', tlsDir));
  const adminFile = join(dir, 'admin-address');
  const child = spawn(envoyBin, ['--concurrency', '1', '--disable-hot-restart', '--log-level', 'error', '--admin-address-path', adminFile, '-c', join(dir, 'envoy.yaml')],
    { stdio: ['ignore', 'ignore', 'inherit'] });
  let admin;
  let listeners;
  try {
    admin = await until('envoy admin address', () => existsSync(adminFile) && readFileSync(adminFile, 'utf8').trim());
    await until('envoy ready', async () => (await fetch(`http://${admin}/ready`).catch(() => null))?.ok);
    listeners = await until('envoy listeners', async () => {
      const body = await (await fetch(`http://${admin}/listeners?format=json`)).json();
      const port = (name) => body.listener_statuses.find((l) => l.name === name)?.local_address.socket_address.port_value;
      return port('sse') && port('sse_tls') ? { plain: port('sse'), tls: port('sse_tls') } : null;
    });
  } catch (err) {
    child.kill('SIGKILL'); // never left running behind a failed start
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    plain: `http://127.0.0.1:${listeners.plain}`,
    tls: `https://localhost:${listeners.tls}`,
    /** A counter from Envoy's /stats. */
    async stat(name) {
      const text = await (await fetch(`http://${admin}/stats?filter=^${name.replaceAll('.', '\\.')}$`)).text();
      return Number(text.split(': ')[1] ?? 0);
    },
    async stop() {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Serves the pinned React UMD files from node_modules where a page asks unpkg for them. */
export async function serveReactFromNpm(context) {
  const files = {
    'react@18.3.1/umd/react.production.min.js': join(here, 'node_modules/react/umd/react.production.min.js'),
    'react-dom@18.3.1/umd/react-dom.production.min.js': join(here, 'node_modules/react-dom/umd/react-dom.production.min.js'),
  };
  await context.route('https://unpkg.com/**', (route) => {
    const path = new URL(route.request().url()).pathname.slice(1);
    const file = files[path];
    if (!file) return route.abort();
    return route.fulfill({ status: 200, contentType: 'text/javascript', headers: { 'access-control-allow-origin': '*' }, body: readFileSync(file) });
  });
}

/** Resolves once `probe()` returns a truthy value, polling an event source we do not own. */
export async function until(what, probe, timeoutMs = 10_000) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Registers hooks that start a dev host and Chromium before a file's tests and stop
 *  them after; the returned object holds them once started. */
export function hostAndBrowser() {
  const env = { host: /** @type {any} */ (null), browser: /** @type {any} */ (null) };
  before(async () => {
    env.host = await devHost();
    env.browser = await launchChromium();
  });
  after(async () => {
    await env.browser?.close();
    await env.host?.close();
  });
  return env;
}
