/**
 * The agent as one ESM file for the UML scenarios. Inside User-Mode Linux every file read goes through hostfs and
 * tsx compiles each TypeScript module on first use: `node --import tsx src/cli/main.ts agent` needs 15-25 s to start
 * there, the bundle about 4 s. The bundle is built on the host from the current sources before UML boots (esbuild,
 * which tsx brings), with everything inlined except the native addons (`netlink`, `sockopt`), and is kept under
 * node_modules/.cache so that those resolve from the repository's node_modules.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { REPO } from './agents.js';

export function buildAgentBundle(): string {
  return buildBundle('agent', join(REPO, 'test/uml/support/agent-entry.ts'));
}

/** `ipsec-mesh diagnose` as one file (scenarios that run it inside UML). */
export function buildDiagnoseBundle(): string {
  return buildBundle('diagnose', join(REPO, 'test/uml/support/diagnose-entry.ts'));
}

/** The operator (test/envtest/run-operator.ts) as one file, for scenarios that run clusters inside UML. */
export function buildOperatorBundle(): string {
  return buildBundle('operator', join(REPO, 'test/envtest/run-operator.ts'));
}

function buildBundle(kind: string, entry: string): string {
  const dir = join(REPO, 'node_modules/.cache/ipsec-mesh-uml');
  mkdirSync(dir, { recursive: true });
  // One file per test process (vitest may run several test files at once); bundles of processes gone are removed.
  for (const f of readdirSync(dir)) {
    const pid = /^[a-z]+-(\d+)\.mjs$/.exec(f)?.[1];
    if (pid && !alive(Number(pid))) rmSync(join(dir, f), { force: true });
  }
  const out = join(dir, `${kind}-${process.pid}.mjs`);
  execFileSync(
    join(REPO, 'node_modules/.bin/esbuild'),
    [
      entry,
      '--bundle',
      '--platform=node',
      '--format=esm',
      '--external:netlink',
      '--external:sockopt',
      `--outfile=${out}`,
      '--log-level=error',
      // CommonJS dependencies inside an ESM bundle call require().
      "--banner:js=import{createRequire as __ipsecMeshRequire}from'node:module';const require=__ipsecMeshRequire(import.meta.url);",
    ],
    { cwd: REPO, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  return out;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
