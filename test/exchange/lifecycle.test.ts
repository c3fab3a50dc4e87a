/**
 * The life of a tunnel after establishment: CHILD and IKE rekeys (also colliding ones, RFC 7296 §2.8.1-2.8.2),
 * deletes from either side and simultaneous ones, liveness checks and dead peers, INITIAL_CONTACT after a restart.
 * Modelled on strongSwan's test_child_rekey / test_ike_rekey / test_child_delete suites, in our own words.
 */
import { describe, expect, it } from 'vitest';
import { ExchangeType } from '../../src/ike/constants.js';
import type { ChildRekeyTask } from '../../src/ike/tasks/child-rekey.js';
import type { IkeRekeyTask } from '../../src/ike/tasks/ike-rekey.js';
import { verifyPairing } from '../sim/kernel.js';
import {
  dropNext,
  established,
  headerOf,
  installedChildren,
  kernelCounts,
  kernelEmpty,
  pair,
  peerConfig,
  SITE_A,
  SITE_B,
  Sim,
  steady,
} from './fixtures.js';

async function up(seed: number | string, o: Parameters<typeof pair>[1] = {}) {
  const p = pair(seed, { sim: { conditions: { delayMs: 5 } }, ...o });
  p.a.engine.initiate(p.configA);
  const ok = await p.sim.until(() => steady(p.a, p.b, p.configA.children.length), 10_000);
  if (!ok) throw new Error(`not established\n${p.sim.world.report()}`);
  return p;
}

function ikeOf(node: ReturnType<typeof pair>['a']) {
  return established(node)[0]!;
}

function childOf(node: ReturnType<typeof pair>['a']) {
  return installedChildren(node)[0]!;
}

function rekeyOutcomes(node: ReturnType<typeof pair>['a']) {
  return node.engine.ikeSas().flatMap((s) => s.tm.initiatorTasks()) as unknown as (ChildRekeyTask | IkeRekeyTask)[];
}

describe('CHILD SA rekey', () => {
  it('initiator side: new SAs in before old ones out, keys equal, SPIs new', async () => {
    const { sim, a, b } = await up(100);
    const old = childOf(a);
    const oldSpis = [old.spiIn, old.spiOut];
    const mark = a.host.kernel.calls.length;
    a.engine.rekeyChild(ikeOf(a), old);
    expect(await sim.until(() => steady(a, b) && childOf(a) !== old, 10_000), sim.world.report()).toBe(true);
    const fresh = childOf(a);
    expect(oldSpis).not.toContain(fresh.spiIn);
    expect(fresh.reqid).toBe(old.reqid);
    const hex = (n: number) => n.toString(16).padStart(8, '0');
    const ops = a.host.kernel.calls
      .slice(mark)
      .map((c) => `${c.op}${c.summary.includes(hex(old.spiIn)) || c.summary.includes(hex(old.spiOut)) ? ':old' : ''}`);
    expect(ops).toEqual(['allocSpi', 'updateSa', 'addSa', 'deleteSa:old', 'deleteSa:old']);
    expect(verifyPairing(a.host.kernel, b.host.kernel)).toEqual([]);
    expect(kernelCounts(a)).toEqual({ in: 1, out: 1, policies: 3 });
    expect(kernelCounts(b)).toEqual({ in: 1, out: 1, policies: 3 });
  });

  it('responder defers its new outbound SA until the old CHILD SA is deleted', async () => {
    const { sim, a, b } = await up(101);
    const old = childOf(b);
    // Hold back a's DELETE so we can look at b in between.
    const hold = dropNext(sim, { from: SITE_A.address, exchange: ExchangeType.INFORMATIONAL }, 1);
    a.engine.rekeyChild(ikeOf(a), childOf(a));
    await sim.run(100);
    const children = ikeOf(b).children;
    expect(children).toHaveLength(2);
    const fresh = children.find((c) => c !== old)!;
    expect(fresh.inboundInstalled).toBe(true);
    expect(fresh.outboundInstalled).toBe(false);
    expect(hold.dropped()).toBe(1);
    expect(await sim.until(() => steady(a, b), 10_000), sim.world.report()).toBe(true);
    expect(verifyPairing(a.host.kernel, b.host.kernel)).toEqual([]);
  });

  it('works when the IKE responder initiates the rekey', async () => {
    const { sim, a, b } = await up(102);
    const old = childOf(b);
    b.engine.rekeyChild(ikeOf(b), old);
    expect(await sim.until(() => steady(a, b) && childOf(b) !== old, 10_000), sim.world.report()).toBe(true);
    expect(verifyPairing(a.host.kernel, b.host.kernel)).toEqual([]);
  });

  it('uses PFS when the ESP proposal has a key exchange method', async () => {
    const { sim, a, b } = await up(103, { esp: 'aes256gcm16-x25519' });
    const old = childOf(a);
    a.engine.rekeyChild(ikeOf(a), old);
    expect(await sim.until(() => steady(a, b) && childOf(a) !== old, 10_000), sim.world.report()).toBe(true);
    expect(childOf(a).suite!.keId).toBe(31);
    expect(verifyPairing(a.host.kernel, b.host.kernel)).toEqual([]);
  });

  it('retries with the PFS group the responder asks for (INVALID_KE_PAYLOAD in CREATE_CHILD_SA)', async () => {
    const { sim, a, b } = await up(104, { esp: 'aes256gcm16-x25519-ecp256', b: { esp: 'aes256gcm16-ecp256' } });
    const old = childOf(a);
    a.engine.rekeyChild(ikeOf(a), old);
    expect(await sim.until(() => steady(a, b) && childOf(a) !== old, 10_000), sim.world.report()).toBe(true);
    expect(childOf(a).suite!.keId).toBe(19);
  });

  it('rekeys on its lifetime, with jitter, again and again', async () => {
    const { sim, a, b } = await up(105, { childRekeyMs: 60_000, jitterMs: 10_000 });
    const seen = new Set<number>();
    for (let i = 0; i < 10; i++) {
      await sim.run(30_000);
      if (steady(a, b)) seen.add(childOf(a).spiIn);
    }
    expect(seen.size).toBeGreaterThanOrEqual(5);
    expect(await sim.until(() => steady(a, b), 30_000)).toBe(true);
    expect(verifyPairing(a.host.kernel, b.host.kernel)).toEqual([]);
    const rekeys =
      a.events.filter((e) => e.type === 'child-installed' && e.rekeyOf !== undefined).length +
      b.events.filter((e) => e.type === 'child-installed' && e.rekeyOf !== undefined).length;
    expect(rekeys).toBeGreaterThanOrEqual(5);
  });

  it('survives a lost CREATE_CHILD_SA request and a lost response', async () => {
    const { sim, a, b } = await up(106);
    dropNext(sim, { from: SITE_A.address, exchange: ExchangeType.CREATE_CHILD_SA });
    dropNext(sim, { from: SITE_B.address, exchange: ExchangeType.CREATE_CHILD_SA, response: true });
    const old = childOf(a);
    a.engine.rekeyChild(ikeOf(a), old);
    expect(await sim.until(() => steady(a, b) && childOf(a) !== old, 30_000), sim.world.report()).toBe(true);
    expect(verifyPairing(a.host.kernel, b.host.kernel)).toEqual([]);
    // The retransmitted request was answered from the cache: b allocated only one new SPI.
    expect(b.host.kernel.log().filter((l) => l.startsWith('allocSpi'))).toHaveLength(2);
  });

  it('survives a lost DELETE of the old CHILD SA', async () => {
    const { sim, a, b } = await up(107);
    dropNext(sim, { from: SITE_A.address, exchange: ExchangeType.INFORMATIONAL });
    const old = childOf(a);
    a.engine.rekeyChild(ikeOf(a), old);
    expect(await sim.until(() => steady(a, b) && childOf(a) !== old, 30_000), sim.world.report()).toBe(true);
    expect(verifyPairing(a.host.kernel, b.host.kernel)).toEqual([]);
  });

  it('recreates a CHILD SA the peer no longer has (CHILD_SA_NOT_FOUND)', async () => {
    const { sim, a, b } = await up(108);
    // b silently loses the CHILD SA (e.g. removed by hand).
    const lost = childOf(b);
    await ikeOf(b).uninstall(lost, 'test');
    a.engine.rekeyChild(ikeOf(a), childOf(a));
    expect(
      await sim.until(() => steady(a, b) && childOf(a).spiOut === childOf(b).spiIn, 30_000),
      sim.world.report(),
    ).toBe(true);
    expect(a.events.some((e) => e.type === 'child-failed' && e.failure.code === 'CHILD_SA_NOT_FOUND')).toBe(true);
    expect(verifyPairing(a.host.kernel, b.host.kernel)).toEqual([]);
  });
});

describe('CHILD SA rekey collisions (RFC 7296 §2.8.1)', () => {
  // Both sides rekey at the same instant; the requests cross on the wire. Which side wins depends on the nonces,
  // so run enough seeds to see both outcomes.
  const outcomes = new Set<string>();
  for (const seed of [200, 201, 202, 203, 204, 205, 206, 207]) {
    it(`both sides rekey at once (seed ${seed}): one new CHILD SA survives on both, nothing leaks`, async () => {
      const { sim, a, b } = await up(seed, { sim: { conditions: { delayMs: 20 } } });
      const oldA = childOf(a);
      a.engine.rekeyChild(ikeOf(a), oldA);
      b.engine.rekeyChild(ikeOf(b), childOf(b));
      await sim.run(5);
      const tasksA = rekeyOutcomes(a);
      expect(await sim.until(() => steady(a, b) && childOf(a) !== oldA, 30_000), sim.world.report()).toBe(true);
      await sim.run(1_000);
      expect(steady(a, b)).toBe(true);
      expect(verifyPairing(a.host.kernel, b.host.kernel)).toEqual([]);
      expect(kernelCounts(a)).toEqual({ in: 1, out: 1, policies: 3 });
      expect(kernelCounts(b)).toEqual({ in: 1, out: 1, policies: 3 });
      const t = tasksA.find((x) => x.name === 'child-rekey') as ChildRekeyTask | undefined;
      if (t?.outcome) outcomes.add(t.outcome);
    });
  }
  it('saw both a won and a lost collision across the seeds', () => {
    expect(outcomes).toEqual(new Set(['won-collision', 'lost-collision']));
  });

  it('a rekey request that crosses our finished rekey gets TEMPORARY_FAILURE and nothing leaks', async () => {
    const { sim, a, b } = await up(210, { sim: { conditions: { delayMs: 20 } } });
    // Delay b's request so that a's rekey (and the delete) complete first at a.
    const oldB = childOf(b);
    a.engine.rekeyChild(ikeOf(a), childOf(a));
    await sim.run(30);
    b.engine.rekeyChild(ikeOf(b), oldB);
    expect(await sim.until(() => steady(a, b) && childOf(b) !== oldB, 30_000), sim.world.report()).toBe(true);
    await sim.run(20_000);
    expect(steady(a, b)).toBe(true);
    expect(verifyPairing(a.host.kernel, b.host.kernel)).toEqual([]);
  });

  it('rekey collides with a delete of the same CHILD SA: it ends deleted or replaced, never leaked', async () => {
    const { sim, a, b } = await up(211, { sim: { conditions: { delayMs: 20 } } });
    a.engine.rekeyChild(ikeOf(a), childOf(a));
    b.engine.deleteChild(ikeOf(b), childOf(b));
    await sim.run(10_000);
    expect(verifyPairing(a.host.kernel, b.host.kernel)).toEqual([]);
    expect(installedChildren(a).length).toBe(installedChildren(b).length);
    expect(installedChildren(a).length).toBeLessThanOrEqual(1);
  });
});

describe('IKE SA rekey', () => {
  it('moves the CHILD SAs to a new IKE SA with new SPIs and deletes the old one', async () => {
    const { sim, a, b } = await up(300, { children: 2 });
    const old = ikeOf(a);
    const childSpis = installedChildren(a)
      .map((c) => c.spiIn)
      .sort();
    a.engine.rekeyIke(old);
    expect(await sim.until(() => steady(a, b, 2) && ikeOf(a) !== old, 10_000), sim.world.report()).toBe(true);
    const fresh = ikeOf(a);
    expect(fresh.spiI).not.toEqual(old.spiI);
    expect(fresh.rekeyOf).toBe(old.uid);
    expect(fresh.tm.nextRequestId).toBe(0);
    expect(
      installedChildren(a)
        .map((c) => c.spiIn)
        .sort(),
    ).toEqual(childSpis);
    expect(a.engine.ikeSas()).toHaveLength(1);
    expect(b.engine.ikeSas()).toHaveLength(1);
    // The new IKE SA works: a CHILD rekey over it succeeds.
    const child = childOf(a);
    a.engine.rekeyChild(fresh, child);
    expect(await sim.until(() => steady(a, b, 2) && !installedChildren(a).includes(child), 10_000)).toBe(true);
    expect(verifyPairing(a.host.kernel, b.host.kernel)).toEqual([]);
  });

  it('works when the IKE responder rekeys', async () => {
    const { sim, a, b } = await up(301);
    const old = ikeOf(b);
    b.engine.rekeyIke(old);
    expect(await sim.until(() => steady(a, b) && ikeOf(b) !== old, 10_000), sim.world.report()).toBe(true);
    expect(ikeOf(b).originalInitiator).toBe(true);
    expect(ikeOf(a).originalInitiator).toBe(false);
    b.engine.rekeyChild(ikeOf(b), childOf(b));
    expect(await sim.until(() => steady(a, b), 10_000)).toBe(true);
  });

  it('rekeys on its lifetime, repeatedly, keeping the CHILD SAs', async () => {
    const { sim, a, b } = await up(302, { ikeRekeyMs: 120_000, jitterMs: 20_000 });
    const uids = new Set<number>();
    for (let i = 0; i < 12; i++) {
      await sim.run(60_000);
      if (steady(a, b)) uids.add(ikeOf(a).uid);
    }
    expect(uids.size).toBeGreaterThanOrEqual(4);
    expect(await sim.until(() => steady(a, b), 30_000)).toBe(true);
    expect(verifyPairing(a.host.kernel, b.host.kernel)).toEqual([]);
  });

  const ikeOutcomes = new Set<string>();
  for (const seed of [310, 311, 312, 313, 314, 315, 316, 317]) {
    it(`both sides rekey the IKE SA at once (seed ${seed}): one IKE SA remains with the CHILD SAs`, async () => {
      const { sim, a, b } = await up(seed, { sim: { conditions: { delayMs: 20 } } });
      const old = ikeOf(a);
      a.engine.rekeyIke(old);
      b.engine.rekeyIke(ikeOf(b));
      await sim.run(5);
      const tasks = rekeyOutcomes(a);
      expect(await sim.until(() => steady(a, b) && ikeOf(a) !== old, 30_000), sim.world.report()).toBe(true);
      await sim.run(2_000);
      expect(steady(a, b)).toBe(true);
      expect(ikeOf(a).spiI).toEqual(ikeOf(b).spiI);
      expect(verifyPairing(a.host.kernel, b.host.kernel)).toEqual([]);
      const t = tasks.find((x) => x.name === 'ike-rekey') as IkeRekeyTask | undefined;
      if (t?.outcome) ikeOutcomes.add(t.outcome);
      // The surviving IKE SA can still rekey a CHILD SA.
      const c = childOf(a);
      a.engine.rekeyChild(ikeOf(a), c);
      expect(await sim.until(() => steady(a, b) && childOf(a) !== c, 10_000)).toBe(true);
    });
  }
  it('saw both a won and a lost IKE rekey collision across the seeds', () => {
    expect(ikeOutcomes).toEqual(new Set(['won-collision', 'lost-collision']));
  });
});

describe('deletes', () => {
  it('deletes a CHILD SA from the initiator: both kernels drop it, the IKE SA stays', async () => {
    const { sim, a, b } = await up(400, { children: 2 });
    a.engine.deleteChild(ikeOf(a), childOf(a));
    expect(await sim.until(() => installedChildren(a).length === 1 && installedChildren(b).length === 1, 10_000)).toBe(
      true,
    );
    await sim.run(100);
    expect(verifyPairing(a.host.kernel, b.host.kernel)).toEqual([]);
    expect(kernelCounts(a)).toEqual({ in: 1, out: 1, policies: 3 });
    expect(established(a)).toHaveLength(1);
  });

  it('deletes a CHILD SA from the responder', async () => {
    const { sim, a, b } = await up(401, { children: 2 });
    b.engine.deleteChild(ikeOf(b), childOf(b));
    expect(await sim.until(() => installedChildren(a).length === 1 && installedChildren(b).length === 1, 10_000)).toBe(
      true,
    );
    await sim.run(100);
    expect(kernelCounts(b)).toEqual({ in: 1, out: 1, policies: 3 });
  });

  it('handles simultaneous deletes of the same CHILD SA', async () => {
    const { sim, a, b } = await up(402, { sim: { conditions: { delayMs: 20 } } });
    a.engine.deleteChild(ikeOf(a), childOf(a));
    b.engine.deleteChild(ikeOf(b), childOf(b));
    await sim.run(5_000);
    expect(kernelEmpty(a) && kernelEmpty(b)).toBe(true);
    expect(established(a)).toHaveLength(1);
  });

  it('deletes the IKE SA with everything under it (from either side)', async () => {
    for (const [seed, who] of [
      [403, 'a'],
      [404, 'b'],
    ] as const) {
      const { sim, a, b } = await up(seed, { children: 2 });
      const n = who === 'a' ? a : b;
      n.engine.deleteIke(ikeOf(n));
      expect(await sim.until(() => a.engine.ikeSas().length === 0 && b.engine.ikeSas().length === 0, 10_000)).toBe(
        true,
      );
      await sim.run(100);
      expect(kernelEmpty(a) && kernelEmpty(b)).toBe(true);
    }
  });

  it('the peer deletes the IKE SA: a start-mode tunnel is negotiated again after the restart delay', async () => {
    const { sim, a, b } = await up(406);
    const old = ikeOf(a).localSpi;
    b.engine.deleteIke(ikeOf(b));
    expect(await sim.until(() => a.engine.ikeSas().length === 0, 10_000)).toBe(true);
    const gone = sim.clock.now();
    expect(await sim.until(() => steady(a, b, 1), 20_000)).toBe(true);
    expect(sim.clock.now() - gone).toBeGreaterThanOrEqual(1900);
    expect(ikeOf(a).localSpi).not.toEqual(old);
    expect(verifyPairing(a.host.kernel, b.host.kernel)).toEqual([]);
  });

  it('the peer deletes the IKE SA of a trap-mode tunnel: it stays down until traffic asks for it', async () => {
    const { sim, a, b } = await up(407, { startAction: 'trap' });
    b.engine.deleteIke(ikeOf(b));
    expect(await sim.until(() => a.engine.ikeSas().length === 0 && b.engine.ikeSas().length === 0, 10_000)).toBe(true);
    await sim.run(30_000);
    expect(a.engine.ikeSas()).toHaveLength(0);
    expect(kernelEmpty(a) && kernelEmpty(b)).toBe(true);
  });

  it('terminate() deletes every IKE SA of a peer', async () => {
    const { sim, a, b } = await up(405);
    a.engine.terminate('a-b');
    expect(await sim.until(() => a.engine.ikeSas().length === 0 && b.engine.ikeSas().length === 0, 10_000)).toBe(true);
    await sim.run(100);
    expect(kernelEmpty(a) && kernelEmpty(b)).toBe(true);
  });
});

describe('liveness (DPD) and restarts', () => {
  it('answers liveness checks and keeps the SA while the peer lives', async () => {
    const { sim, a, b } = await up(500, { dpdMs: 10_000 });
    await sim.run(120_000);
    expect(steady(a, b)).toBe(true);
    const checks = sim.world.network
      .captured({ from: SITE_A.address })
      .filter((p) => headerOf(p.bytes).exchange === ExchangeType.INFORMATIONAL).length;
    expect(checks).toBeGreaterThanOrEqual(5);
  });

  it('detects a dead peer and clears everything (dpd action clear)', async () => {
    const { sim, a } = await up(501, { dpdMs: 10_000, dpdAction: 'clear', retransmit: { timeoutMs: 1000, tries: 3 } });
    sim.world.network.down(SITE_B.address);
    await sim.run(60_000);
    expect(a.events.some((e) => e.type === 'peer-dead')).toBe(true);
    expect(a.engine.ikeSas()).toHaveLength(0);
    expect(kernelEmpty(a)).toBe(true);
    await sim.run(120_000);
    expect(a.engine.ikeSas()).toHaveLength(0); // clear does not come back
  });

  it('restarts after a dead peer comes back (dpd action restart)', async () => {
    const { sim, a, b } = await up(502, {
      dpdMs: 10_000,
      dpdAction: 'restart',
      retransmit: { timeoutMs: 1000, tries: 3 },
    });
    sim.world.network.down(SITE_B.address);
    await sim.run(40_000);
    expect(a.events.some((e) => e.type === 'peer-dead')).toBe(true);
    sim.world.network.up(SITE_B.address);
    // b still holds its old SA (it never noticed a was unreachable); a's new one carries INITIAL_CONTACT.
    expect(await sim.until(() => steady(a, b), 300_000), sim.world.report()).toBe(true);
    expect(verifyPairing(a.host.kernel, b.host.kernel)).toEqual([]);
  });

  it('a restarted peer (fresh engine and kernel) replaces the stale SAs via INITIAL_CONTACT', async () => {
    const sim = new Sim(503, { conditions: { delayMs: 5 } });
    const a = sim.add(SITE_A, [peerConfig(SITE_A, SITE_B, { startAction: 'none' })]);
    const b = sim.add(SITE_B, [peerConfig(SITE_B, SITE_A)]);
    b.engine.initiate(b.configs.configs[0]!);
    expect(await sim.until(() => steady(a, b), 10_000)).toBe(true);
    const stale = ikeOf(a);
    // b "crashes": its engine stops without a word and its kernel state is gone.
    b.engine.shutdown();
    await sim.run(100);
    const engine2 = sim.restart('b');
    engine2.initiate(b.configs.configs[0]!);
    expect(
      await sim.until(
        () => established(a).length === 1 && ikeOf(a) !== stale && installedChildren(a).length === 1,
        10_000,
      ),
      sim.world.report(),
    ).toBe(true);
    // The stale SA keeps its kernel SAs for a grace period (the restarted peer may still send on them), then goes.
    await sim.run(100);
    expect(stale.state).toBe('rekeyed');
    await sim.run(3_000);
    expect(stale.state).toBe('destroyed');
    expect(verifyPairing(a.host.kernel, b.host.kernel)).toEqual([]);
  });
});

describe('both ends initiating (a mesh starts every tunnel from both sides)', () => {
  for (const seed of [700, 701, 702, 703]) {
    it(`ends with one IKE SA and one CHILD SA per side, the one the lower address initiated (seed ${seed})`, async () => {
      const sim = new Sim(seed, { conditions: { delayMs: 15, jitterMs: 10 } });
      const a = sim.add(SITE_A, [peerConfig(SITE_A, SITE_B)]);
      const b = sim.add(SITE_B, [peerConfig(SITE_B, SITE_A)]);
      a.engine.initiate(a.configs.configs[0]!);
      b.engine.initiate(b.configs.configs[0]!);
      expect(await sim.until(() => steady(a, b), 30_000), sim.world.report()).toBe(true);
      await sim.run(5_000);
      expect(steady(a, b)).toBe(true);
      expect(verifyPairing(a.host.kernel, b.host.kernel)).toEqual([]);
      expect(kernelCounts(a)).toEqual({ in: 1, out: 1, policies: 3 });
      // 192.0.2.1 (a) < 203.0.113.2 (b): a's IKE SA is the one kept.
      expect(ikeOf(a).originalInitiator).toBe(true);
      expect(ikeOf(b).originalInitiator).toBe(false);
    });
  }
});

describe('windows larger than one (SET_WINDOW_SIZE)', () => {
  it('runs two exchanges at once when both sides announce a window of 2', async () => {
    const { sim, a, b } = await up(600, { windowSize: 2, children: 3 });
    const ike = ikeOf(a);
    const [c1, c2] = installedChildren(a);
    a.engine.rekeyChild(ike, c1!);
    a.engine.rekeyChild(ike, c2!);
    await sim.run(1);
    expect(ike.tm.pendingRequests).toBe(2);
    expect(
      await sim.until(
        () => steady(a, b, 3) && !installedChildren(a).includes(c1!) && !installedChildren(a).includes(c2!),
        10_000,
      ),
    ).toBe(true);
    expect(verifyPairing(a.host.kernel, b.host.kernel)).toEqual([]);
  });

  it('keeps one exchange at a time with the default window', async () => {
    const { sim, a } = await up(601, { children: 2 });
    const ike = ikeOf(a);
    const [c1, c2] = installedChildren(a);
    a.engine.rekeyChild(ike, c1!);
    a.engine.rekeyChild(ike, c2!);
    await sim.run(1);
    expect(ike.tm.pendingRequests).toBe(1);
  });
});
