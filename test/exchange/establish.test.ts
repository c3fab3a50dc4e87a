import { describe, expect, it } from 'vitest';
import { verifyPairing } from '../sim/kernel.js';
import { established, installedChildren, pair } from './fixtures.js';

describe('IKE_SA_INIT + IKE_AUTH between two engines', () => {
  it('establishes an IKE SA and a CHILD SA with matching kernel state', async () => {
    const { sim, a, b, configA } = pair(1);
    a.engine.initiate(configA);
    const ok = await sim.until(() => installedChildren(a).length === 1 && installedChildren(b).length === 1, 10_000);
    expect(ok, sim.world.report()).toBe(true);
    expect(established(a)).toHaveLength(1);
    expect(established(b)).toHaveLength(1);
    expect(verifyPairing(a.host.kernel, b.host.kernel)).toEqual([]);
    const ca = installedChildren(a)[0]!;
    const cb = installedChildren(b)[0]!;
    expect(ca.spiIn).toBe(cb.spiOut);
    expect(ca.spiOut).toBe(cb.spiIn);
    expect(a.events.map((e) => e.type)).toEqual(['ike-established', 'child-installed']);
  });
});
