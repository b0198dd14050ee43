// @sse-edge/publisher as a backend team meets it: `npm pack` the package, install the
// tarball into an empty project, import it under Node, and type-check a typed example
// with tsc (the pinned typescript from this folder's package.json).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const pkgDir = join(here, '..', '..', 'host', 'publisher-node');
const pins = JSON.parse(readFileSync(join(here, 'package.json'), 'utf8')).devDependencies;
const run = (cmd, args, cwd) => execFileSync(cmd, args, { cwd, encoding: 'utf8', timeout: 120_000, stdio: ['ignore', 'pipe', 'pipe'] });

const EXAMPLE = `
import { Publisher, PublishError, configure, broadcastDashboardUpdate, type PublishEvent } from '@sse-edge/publisher';

const sse: Publisher = configure({ baseUrl: 'https://sse.example.com', token: async () => 'token', retry: { attempts: 2 } });
const id: Promise<string> = broadcastDashboardUpdate('acme', { widgets: ['sroi'] });
const events: PublishEvent[] = [{ channel: 'report-updates', type: 'report-ready', data: { report: 7 } }];
const ids: Promise<string[]> = sse.publishBatch('acme', events, { idempotencyKey: 'job-1' });
// @ts-expect-error an event needs its data
sse.publishBatch('acme', [{ channel: 'c', type: 't' }]);
// @ts-expect-error the token is a string or a function returning one
new Publisher({ baseUrl: 'https://x', token: 7 });
export function explain(e: unknown): string {
  return e instanceof PublishError && e.kind === 'refused' ? \`\${e.status} \${e.code}\` : String(e);
}
export { id, ids };
`;

test('the publisher package installs from its tarball, imports under Node and type-checks', { timeout: 300_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'sse-publisher-pkg-'));
  try {
    const [packed] = JSON.parse(run('npm', ['pack', pkgDir, '--pack-destination', dir, '--json', '--silent'], dir));
    const shipped = packed.files.map((f) => f.path).sort();
    assert.deepEqual(shipped, ['README.md', 'package.json', 'publisher.d.ts', 'publisher.js']);
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'backend', private: true, type: 'module' }));
    run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--silent', `./${packed.filename}`, `typescript@${pins.typescript}`], dir);
    const probe = `const m = await import('@sse-edge/publisher'); console.log(JSON.stringify(Object.keys(m).sort()));`;
    const exported = JSON.parse(run('node', ['--input-type=module', '-e', probe], dir));
    assert.deepEqual(exported, [
      'DEFAULT_RETRY', 'PublishError', 'Publisher', 'broadcast', 'broadcastDashboardUpdate',
      'broadcastEvidenceUpdate', 'broadcastReportUpdate', 'configure',
    ]);
    writeFileSync(join(dir, 'example.ts'), EXAMPLE);
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({
      compilerOptions: { strict: true, noEmit: true, target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', lib: ['ES2022', 'DOM'] },
      files: ['example.ts'],
    }));
    try {
      run(join(dir, 'node_modules', '.bin', 'tsc'), ['-p', '.'], dir);
    } catch (err) {
      assert.fail(`tsc failed:\n${err.stdout}${err.stderr}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
