/**
 * Route MTU and MSS clamping (src/agent/mtu-dataplane.ts) against the host kernel's nftables and routing in a fresh
 * namespace: the nftables path the product prefers on real hosts (the UML tests exercise the iptables-legacy
 * fallback). Needs root and nftables (scripts/install-deps.sh).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MtuDataplane, type MtuEntry, type Runner, spawnRunner } from '../../src/agent/mtu-dataplane.js';
import { cleanupStale, deleteNamespace, requireRoot, sh } from '../support/netns.js';

const ns = `imtu${process.pid % 100000}`;
const inNs: Runner = (cmd, args, input) => spawnRunner('ip', ['netns', 'exec', ns, cmd, ...args], input);
const E: MtuEntry = { tunnel: 'default/a-b', subnet: '198.18.2.0/24', family: 4, innerMtu: 1246, mss: 1206 };
const E2: MtuEntry = { tunnel: 'default/a-c', subnet: '198.18.3.0/24', family: 4, innerMtu: 1438, mss: 1398 };

describe('MtuDataplane on the host kernel (nftables)', () => {
  beforeAll(() => {
    requireRoot();
    cleanupStale('imtu');
    sh('ip', ['netns', 'add', ns]);
    sh('ip', ['-n', ns, 'link', 'add', 'u0', 'type', 'veth', 'peer', 'name', 'u1']);
    sh('ip', ['-n', ns, 'link', 'set', 'u0', 'up']);
    sh('ip', ['-n', ns, 'link', 'set', 'u1', 'up']);
    sh('ip', ['-n', ns, 'addr', 'add', '192.0.2.1/24', 'dev', 'u0']);
    // One remote subnet has a route of its own (to be restored), the other goes by the default route.
    sh('ip', ['-n', ns, 'route', 'add', '198.18.2.0/24', 'via', '192.0.2.2', 'metric', '5']);
    sh('ip', ['-n', ns, 'route', 'add', 'default', 'via', '192.0.2.9']);
  });
  afterAll(() => deleteNamespace(ns));

  it('installs the clamping table and route MTUs, then removes them and restores the route', async () => {
    const d = new MtuDataplane({ run: inNs });
    const r = await d.apply([E, E2]);
    expect(r).toEqual({ backend: 'nftables', routeErrors: [] });
    const table = sh('ip', ['netns', 'exec', ns, 'nft', 'list', 'table', 'inet', 'ipsec_mesh_mss']);
    expect(table).toContain('ip daddr 198.18.2.0/24 tcp flags syn / syn,rst tcp option maxseg size > 1206');
    expect(table).toContain('ip saddr 198.18.3.0/24 tcp flags syn / syn,rst tcp option maxseg size > 1398');
    expect(sh('ip', ['-n', ns, 'route', 'show', '198.18.2.0/24']).trim()).toBe(
      '198.18.2.0/24 via 192.0.2.2 dev u0 proto 157 metric 5 mtu lock 1246',
    );
    expect(sh('ip', ['-n', ns, 'route', 'show', '198.18.3.0/24']).trim()).toBe(
      '198.18.3.0/24 via 192.0.2.9 dev u0 proto 157 mtu lock 1438',
    );
    // One tunnel goes: its rules and route go, the other stays.
    await d.apply([E2]);
    expect(sh('ip', ['-n', ns, 'route', 'show', '198.18.2.0/24']).trim()).toBe(
      '198.18.2.0/24 via 192.0.2.2 dev u0 metric 5',
    );
    expect(sh('ip', ['netns', 'exec', ns, 'nft', 'list', 'table', 'inet', 'ipsec_mesh_mss'])).not.toContain(
      '198.18.2.0',
    );
    await d.apply([]);
    expect(sh('ip', ['-n', ns, 'route', 'show', '198.18.3.0/24']).trim()).toBe('');
    expect(sh('ip', ['netns', 'exec', ns, 'nft', 'list', 'tables']).trim()).toBe('');
  });
});
