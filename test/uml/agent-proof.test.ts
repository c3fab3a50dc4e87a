/**
 * Proof of encryption in User-Mode Linux (real kernel ESP): an out policy removed by hand with `ip xfrm policy delete`
 * while traffic flows. One UML boot runs scenarios/agent-proof.ts; this file asserts that the agent's check reports
 * Encrypted=False (PolicyMissing) within its interval, puts the policy back (reqid and endpoints as before), traffic
 * flows again, the status turns True, and the metrics say so. Needs root, Debian user-mode-linux, tcpdump and curl
 * (scripts/install-deps.sh).
 */
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { runInUml, type UmlRunResult } from './harness.js';
import { PROOF_INTERVAL_MS } from './scenarios/agent-mtu-params.js';
import type { ProofResult } from './scenarios/agent-proof.js';
import { buildAgentBundle } from './support/bundle.js';
import { fromWire } from './support/wire.js';

let run: UmlRunResult;
let out: ProofResult;

beforeAll(async () => {
  run = await runInUml({
    script: fileURLToPath(new URL('./scenarios/agent-proof.ts', import.meta.url)),
    env: { IPSEC_MESH_AGENT_BUNDLE: buildAgentBundle() },
    timeoutMs: 170_000,
  });
  const line = run.output.split('\n').find((l) => l.startsWith('RESULT '));
  if (!line) {
    throw new Error(
      `UML proof scenario failed (exit ${run.exitCode}, timedOut ${run.timedOut}):\n${run.output.slice(-4000)}\n--- console ---\n${run.console.slice(-2000)}`,
    );
  }
  out = fromWire<ProofResult>(line.slice('RESULT '.length));
  const { notable: _n, ...figures } = out;
  console.log(`UML proof of encryption: total ${Math.round(run.durationMs)} ms\n${JSON.stringify(figures, null, 1)}`);
}, 180_000);

describe('proof of encryption: a policy deleted by hand (UML)', () => {
  it('ran without error', () => {
    expect(out.error, out.notable?.join('\n')).toBeUndefined();
  });

  it('before: Encrypted=True with our policies in place, and traffic flowed', () => {
    expect(out.before).toMatchObject({ status: 'True', reason: 'PoliciesInPlace', restored: 0 });
    expect(out.echoesBefore).toBeGreaterThan(5);
    // Gone right after the delete, or (the agent's check ran in between) the agent itself found it missing.
    expect(out.deletedConfirmed || (out.falseView?.restored ?? 0) > (out.before?.restored ?? 0)).toBe(true);
  });

  it('the check reports Encrypted=False (PolicyMissing) within its interval', () => {
    expect(out.falseView).toMatchObject({ status: 'False', reason: 'PolicyMissing' });
    expect(out.falseView?.message).toContain('restored 1 of 1');
    expect(out.falseAfterMs).toBeLessThanOrEqual(PROOF_INTERVAL_MS + 1500);
  });

  it('the agent restores the policy within its interval, with the tunnel reqid, and traffic flows again', () => {
    expect(out.restoredAfterMs).toBeLessThanOrEqual(PROOF_INTERVAL_MS + 1000);
    expect(out.policyAfter).toMatch(/dir out/);
    expect(out.policyAfter).toMatch(/reqid 12966\d{5} /);
    expect(out.echoAfterMs).toBeDefined();
    expect(out.echoAfterMs).toBeLessThanOrEqual(PROOF_INTERVAL_MS + 2000);
  });

  it('Encrypted turns True on the next check; metrics and ipsec-mesh status show it', () => {
    expect(out.after).toMatchObject({ status: 'True', restored: 1 });
    expect(out.metrics).toContain('ipsec_mesh_encrypted{tunnel="default/to-site2"} 1');
    expect(out.metrics).toContain('ipsec_mesh_policy_restores_total{tunnel="default/to-site2"} 1');
    expect(out.statusText?.some((l) => /encrypted True PoliciesInPlace .*1 policies restored/.test(l))).toBe(true);
  });

  it('plaintext left the gateway only while the policy was missing', () => {
    expect(out.plaintextOnWire).toBeGreaterThan(0);
    expect(out.plaintextAfterRestore).toBe(0);
  });
});
