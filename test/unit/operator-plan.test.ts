import { describe, expect, it } from 'vitest';
import { parseTunnelSpec } from '../../src/api/index.js';
import { parseOperatorArgs } from '../../src/cli/operator.js';
import {
  acceptTunnel,
  electGateways,
  findOverlaps,
  meshTunnels,
  type NodeInfo,
  nodeConfigSpec,
  renderNodeTunnel,
  reqidFor,
  tunnelStatus,
} from '../../src/operator/plan.js';
import { type QueueClock, WorkQueue } from '../../src/operator/queue.js';

const spec = {
  local: { subnets: ['198.18.1.0/24'], nodeSelector: { zone: 'a' } },
  remote: { address: '203.0.113.2', subnets: ['198.18.2.0/24'] },
  auth: { psk: { secretRef: { name: 'psk' } } },
};
const node = (name: string, alive = true, labels: Record<string, string> = { zone: 'a' }): NodeInfo => ({
  name,
  labels,
  alive,
  address: '192.0.2.10',
});

describe('acceptTunnel', () => {
  it('accepts a valid spec whose Secret has the key', () => {
    const a = acceptTunnel('ns', spec, () => ({ exists: true, keys: ['psk'] }));
    expect(a.ok).toBe(true);
  });
  it('turns a missing Secret, a missing key and an invalid spec into problems', () => {
    const missing = acceptTunnel('ns', spec, () => ({ exists: false, keys: [] }));
    expect(missing).toMatchObject({ ok: false, problem: { reason: 'SecretNotFound' } });
    const nokey = acceptTunnel('ns', spec, () => ({ exists: true, keys: ['other'] }));
    expect(nokey).toMatchObject({ ok: false, problem: { reason: 'SecretKeyNotFound' } });
    const bad = acceptTunnel('ns', { ...spec, natt: 'sometimes' }, () => ({ exists: true, keys: ['psk'] }));
    expect(bad).toMatchObject({ ok: false, problem: { reason: 'InvalidSpec' } });
    if (!bad.ok) expect(bad.problem.message).toContain('spec.natt');
  });
});

describe('electGateways', () => {
  it('puts the tunnels of one floating address on one node, also when they sat on two, and moves them together', () => {
    const nodes = [node('n1'), node('n2')];
    const g = 'floating:192.0.2.10';
    const fresh = electGateways(
      [
        { key: 'm/corp-b', nodeSelector: {}, group: g },
        { key: 'm/corp-c', nodeSelector: {}, group: g },
        { key: 'm/other', nodeSelector: {} },
      ],
      nodes,
    );
    expect(fresh.get('m/corp-b')).toEqual(fresh.get('m/corp-c'));
    expect(fresh.get('m/other')).not.toEqual(fresh.get('m/corp-b'));
    const split = electGateways(
      [
        { key: 'm/corp-b', nodeSelector: {}, group: g, current: 'n1' },
        { key: 'm/corp-c', nodeSelector: {}, group: g, current: 'n2' },
      ],
      nodes,
    );
    expect([split.get('m/corp-b'), split.get('m/corp-c')]).toEqual([{ node: 'n1' }, { node: 'n1' }]);
    const failover = electGateways(
      [
        { key: 'm/corp-b', nodeSelector: {}, group: g, current: 'n1' },
        { key: 'm/corp-c', nodeSelector: {}, group: g, current: 'n1' },
      ],
      [node('n1', false), node('n2')],
    );
    expect([failover.get('m/corp-b'), failover.get('m/corp-c')]).toEqual([{ node: 'n2' }, { node: 'n2' }]);
  });
  it('spreads tunnels evenly over live matching nodes', () => {
    const tunnels = Array.from({ length: 100 }, (_, i) => ({ key: `ns/t${i}`, nodeSelector: { zone: 'a' } }));
    const nodes = [node('n1'), node('n2'), node('n3'), node('n4', false), node('n5', true, { zone: 'b' })];
    const el = electGateways(tunnels, nodes);
    const load: Record<string, number> = {};
    for (const e of el.values()) if (e.node) load[e.node] = (load[e.node] ?? 0) + 1;
    expect(load).toEqual({ n1: 34, n2: 33, n3: 33 });
  });
  it('is sticky while the gateway lives and moves tunnels when it dies', () => {
    const nodes = [node('n1'), node('n2')];
    const first = electGateways([{ key: 'a', nodeSelector: {}, current: 'n2' }], nodes);
    expect(first.get('a')).toEqual({ node: 'n2' });
    const moved = electGateways([{ key: 'a', nodeSelector: {}, current: 'n2' }], [node('n1'), node('n2', false)]);
    expect(moved.get('a')).toEqual({ node: 'n1' });
  });
  it('explains why no gateway is eligible', () => {
    const el = electGateways([{ key: 'a', nodeSelector: { zone: 'z' } }], [node('n1')]);
    expect(el.get('a')).toMatchObject({ node: undefined, problem: { reason: 'NoEligibleGateway' } });
    const dead = electGateways([{ key: 'a', nodeSelector: {} }], [node('n1', false)]);
    const d = dead.get('a');
    expect(d && d.node === undefined && d.problem.message).toContain('none has a live agent');
  });
});

describe('findOverlaps', () => {
  it('flags the newer of two tunnels whose local and remote subnets overlap', () => {
    const o = findOverlaps([
      { key: 'ns/old', order: '1', local: ['198.18.1.0/24'], remote: ['198.18.2.0/23'] },
      { key: 'ns/new', order: '2', local: ['198.18.1.128/25'], remote: ['198.18.3.0/24'] },
      { key: 'ns/ok', order: '3', local: ['198.18.9.0/24'], remote: ['198.18.2.0/24'] },
      { key: 'ns/v6', order: '4', local: ['2001:db8:1::/48'], remote: ['2001:db8:2::/48'] },
    ]);
    expect([...o]).toEqual([['ns/new', 'ns/old']]);
  });
});

describe('node config rendering', () => {
  it('renders key references, never keys, with a stable reqid', () => {
    const s = parseTunnelSpec(spec);
    if (!s.ok) throw s.error;
    const r = renderNodeTunnel({ namespace: 'ns', name: 't', uid: 'u-1', generation: 3, spec: s.value }, node('n1'));
    expect(r).toMatchObject({
      local: { address: '192.0.2.10', subnets: ['198.18.1.0/24'] },
      auth: { psk: { key: 'ns.t.psk' } },
      reqid: reqidFor('u-1'),
      generation: 3,
    });
    expect(nodeConfigSpec('n1', [], 'sys')).toEqual({ nodeName: 'n1', tunnels: [] });
    const noAddr = renderNodeTunnel(
      { namespace: 'ns', name: 't', uid: 'u', generation: 1, spec: s.value },
      { ...node('n1'), address: undefined },
    );
    expect(noAddr).toMatchObject({ reason: 'NoLocalAddress' });
  });
});

describe('tunnelStatus', () => {
  const base = { generation: 2, configured: true, now: '2026-01-01T00:00:00Z' };
  it('reports Ready with observedGeneration once IKE and a CHILD SA are up', () => {
    const st = tunnelStatus({
      ...base,
      acceptance: { ok: true },
      election: { node: 'n1' },
      agent: {
        namespace: 'ns',
        name: 't',
        generation: 2,
        ikeSA: { state: 'Established', natDetected: false },
        childSAs: [
          {
            state: 'Installed',
            spis: { in: 'c0000001', out: 'c0000002' },
            bytesIn: 1,
            bytesOut: 2,
            packetsIn: 1,
            packetsOut: 1,
          },
        ],
      },
    });
    const ready = st.conditions?.find((c) => c.type === 'Ready');
    expect(ready).toMatchObject({ status: 'True', reason: 'TunnelUp', observedGeneration: 2 });
    expect(st.gateway).toBe('n1');
    expect(st.childSACount).toBe(1);
    // transition times survive when the status does not change
    const again = tunnelStatus({
      ...base,
      now: 'later',
      acceptance: { ok: true },
      election: { node: 'n1' },
      previous: st,
    });
    expect(again.conditions?.find((c) => c.type === 'Accepted')?.lastTransitionTime).toBe('2026-01-01T00:00:00Z');
  });
  it('waits for the agent to apply the current generation', () => {
    const st = tunnelStatus({
      ...base,
      acceptance: { ok: true },
      election: { node: 'n1' },
      agent: { namespace: 'ns', name: 't', generation: 1 },
    });
    expect(st.conditions?.find((c) => c.type === 'Ready')?.reason).toBe('WaitingForAgent');
  });
  it('turns problems into Accepted=False and Degraded=True', () => {
    const st = tunnelStatus({
      ...base,
      acceptance: { ok: false, problem: { reason: 'SecretNotFound', message: 'Secret ns/x not found' } },
    });
    expect(st.conditions?.find((c) => c.type === 'Accepted')).toMatchObject({
      status: 'False',
      reason: 'SecretNotFound',
    });
    expect(st.conditions?.find((c) => c.type === 'Degraded')?.status).toBe('True');
  });
});

describe('meshTunnels', () => {
  it('creates one tunnel from the local site to every other site', () => {
    const mesh = {
      sites: [
        { name: 'a', gateway: { address: '192.0.2.1', nodeSelector: { gw: 'x' } }, subnets: ['198.18.1.0/24'] },
        { name: 'b', gateway: { address: '198.51.100.1', nodeSelector: {} }, subnets: ['198.18.2.0/24'] },
        { name: 'c', gateway: { address: '203.0.113.1', nodeSelector: {} }, subnets: ['198.18.3.0/24'] },
      ],
    };
    const { IPsecMeshSpec } = { IPsecMeshSpec: undefined };
    void IPsecMeshSpec;
    const plan = meshTunnels('m', { ...mesh, ...defaults() } as never, 'a');
    expect(plan.ok && plan.tunnels.map((t) => [t.name, t.spec.remote.address, t.spec.local.nodeSelector])).toEqual([
      ['m-b', '198.51.100.1', { gw: 'x' }],
      ['m-c', '203.0.113.1', { gw: 'x' }],
    ]);
    expect(meshTunnels('m', { ...mesh, ...defaults() } as never, 'z')).toMatchObject({
      ok: false,
      problem: { reason: 'LocalSiteNotFound' },
    });
  });
});

function defaults() {
  const s = parseTunnelSpec(spec);
  if (!s.ok) throw s.error;
  const { auth, ike, esp, natt, startAction, failClosed } = s.value;
  return { auth, ike, esp, natt, startAction, failClosed };
}

describe('WorkQueue', () => {
  function fakeClock() {
    let now = 0;
    const timers: Array<{ at: number; fn: () => void; id: number }> = [];
    let id = 0;
    const clock: QueueClock = {
      now: () => now,
      setTimeout: (fn, ms) => {
        timers.push({ at: now + ms, fn, id: ++id });
        return id;
      },
      clearTimeout: (h) => {
        const i = timers.findIndex((t) => t.id === h);
        if (i >= 0) timers.splice(i, 1);
      },
    };
    const advance = (ms: number) => {
      now += ms;
      for (const t of timers.filter((t) => t.at <= now)) {
        timers.splice(timers.indexOf(t), 1);
        t.fn();
      }
    };
    return { clock, advance };
  }

  it('de-duplicates keys and re-queues a key added while it is processed', async () => {
    const q = new WorkQueue({ clock: fakeClock().clock });
    q.add('a');
    q.add('a');
    q.add('b');
    expect(q.length).toBe(2);
    const k = await q.get();
    expect(k).toBe('a');
    q.add('a');
    expect(q.length).toBe(1);
    q.done('a');
    expect(q.length).toBe(2);
  });

  it('backs off exponentially per key and resets on forget', () => {
    const { clock, advance } = fakeClock();
    const q = new WorkQueue({ clock, baseDelayMs: 10, maxDelayMs: 1000, qps: 1000, burst: 1000 });
    expect(q.addRateLimited('x')).toBe(10);
    expect(q.addRateLimited('x')).toBe(20);
    expect(q.addRateLimited('x')).toBe(40);
    expect(q.length).toBe(0);
    advance(10);
    expect(q.length).toBe(1);
    for (let i = 0; i < 20; i++) q.when('x');
    expect(q.when('x')).toBe(1000);
    q.forget('x');
    expect(q.when('x')).toBe(10);
  });

  it('limits the overall retry rate with a token bucket', () => {
    const { clock } = fakeClock();
    const q = new WorkQueue({ clock, baseDelayMs: 1, qps: 10, burst: 2 });
    expect(q.when('a')).toBe(1);
    expect(q.when('b')).toBe(1);
    expect(q.when('c')).toBe(100);
    expect(q.when('d')).toBe(200);
  });
});

describe('operator flags', () => {
  it('parses durations, selectors and defaults', () => {
    const a = parseOperatorArgs(['--site', 'a', '--gateway-selector=role=gw,zone=x', '--heartbeat-timeout', '5s'], {});
    expect(a).toMatchObject({
      site: 'a',
      gatewaySelector: { role: 'gw', zone: 'x' },
      heartbeatTimeoutMs: 5000,
      namespace: 'ipsec-mesh-system',
      leaderElection: true,
    });
    expect(() => parseOperatorArgs(['--resync', 'soon'])).toThrow(/not a duration/);
    expect(() => parseOperatorArgs(['--bogus', '1'])).toThrow(/unknown flag/);
  });
});
