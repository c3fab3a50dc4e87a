/**
 * End to end in User-Mode Linux (real kernel ESP): two Kubernetes clusters (each a real etcd + kube-apiserver with
 * its operator and agents in Kubernetes mode) and a plain strongSwan site, one IPsecMesh applied with kubectl to
 * both clusters: traffic between every pair of sites through ESP only, Ready tunnels with SPIs and rising counters,
 * no key material anywhere, a gateway failover in cluster A with the time to recovery, a subnet added with the loss
 * of a running flow counted, and the manifest deleted with every gateway's kernel state gone. See
 * scenarios/mesh.ts for the topology. Needs root and Debian user-mode-linux, strongSwan and the kube tools
 * (scripts/install-deps.sh); fails, never skips, when they are missing.
 */
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { runInUml, type UmlRunResult } from '../uml/harness.js';
import { buildAgentBundle, buildDiagnoseBundle, buildOperatorBundle } from '../uml/support/bundle.js';
import { fromWire } from '../uml/support/wire.js';
import type { E2eResult } from './scenarios/mesh.js';

let run: UmlRunResult;
let out: E2eResult;

beforeAll(async () => {
  run = await runInUml({
    script: fileURLToPath(new URL('./scenarios/mesh.ts', import.meta.url)),
    env: {
      IPSEC_MESH_AGENT_BUNDLE: buildAgentBundle(),
      IPSEC_MESH_OPERATOR_BUNDLE: buildOperatorBundle(),
      IPSEC_MESH_DIAGNOSE_BUNDLE: buildDiagnoseBundle(),
    },
    timeoutMs: 840_000,
    mem: '3G',
    // Stage lines as they happen (a slow run shows where its time went).
    onOutput: (chunk) => {
      for (const l of chunk.split('\n')) if (l.startsWith('E2E ')) process.stderr.write(`${l}\n`);
    },
  });
  const lines = run.output.split('\n');
  const line = lines.find((l) => l.startsWith('RESULT '));
  const partial = lines.filter((l) => l.startsWith('PARTIAL ')).pop();
  if (line) out = fromWire<E2eResult>(line.slice('RESULT '.length));
  else if (partial) {
    // Cut short (timeout or crash): what was measured so far, and the stage it stopped in.
    out = fromWire<E2eResult>(partial.slice('PARTIAL '.length));
    out.error = `the scenario did not finish (exit ${run.exitCode}, timedOut ${run.timedOut}); last stage: ${out.stage}\n${run.output.slice(-3000)}`;
  } else {
    throw new Error(
      `UML end-to-end scenario failed (exit ${run.exitCode}, timedOut ${run.timedOut}):\n${run.output.slice(-6000)}\n--- console ---\n${run.console.slice(-2000)}`,
    );
  }
  console.log(
    [
      `e2e: boot ${Math.round(run.bootMs ?? -1)} ms, clusters ${Math.round(out.bootMs?.clusters ?? -1)} ms, apply to all Ready ${Math.round(out.readyMs ?? -1)} ms, total ${Math.round(run.durationMs)} ms`,
      `gateway of A: ${out.gatewayA}; pairs: ${JSON.stringify(out.pairs)}`,
      `underlay: ${JSON.stringify(out.underlay)}`,
      ...Object.entries(out.kubectlGet ?? {}).map(([c, t]) => `kubectl get ipsectunnels -o wide (cluster ${c}):\n${t}`),
      `failover ${out.failover?.from} -> ${out.failover?.to}: recovery ${out.failover?.recoveryMs} ms, gaps ${JSON.stringify(out.failover?.gap)}, lost ${out.failover?.flow?.lost} of ${out.failover?.flow?.sent}, ping after ${out.failover?.pingAfter}`,
      `change: new subnet reached ${out.change?.newSubnetReached}; running flow lost ${out.change?.flow?.lost} of ${out.change?.flow?.sent}, gaps ${JSON.stringify(out.change?.flow?.gaps)}`,
      `deleted: ${JSON.stringify(out.deleted)}`,
      ...Object.entries(out.events ?? {}).map(([c, e]) => `events (cluster ${c}):\n${e.join('\n')}`),
      ...Object.entries(out.diag ?? {}).map(([k, v]) => `diagnostics ${k}:\n${v.join('\n')}`),
    ].join('\n'),
  );
}, 900_000);

const evidence = () => `${out.error ?? ''}\n${(out.logs ?? []).join('\n')}`;

describe('end to end: kubectl apply to encrypted traffic across two clusters and a strongSwan site (UML)', () => {
  it('ran without error', () => {
    expect(out.error, evidence()).toBeUndefined();
  });

  it('every site subnet reaches every other', () => {
    expect(out.pairs?.length).toBe(6);
    expect(out.pairs?.filter((p) => !p.ok)).toEqual([]);
  });

  it('only ESP on the underlay: no packet of a site subnet in plaintext, ESP from every live gateway', () => {
    for (const [gw, u] of Object.entries(out.underlay ?? {})) {
      expect(u.plaintext, gw).toBe(0);
      if (gw === out.gatewayA || gw === 'b1' || gw === 'c1') expect(u.esp, gw).toBeGreaterThan(0);
    }
  });

  it('kubectl get ipsectunnels shows Ready with the gateway, SPIs and rising counters in both clusters', () => {
    const t1 = out.tunnels1 ?? [];
    const t2 = out.tunnels2 ?? [];
    expect(t2.map((t) => `${t.cluster}/${t.name}`).sort()).toEqual(['A/corp-b', 'A/corp-c', 'B/corp-a', 'B/corp-c']);
    for (const t of t2) {
      expect(t.ready, t.name).toBe('True');
      expect(t.gateway, t.name).toBe(t.cluster === 'A' ? out.gatewayA : 'b1');
      expect(t.spiIn, t.name).toMatch(/^[0-9a-f]{8}$/);
      expect(t.spiOut, t.name).toMatch(/^[0-9a-f]{8}$/);
    }
    const ab1 = t1.find((t) => t.cluster === 'A' && t.name === 'corp-b')!;
    const ab2 = t2.find((t) => t.cluster === 'A' && t.name === 'corp-b')!;
    expect(ab2.bytesOut! + ab2.bytesIn!).toBeGreaterThan(ab1.bytesOut! + ab1.bytesIn!);
    expect(out.kubectlGet?.A).toMatch(/corp-b\s/);
  });

  it('no key material in any status, node config, mesh or event', () => {
    expect(out.keyLeaks).toEqual([]);
  });

  it('ipsec-mesh diagnose in Kubernetes mode: both clusters agree and see the same SAs; site C agrees with the mesh', () => {
    const b = out.diagnose?.['corp-b'];
    const c = out.diagnose?.['corp-c'];
    console.log(`ipsec-mesh diagnose (Kubernetes mode, A against B):\n${b?.out}\nexit ${b?.code}`);
    console.log(`ipsec-mesh diagnose (Kubernetes mode, A against the mesh's site C):\n${c?.out}\nexit ${c?.code}`);
    expect(b?.out).toMatch(/\[ok {2}\] agent heartbeat/);
    expect(b?.out).toMatch(/\[ok {2}\] live SA state: IKE Established/);
    expect(b?.out).toMatch(/\[ok {2}\] ESP passes: \d+ packets out, \d+ in/);
    expect(b?.out).toMatch(/\[ok {2}\] proof of encryption/);
    expect(b?.out).toMatch(/\[ok {2}\] both sides agree: .*same PSK/);
    expect(b?.out).toMatch(/\[ok {2}\] live SAs of both sides: both sides see the same SAs/);
    expect(b?.out).toMatch(/\[ok {2}\] same IPsecMesh in both clusters/);
    expect(b?.code).toBe(0);
    expect(c?.out).toMatch(/\[ok {2}\] both sides agree/);
    expect(c?.code).toBe(0);
    expect(out.diagnoseShowsKey).toBe(false);
  });

  it('Events tell the story: gateway elected, tunnel ready, failover', () => {
    const a = (out.events?.A ?? []).join('\n');
    expect(a).toMatch(/GatewayElected/);
    expect(a).toMatch(/GatewayFailover/);
    expect(a).toMatch(/TunnelUp/);
  });

  it('failover: the active gateway of cluster A dies and traffic flows again through the second one', () => {
    const f = out.failover!;
    console.log(`failover recovery: ${f.recoveryMs} ms (aim: under 2000 ms)`);
    expect(f.failoversBefore).toBe(0);
    expect(f.to).not.toBe(f.from);
    expect(f.flow?.received).toBeGreaterThan(0);
    // Every datagram after the recovery arrived: one gap only.
    expect(f.gap?.length ?? 0).toBeLessThanOrEqual(1);
    expect(f.pingAfter).toBe(true);
    // Measured, not bounded here: the aim (under 2 s) is reported in the output and the closing note.
    expect(f.recoveryMs, 'the B->A flow never came back within its 40 s').toBeDefined();
    expect(f.recoveryMs).toBeGreaterThanOrEqual(0);
  });

  it('a subnet added to the manifest is reachable after re-applying it; loss of the running flow is counted', () => {
    expect(out.change?.newSubnetReached).toBe(true);
    console.log(`change: running A->B flow lost ${out.change?.flow?.lost} of ${out.change?.flow?.sent}`);
    expect(out.change?.flow?.sent).toBe(15_000);
  });

  it('deleting the manifest removes every SA and tunnel policy on every live gateway', () => {
    expect(Object.keys(out.deleted ?? {}).length).toBe(2);
    for (const [gw, d] of Object.entries(out.deleted ?? {})) expect(d, gw).toEqual({ sas: 0, tunnelPolicies: 0 });
  });
});
