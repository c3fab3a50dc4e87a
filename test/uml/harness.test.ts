/** The UML harness itself: exit codes and output come back, and a hung guest is killed without leftovers. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runInUml } from './harness.js';

// Scripts must live outside /tmp (the guest mounts a tmpfs there).
const dir = mkdtempSync('/var/tmp/ipsec-mesh-harness-test-');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function gone(pid: number | undefined): boolean {
  if (pid === undefined) return true;
  try {
    process.kill(-pid, 0);
    return false;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

describe('UML harness', () => {
  it('runs a script in the UML kernel and returns its exit code and output', async () => {
    const script = join(dir, 'ok.mjs');
    writeFileSync(
      script,
      `import { readFileSync } from 'node:fs';
console.log('kernel', readFileSync('/proc/version', 'utf8').includes('Linux') ? 'linux' : '?', process.env.IPSEC_MESH_IN_UML);
console.log('esp4', readFileSync('/proc/modules', 'utf8').includes('esp4'));
process.exit(3);
`,
    );
    const r = await runInUml({ script, timeoutMs: 60_000 });
    expect(r.timedOut).toBe(false);
    expect(r.exitCode).toBe(3);
    expect(r.output).toContain('kernel linux 1');
    expect(r.output).toContain('esp4 true');
    expect(r.bootMs).toBeGreaterThan(0);
    expect(gone(r.pid)).toBe(true);
  }, 70_000);

  it('kills a guest that outlives its timeout, leaving no UML process behind', async () => {
    const script = join(dir, 'hang.mjs');
    writeFileSync(script, `console.log('hanging'); setInterval(() => {}, 1000);\n`);
    const r = await runInUml({ script, timeoutMs: 12_000 });
    expect(r.timedOut).toBe(true);
    expect(r.exitCode).toBeNull();
    expect(r.durationMs).toBeLessThan(20_000);
    expect(gone(r.pid)).toBe(true);
  }, 30_000);
});
