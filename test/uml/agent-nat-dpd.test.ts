/**
 * Scenarios 5 and 6 of the agent in User-Mode Linux (real kernel ESP), one boot (scenarios/agent-nat-dpd.ts):
 * a gateway behind a masquerading NAT (NAT detected, ESP in UDP 4500, traffic flows, and the tunnel recovers when the
 * NAT mapping changes), then the peer vanishing and dead peer detection noticing it within the DPD interval plus the
 * retransmissions. Needs root, Debian user-mode-linux, iptables and conntrack (scripts/install-deps.sh).
 */
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { runInUml, type UmlRunResult } from './harness.js';
import type { NatDpdResult } from './scenarios/agent-nat-dpd.js';
import { DPD_INTERVAL_S, RETRANSMIT_TOTAL_S } from './scenarios/agent-params.js';
import { buildAgentBundle } from './support/bundle.js';
import { fromWire } from './support/wire.js';

let run: UmlRunResult;
let out: NatDpdResult;

beforeAll(async () => {
  run = await runInUml({
    script: fileURLToPath(new URL('./scenarios/agent-nat-dpd.ts', import.meta.url)),
    env: { IPSEC_MESH_AGENT_BUNDLE: buildAgentBundle() },
    timeoutMs: 230_000,
  });
  const line = run.output.split('\n').find((l) => l.startsWith('RESULT '));
  if (!line) {
    throw new Error(
      `UML NAT/DPD scenario failed (exit ${run.exitCode}, timedOut ${run.timedOut}):\n${run.output.slice(-4000)}\n--- console ---\n${run.console.slice(-2000)}`,
    );
  }
  out = fromWire<NatDpdResult>(line.slice('RESULT '.length));
  console.log(
    `UML NAT/DPD: boot ${Math.round(run.bootMs ?? -1)} ms, total ${Math.round(run.durationMs)} ms; NAT recovery ${Math.round(out.nat.recoveryMs ?? -1)} ms (peer ${out.nat.peerBefore} -> ${out.nat.peerAfter}, NAT ${out.nat.mappingBefore} -> ${out.nat.mappingAfter}); DPD detection ${Math.round(out.dpd.detectionMs ?? -1)} ms, shown ${JSON.stringify(out.dpd.shown)}, seen ${out.dpd.seen.join(' > ')}; back up ${Math.round(out.dpd.recoveredMs ?? -1)} ms after the peer returned`,
  );
}, 240_000);

const evidence = () => out.notable.slice(-60).join('\n');

describe('scenario 5: NAT between the sites (UML)', () => {
  it('ran without error', () => {
    expect(out.error, evidence()).toBeUndefined();
  });

  it('NAT is detected on both sides and the CHILD SAs use UDP encapsulation', () => {
    expect(out.nat.natDetected).toEqual({ gw1: true, gw2: true });
    expect(out.nat.encapsulation).toEqual({ gw1: true, gw2: true });
  });

  it('traffic flows, as ESP in UDP 4500 only', () => {
    expect(out.nat.echoBefore, out.nat.errors.join('\n')).toBe(true);
    // The capture window holds the pings' ESP-in-UDP packets (about ten); the point is that there are some
    // and that nothing else is on the wire.
    expect(out.nat.wire?.udp4500).toBeGreaterThanOrEqual(5);
    expect(out.nat.wire?.bareEsp).toBe(0);
    expect(out.nat.wire?.plaintext, out.nat.wire?.sample.join('\n')).toBe(0);
  });

  it('after the NAT mapping changes (conntrack flush) the tunnel recovers', () => {
    expect(out.nat.errors, evidence()).toEqual([]);
    expect(out.nat.mappingBefore).toMatch(/->/);
    expect(out.nat.mappingAfter).toMatch(/->/);
    expect(out.nat.mappingAfter).not.toBe(out.nat.mappingBefore);
    expect(out.nat.peerAfter).not.toBe(out.nat.peerBefore);
    // Recovery needs an authenticated IKE message from the new mapping (DPD at the latest).
    expect(out.nat.recoveryMs).toBeLessThan((DPD_INTERVAL_S + RETRANSMIT_TOTAL_S + 5) * 1000);
  });
});

describe('scenario 6: the peer vanishes (UML)', () => {
  it('dead peer detection notices within the interval plus retransmissions, and the status says so', () => {
    expect(out.dpd.errors, evidence()).toEqual([]);
    expect(out.dpd.detectionMs).toBeLessThan((DPD_INTERVAL_S + RETRANSMIT_TOTAL_S + 3) * 1000);
    expect(out.dpd.shown?.lastError).toBe('PEER_DEAD');
  });

  it('with action restart the tunnel comes back once the peer does (re-initiation with back-off)', () => {
    expect(out.dpd.recoveredMs, evidence()).toBeDefined();
    expect(out.dpd.recoveredMs).toBeLessThan(60_000);
  });
});
