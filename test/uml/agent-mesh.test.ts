/**
 * Scenario 1 of the agent in User-Mode Linux (real kernel ESP): three sites, a full mesh of `ipsec-mesh agent`s.
 * One UML boot runs scenarios/agent-mesh.ts; this file asserts on its findings: every tunnel up on both ends,
 * TCP echo and ping between the hosts of every ordered pair of sites, kernel counters rising, and only ESP, IKE and
 * ARP on the underlay (never the plaintext). Needs root, Debian user-mode-linux, tcpdump, iputils-ping
 * (scripts/install-deps.sh); fails, never skips, when they are missing.
 */
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { runInUml, type UmlRunResult } from './harness.js';
import type { MeshResult } from './scenarios/agent-mesh.js';
import { buildAgentBundle } from './support/bundle.js';
import { fromWire } from './support/wire.js';

let run: UmlRunResult;
let out: MeshResult;

beforeAll(async () => {
  run = await runInUml({
    script: fileURLToPath(new URL('./scenarios/agent-mesh.ts', import.meta.url)),
    env: { IPSEC_MESH_AGENT_BUNDLE: buildAgentBundle() },
    timeoutMs: 170_000,
  });
  const line = run.output.split('\n').find((l) => l.startsWith('RESULT '));
  if (!line) {
    throw new Error(
      `UML mesh scenario failed (exit ${run.exitCode}, timedOut ${run.timedOut}):\n${run.output.slice(-4000)}\n--- console ---\n${run.console.slice(-2000)}`,
    );
  }
  out = fromWire<MeshResult>(line.slice('RESULT '.length));
  console.log(
    `UML mesh: boot ${Math.round(run.bootMs ?? -1)} ms, total ${Math.round(run.durationMs)} ms, agents up ${Math.round(out.upMs ?? -1)} ms`,
  );
}, 180_000);

describe('scenario 1: three-site full mesh of agents with kernel ESP (UML)', () => {
  it('ran without error', () => {
    expect(out.error, out.notable?.join('\n')).toBeUndefined();
  });

  it('every agent has an established IKE SA and an installed CHILD SA to each other site', () => {
    for (const n of [1, 2, 3]) {
      const t = out.tunnels?.[`site${n}`];
      expect(t, `site${n}`).toBeDefined();
      for (const m of [1, 2, 3]) {
        if (m === n) continue;
        expect(t?.[`to-site${m}`]?.ike, `site${n} -> site${m}`).toBe('Established');
        expect(t?.[`to-site${m}`]?.installed, `site${n} -> site${m}`).toBeGreaterThanOrEqual(1);
      }
    }
    for (const n of Object.values(out.kernelSas ?? {})) expect(n).toBeGreaterThanOrEqual(4);
  });

  it('TCP echo and ping work between the hosts of every ordered pair of sites', () => {
    expect(out.pairs).toHaveLength(6);
    for (const p of out.pairs ?? []) {
      expect(p.tcp, `${p.from} -> ${p.to}`).toEqual({ bytes: expect.any(Number), equal: true });
      expect(p.ping, `ping ${p.from} -> ${p.to}`).toBe(true);
    }
  });

  it('the kernel counters in status rose for every tunnel in both directions', () => {
    for (const [agent, tunnels] of Object.entries(out.counters ?? {})) {
      for (const [name, c] of Object.entries(tunnels)) {
        expect(Number(c.bytesIn), `${agent}/${name} in`).toBeGreaterThan(0);
        expect(Number(c.bytesOut), `${agent}/${name} out`).toBeGreaterThan(0);
      }
    }
  });

  it('only ESP, IKE and ARP left the gateways; the plaintext never did', () => {
    expect(out.wire?.esp).toBeGreaterThan(50);
    expect(out.wire?.other).toEqual([]);
    expect(out.wire?.markerFound).toBe(false);
  });
});
