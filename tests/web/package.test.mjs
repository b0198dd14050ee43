// @sse-edge/client as a frontend team meets it: `npm pack` the package, install the
// tarball into an empty project, import every entry under Node, and type-check a typed
// example (React included) with tsc. The pinned versions of react, @types/react and
// typescript come from this folder's package.json (npm's cache has them after setup).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const pkgDir = join(here, '..', '..', 'host', 'web');
const pins = JSON.parse(readFileSync(join(here, 'package.json'), 'utf8')).devDependencies;
const run = (cmd, args, cwd) => execFileSync(cmd, args, { cwd, encoding: 'utf8', timeout: 120_000, stdio: ['ignore', 'pipe', 'pipe'] });

test('the package installs from its tarball, imports under Node and type-checks', { timeout: 300_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'sse-client-pkg-'));
  try {
    const [packed] = JSON.parse(run('npm', ['pack', pkgDir, '--pack-destination', dir, '--json', '--silent'], dir));
    const shipped = packed.files.map((f) => f.path).sort();
    for (const f of ['package.json', 'sse-client.js', 'sse-client.d.ts', 'react.js', 'react.d.ts', 'sse-parser.d.ts', 'tab-share.js']) assert.ok(shipped.includes(f), `${f} is in the tarball`);
    assert.ok(!shipped.some((f) => f.endsWith('.html') || f === 'dashboard.js'), 'demo pages are not shipped');

    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
    run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--silent', `./${packed.filename}`,
      `react@${pins.react}`, `@types/react@${pins['@types/react']}`, `typescript@${pins.typescript}`], dir);

    const probe = `
      const main = await import('@sse-edge/client');
      const react = await import('@sse-edge/client/react');
      const parser = await import('@sse-edge/client/parser');
      console.log(JSON.stringify({ main: Object.keys(main).sort(), react: Object.keys(react).sort(), parser: Object.keys(parser).sort() }));`;
    const entries = JSON.parse(run('node', ['--input-type=module', '-e', probe], dir));
    for (const name of ['createSSEClient', 'PollingFallback', 'HttpError', 'TokenError', 'RevokedError']) assert.ok(entries.main.includes(name), `main exports ${name}`);
    for (const name of ['useSSEConnection', 'useSSEMessage', 'useDashboardUpdates', 'useEvidenceUpdates', 'SSEProvider', 'useSSE', 'useSSEEvent', 'DashboardWithSSE', 'useDashboardUpdate', 'ConnectionStatus', 'ConnectionStatusBadge', 'ConnectionStatusCompact', 'ConnectionStatusBanner', 'bindReact']) {
      assert.ok(entries.react.includes(name), `react exports ${name}`);
    }
    assert.deepEqual(entries.parser, ['createParser']);

    for (const f of ['example.tsx', 'tsconfig.json']) copyFileSync(join(here, 'typed-example', f), join(dir, f));
    try {
      run(join(dir, 'node_modules', '.bin', 'tsc'), ['-p', '.'], dir);
    } catch (err) {
      assert.fail(`tsc --noEmit failed:\n${err.stdout}${err.stderr}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
