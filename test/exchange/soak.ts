/**
 * Seeded soak of the IKEv2 engine: two sites (a initiates, b responds) with two CHILD SAs, over a network with 20 %
 * loss, 20 % duplication and 20 % reordering, CHILD rekeys every few minutes and IKE rekeys every quarter hour, both
 * sides also rekeying on their own, for a simulated day. Then the network heals and the run must settle to exactly
 * one IKE SA and the configured CHILD SAs on each side, with equal keys and nothing left in either kernel.
 * A failing seed is printed with everything needed to replay it.
 */
import { verifyPairing } from '../sim/kernel.js';
import { installedChildren, kernelCounts, peerConfig, SITE_A, SITE_B, Sim, steady } from './fixtures.js';

export interface SoakOptions {
  /** Simulated duration with a bad network, ms (default one day). */
  durationMs?: number;
  loss?: number;
  duplicate?: number;
  reorder?: number;
}

export interface SoakResult {
  seed: number;
  ok: boolean;
  reason?: string;
  report?: string;
  childRekeys: number;
  ikeRekeys: number;
  restarts: number;
  packets: number;
  simulatedMs: number;
}

const CHILDREN = 2;

export async function soakSeed(seed: number, options: SoakOptions = {}): Promise<SoakResult> {
  const durationMs = options.durationMs ?? 24 * 3_600_000;
  const sim = new Sim(`soak-${seed}`, {
    conditions: {
      loss: options.loss ?? 0.2,
      duplicate: options.duplicate ?? 0.2,
      reorder: options.reorder ?? 0.2,
      reorderDelayMs: 300,
      delayMs: 10,
      jitterMs: 20,
    },
  });
  const common = {
    children: CHILDREN,
    childRekeyMs: 5 * 60_000,
    ikeRekeyMs: 15 * 60_000,
    jitterMs: 60_000,
    dpdMs: 30_000,
    retransmit: { timeoutMs: 2000, base: 1.5, tries: 6 },
  };
  const a = sim.add(SITE_A, [peerConfig(SITE_A, SITE_B, { ...common, dpdAction: 'restart' })]);
  // The responder clears a dead IKE SA (the initiator restarts it); both rekey on their own lifetimes.
  const b = sim.add(SITE_B, [peerConfig(SITE_B, SITE_A, { ...common, startAction: 'none', dpdAction: 'clear' })]);
  a.engine.initiate(a.configs.configs[0]!);

  const result: SoakResult = {
    seed,
    ok: false,
    childRekeys: 0,
    ikeRekeys: 0,
    restarts: 0,
    packets: 0,
    simulatedMs: 0,
  };
  try {
    await sim.run(durationMs);
    // Heal the network and let everything settle: pending rekeys finish, dead SAs restart.
    sim.world.network.setConditions({ loss: 0, duplicate: 0, reorder: 0 });
    const settled = await sim.until(() => steady(a, b, CHILDREN), 30 * 60_000);
    // Stay steady for a while (no late surprises), then check keys and leftovers.
    await sim.run(60_000);
    const counts = [kernelCounts(a), kernelCounts(b)];
    const pairing = verifyPairing(a.host.kernel, b.host.kernel);
    const expected = { in: CHILDREN, out: CHILDREN, policies: 3 * CHILDREN };
    for (const n of [a, b]) {
      for (const e of n.events) {
        if (e.type === 'child-installed' && e.rekeyOf !== undefined) result.childRekeys++;
        if (e.type === 'ike-rekeyed') result.ikeRekeys++;
      }
    }
    result.restarts = a.events.filter((e) => e.type === 'peer-dead' || e.type === 'ike-failed').length;
    result.packets = sim.world.network.stats.sent;
    result.simulatedMs = sim.clock.now();
    if (!settled || !steady(a, b, CHILDREN)) {
      result.reason = `did not settle: a=${a.engine.ikeSas().map((s) => `${s.state}/${s.children.map((c) => c.state).join(',')}`)} b=${b.engine.ikeSas().map((s) => `${s.state}/${s.children.map((c) => c.state).join(',')}`)} childrenA=${installedChildren(a).length} childrenB=${installedChildren(b).length}`;
    } else if (pairing.length > 0) {
      result.reason = `kernel mismatch: ${pairing.join('; ')}`;
    } else if (
      JSON.stringify(counts[0]) !== JSON.stringify(expected) ||
      JSON.stringify(counts[1]) !== JSON.stringify(expected)
    ) {
      result.reason = `kernel leftovers: a=${JSON.stringify(counts[0])} b=${JSON.stringify(counts[1])}`;
    } else {
      result.ok = true;
    }
  } catch (err) {
    result.reason = `exception: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`;
  }
  if (!result.ok) result.report = sim.world.report();
  a.engine.shutdown();
  b.engine.shutdown();
  return result;
}

export function summarize(results: SoakResult[]): string {
  const failed = results.filter((r) => !r.ok);
  const sum = (f: (r: SoakResult) => number) => results.reduce((n, r) => n + f(r), 0);
  const lines = [
    `soak: ${results.length} seeds, ${results.length - failed.length} passed, ${failed.length} failed; ` +
      `simulated ${(sum((r) => r.simulatedMs) / 86_400_000).toFixed(1)} days, ${sum((r) => r.childRekeys)} CHILD rekeys, ` +
      `${sum((r) => r.ikeRekeys)} IKE rekeys, ${sum((r) => r.restarts)} dead-peer restarts, ${sum((r) => r.packets)} packets`,
  ];
  for (const f of failed) lines.push(`  FAILED seed ${f.seed}: ${f.reason} (replay: npm run soak -- --seed ${f.seed})`);
  return lines.join('\n');
}

/** The body of one `npm test` soak file: seeds `from`..`to` must all settle; the run must have rekeyed a lot. */
export async function expectSoakRange(
  from: number,
  to: number,
): Promise<{ failed: string[]; summary: string; childRekeys: number; ikeRekeys: number }> {
  const results: SoakResult[] = [];
  for (let seed = from; seed <= to; seed++) results.push(await soakSeed(seed));
  const summary = summarize(results);
  return {
    failed: results.filter((r) => !r.ok).map((r) => `${r.seed}: ${r.reason}`),
    summary,
    childRekeys: results.reduce((n, r) => n + r.childRekeys, 0),
    ikeRekeys: results.reduce((n, r) => n + r.ikeRekeys, 0),
  };
}
