/**
 * Route MTU and TCP MSS clamping in User-Mode Linux (real kernel ESP): a path of MTU 1300 between two gateways that
 * drops bigger frames silently. One UML boot runs scenarios/agent-mtu.ts; this file asserts on its findings: with the
 * agent's MTU handling off a 4 MiB TCP transfer stalls (the test can fail), with MSS clamping alone and with clamping
 * plus route MTU it completes, the SYNs carry the computed MSS, and removing the tunnel removes the rules and
 * restores the route. Needs root, Debian user-mode-linux, iptables (legacy) and tcpdump (scripts/install-deps.sh).
 */
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { runInUml, type UmlRunResult } from './harness.js';
import type { MtuPhaseResult, MtuResult } from './scenarios/agent-mtu.js';
import { MTU_BYTES, MTU_INNER, MTU_MSS, MTU_PATH } from './scenarios/agent-mtu-params.js';
import { buildAgentBundle } from './support/bundle.js';
import { fromWire } from './support/wire.js';

let run: UmlRunResult;
let out: MtuResult;
const phase = (name: string): MtuPhaseResult => {
  const p = out.phases.find((x) => x.name === name);
  if (!p) throw new Error(`phase ${name} did not run: ${out.error ?? ''}`);
  return p;
};

beforeAll(async () => {
  run = await runInUml({
    script: fileURLToPath(new URL('./scenarios/agent-mtu.ts', import.meta.url)),
    env: { IPSEC_MESH_AGENT_BUNDLE: buildAgentBundle() },
    timeoutMs: 230_000,
  });
  const line = run.output.split('\n').find((l) => l.startsWith('RESULT '));
  if (!line) {
    throw new Error(
      `UML MTU scenario failed (exit ${run.exitCode}, timedOut ${run.timedOut}):\n${run.output.slice(-4000)}\n--- console ---\n${run.console.slice(-2000)}`,
    );
  }
  out = fromWire<MtuResult>(line.slice('RESULT '.length));
  console.log(
    `UML MTU: total ${Math.round(run.durationMs)} ms\n${JSON.stringify(
      out.phases.map((p) => ({
        phase: p.name,
        transfer: p.transfer,
        synMss: p.synMss,
        synAckMss: p.synAckMss,
        drops: p.drops,
        mtu: p.mtu,
        route: p.route,
      })),
      null,
      1,
    )}`,
  );
}, 240_000);

describe('PMTU black hole on a 1300-byte path (UML)', () => {
  it('ran without error', () => {
    expect(out.error, out.notable?.join('\n')).toBeUndefined();
  });

  it('with MTU handling off, the transfer stalls: full-size ESP is dropped on the path', () => {
    const p = phase('off');
    expect(p.mtu).toBeUndefined();
    expect(p.transfer?.ok).toBe(false);
    expect(p.transfer?.serverBytes).toBeLessThan(MTU_BYTES / 2);
    expect(p.drops).toBeGreaterThan(0);
    expect(p.synMss).toBe(1460);
  });

  it('with MSS clamping alone, the transfer completes and the SYNs carry the computed MSS', () => {
    const p = phase('clamp-only');
    expect(p.mtu).toMatchObject({ underlayMtu: MTU_PATH, innerMtu: MTU_INNER, mss: MTU_MSS, clamp: 'iptables-legacy' });
    expect(p.mtu?.routeMtu).toBe(false);
    expect(p.route).not.toContain('mtu');
    expect(p.transfer).toMatchObject({ ok: true, acked: MTU_BYTES, serverBytes: MTU_BYTES });
    expect(p.synMss).toBe(MTU_MSS);
    expect(p.synAckMss).toBe(MTU_MSS);
  });

  it('with clamping and route MTU, the transfer completes; the route carries the inner MTU', () => {
    const p = phase('full');
    expect(p.mtu).toMatchObject({ underlayMtu: MTU_PATH, innerMtu: MTU_INNER, mss: MTU_MSS, routeMtu: true });
    expect(p.mtuPeer).toMatchObject({ innerMtu: MTU_INNER, mss: MTU_MSS });
    expect(p.route).toContain(`mtu lock ${MTU_INNER}`);
    expect(p.rules?.some((r) => r.includes(`--set-mss ${MTU_MSS}`))).toBe(true);
    expect(p.transfer).toMatchObject({ ok: true, acked: MTU_BYTES, serverBytes: MTU_BYTES });
    expect(p.synMss).toBe(MTU_MSS);
  });

  it('nftables is tried first; the UML kernel lacks its inet family, so iptables-legacy is used and the log says why', () => {
    const p = phase('full');
    expect(p.mtu?.clamp).toBe('iptables-legacy');
    expect(p.mtuLog?.join('\n')).toMatch(/"fallback":"nft -f failed/);
  });

  it('removing the tunnel removes the clamping rules and restores the route as it was', () => {
    const p = phase('full');
    expect(p.afterRemoval?.rules).toEqual([]);
    expect(p.afterRemoval?.route).not.toContain('mtu');
    expect(p.afterRemoval?.route).toContain('via 192.0.2.2');
  });
});
