/**
 * ESP-blocked fallback in User-Mode Linux (real kernel ESP): a router between the gateways drops IP protocol 50 but
 * passes UDP. One UML boot runs scenarios/agent-esp-block.ts; this file asserts that without the fallback the tunnel
 * is up and carries nothing (the test can fail), and that with the default mode (auto) gateway 1 detects the block,
 * has the peer confirm over IKE that no ESP arrived, renegotiates with forced UDP encapsulation, says so in status,
 * and the pings flow; the recovery time is printed. With ESP passing, a one-way flow stays on plain ESP in mode auto
 * (the peer reports what it received) and is needlessly moved to UDP in mode heuristic (so the first can fail). Needs root, Debian
 * user-mode-linux, iptables (legacy) and tcpdump (scripts/install-deps.sh).
 */
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { runInUml, type UmlRunResult } from './harness.js';
import type { EspBlockPhase, EspBlockResult } from './scenarios/agent-esp-block.js';
import { buildAgentBundle, buildDiagnoseBundle } from './support/bundle.js';
import { fromWire } from './support/wire.js';

let run: UmlRunResult;
let out: EspBlockResult;
const phase = (name: string): EspBlockPhase => {
  const p = out.phases.find((x) => x.name === name);
  if (!p) throw new Error(`phase ${name} did not run: ${out.error ?? ''}`);
  return p;
};

beforeAll(async () => {
  run = await runInUml({
    script: fileURLToPath(new URL('./scenarios/agent-esp-block.ts', import.meta.url)),
    env: { IPSEC_MESH_AGENT_BUNDLE: buildAgentBundle(), IPSEC_MESH_DIAGNOSE_BUNDLE: buildDiagnoseBundle() },
    timeoutMs: 330_000,
  });
  const line = run.output.split('\n').find((l) => l.startsWith('RESULT '));
  if (!line) {
    throw new Error(
      `UML esp-block scenario failed (exit ${run.exitCode}, timedOut ${run.timedOut}):\n${run.output.slice(-4000)}\n--- console ---\n${run.console.slice(-2000)}`,
    );
  }
  out = fromWire<EspBlockResult>(line.slice('RESULT '.length));
  console.log(
    `UML ESP blocked: total ${Math.round(run.durationMs)} ms\n${JSON.stringify(
      out.phases.map(({ tunnel, peerTunnel, ...p }) => ({
        ...p,
        ike: tunnel?.ikeSA.remote,
        nat: tunnel?.ikeSA.natDetected,
        encap: tunnel?.childSAs.map((c) => `${c.state}:${c.encapsulation}`),
        espBlocked: tunnel?.espBlocked,
      })),
      null,
      1,
    )}`,
  );
}, 340_000);

describe('ESP blocked on the path, UDP passes (UML)', () => {
  it('ran without error', () => {
    expect(out.error, out.notable?.join('\n')).toBeUndefined();
  });

  it('without the fallback the tunnel is up but carries nothing: the router drops the ESP', () => {
    const p = phase('off');
    expect(p.tunnel?.ikeSA.state).toBe('Established');
    expect(p.tunnel?.childSAs.some((c) => c.state === 'installed' && !c.encapsulation)).toBe(true);
    expect(p.sent).toBeGreaterThan(50);
    expect(p.echoed).toBe(0);
    expect(p.espDropped).toBeGreaterThan(10);
    expect(p.espBlockedEvents).toBe(0);
  });

  it('`ipsec-mesh diagnose` on gateway 1 says ESP is dropped and how to fix it, while IKE answers', () => {
    const d = phase('off').diagnose ?? '';
    console.log(`ipsec-mesh diagnose with ESP blocked:\n${d}`);
    expect(d).toMatch(/\[fail\] ESP passes: \d+ packets out, 0 in: outbound rises with nothing inbound/);
    expect(d).toMatch(/fix: allow IP protocol 50 between the gateways, or set natt: force/);
    expect(d).toMatch(/\[ok {2}\] UDP 500\/4500 to the peer/);
    expect(d).toMatch(/\[ok {2}\] live SA state: IKE Established/);
  });

  it('default mode (auto): gateway 1 detects the block, the peer confirms, UDP encapsulation; pings flow', () => {
    const p = phase('fallback');
    expect(p.tunnel?.espBlocked?.message).toMatch(/the peer confirms over IKE that none reached it/);
    expect(p.blockedAfterMs).toBeDefined();
    expect(p.echoAfterMs).toBeDefined();
    expect(p.echoAfterMs).toBeLessThan(20_000);
    expect(p.echoed).toBeGreaterThan(20);
    expect(p.tunnel?.espBlocked?.message).toMatch(/ESP \(IP protocol 50\) is blocked on the path/);
    expect(p.tunnel?.ikeSA.remote).toBe('198.51.100.1:4500');
    expect(p.tunnel?.childSAs.some((c) => c.state === 'installed' && c.encapsulation)).toBe(true);
    expect(p.peerTunnel?.childSAs.some((c) => c.state === 'installed' && c.encapsulation)).toBe(true);
    expect(p.udpEncapForwarded).toBeGreaterThan(20);
  });

  it('ESP passing, one-way flow, mode auto: the peer reports what it received; plain ESP stays, nothing lost', () => {
    const p = phase('one-way');
    expect(p.flow?.sent).toBe(3200);
    expect(p.flow?.lost).toBe(0);
    expect(p.oneWayEvents).toBe(1);
    expect(p.espBlockedEvents).toBe(0);
    expect(p.tunnel?.espBlocked).toBeUndefined();
    expect(p.tunnel?.ikeSA.remote).toBe('198.51.100.1:500');
    expect(p.tunnel?.childSAs.some((c) => c.state === 'installed' && !c.encapsulation)).toBe(true);
    expect(p.udpEncapForwarded).toBe(0);
  });

  it('the same flow in mode heuristic is taken for blocked ESP and moved to UDP needlessly', () => {
    const p = phase('one-way-heuristic');
    expect(p.espBlockedEvents).toBeGreaterThan(0);
    expect(p.tunnel?.espBlocked?.message).toMatch(/probably blocked/);
    expect(p.tunnel?.childSAs.some((c) => c.state === 'installed' && c.encapsulation)).toBe(true);
  });
});
