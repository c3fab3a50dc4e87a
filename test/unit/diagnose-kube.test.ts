import { describe, expect, it } from 'vitest';
import type { TunnelView } from '../../src/agent/status.js';
import type { IPsecMeshSpec } from '../../src/api/mesh.js';
import type { NodeTunnel, NodeTunnelStatus } from '../../src/api/nodeconfig.js';
import {
  buildReport,
  compareLiveSas,
  type DiagnoseInputs,
  formatReport,
  judgeApplied,
  judgeClock,
  judgeHeartbeat,
  meshPeerSide,
  meshSpecDiff,
  type SideConfig,
  tunnelViewFromStatus,
} from '../../src/cli/diagnose-report.js';

const entry: NodeTunnel = {
  namespace: 'site-a',
  name: 'to-b',
  uid: 'u1',
  generation: 3,
  local: { address: '192.0.2.1', subnets: ['198.18.1.0/24'], id: 'a.example' },
  remote: { address: '192.0.2.2', port: 500, subnets: ['198.18.2.0/24'], id: 'b.example' },
  auth: { psk: { key: 'site-a.to-b.psk' } },
  ike: { proposals: ['aes256gcm16-prfsha384-x25519'], lifetime: '4h', dpd: { interval: '30s', action: 'restart' } },
  esp: { proposals: ['aes256gcm16-x25519'], lifetime: '1h' },
  natt: 'auto',
  startAction: 'start',
  failClosed: true,
  reqid: 7,
};

const up: NodeTunnelStatus = {
  namespace: 'site-a',
  name: 'to-b',
  generation: 3,
  ikeSA: {
    state: 'Established',
    spis: { initiator: '0102030405060708', responder: '1112131415161718' },
    algorithms: 'aes256gcm16-prfsha384-x25519',
    localAddress: '192.0.2.1:500',
    remoteAddress: '192.0.2.2:500',
    natDetected: false,
  },
  childSAs: [
    {
      name: 'to-b',
      state: 'Installed',
      spis: { in: 'c0000001', out: 'c0000002' },
      algorithms: 'aes256gcm16',
      trafficSelectors: { local: ['198.18.1.0/24'], remote: ['198.18.2.0/24'] },
      bytesIn: 100,
      bytesOut: 200,
      packetsIn: 0,
      packetsOut: 40,
    },
  ],
  mtu: { underlayMtu: 1500, innerMtu: 1438, overhead: 62, mss: 1398, clamp: 'nftables', routeMtu: true },
  encrypted: {
    status: 'True',
    reason: 'PoliciesInPlace',
    message: 'every subnet pair is covered',
    lastTransitionTime: '2030-01-01T00:00:00Z',
    checkedAt: '2030-01-01T00:00:00Z',
    restored: 0,
  },
};

const side = (o: Partial<SideConfig> = {}): SideConfig => ({
  key: 'site-a/to-b',
  localAddress: '192.0.2.1',
  remoteAddress: '192.0.2.2',
  localSubnets: ['198.18.1.0/24'],
  remoteSubnets: ['198.18.2.0/24'],
  localId: 'a.example',
  remoteId: 'b.example',
  ikeProposals: ['aes256gcm16-prfsha384-x25519'],
  espProposals: ['aes256gcm16-x25519'],
  auth: 'psk',
  pskDigest: 'd1',
  ...o,
});

const mirror = (v: TunnelView): TunnelView => ({
  ...v,
  childSAs: v.childSAs.map((c) => ({ ...c, spiIn: c.spiOut, spiOut: c.spiIn })),
});

const now = new Date('2030-01-01T00:01:00Z');

describe('IPsecNodeConfig status -> TunnelView', () => {
  it('carries state, SPIs, counters, MTU and the proof of encryption', () => {
    const v = tunnelViewFromStatus(entry, up);
    expect(v.ikeSA).toMatchObject({
      state: 'Established',
      spiI: '0102030405060708',
      spiR: '1112131415161718',
      local: '192.0.2.1:500',
      remote: '192.0.2.2:500',
    });
    expect(v.childSAs[0]).toMatchObject({
      state: 'installed',
      spiIn: 'c0000001',
      spiOut: 'c0000002',
      packetsOut: '40',
      packetsIn: '0',
      localTs: ['198.18.1.0/24'],
    });
    expect(v.mtu).toMatchObject({ underlayMtu: 1500, innerMtu: 1438, remoteSubnets: ['198.18.2.0/24'] });
    expect(v.encrypted?.reason).toBe('PoliciesInPlace');
  });

  it('turns the agent error into lastError with its explanation and falls back to the rendered addresses', () => {
    const v = tunnelViewFromStatus(entry, {
      namespace: 'site-a',
      name: 'to-b',
      generation: 3,
      ikeSA: { state: 'Connecting' },
      error: {
        reason: 'NoProposalChosen',
        message: 'The peer chose none of our IKE proposals. Mismatch: x. Fix: set spec.ike.proposals to y.',
      },
    });
    expect(v.ikeSA.lastError).toMatchObject({ code: 'NoProposalChosen' });
    expect(v.remote).toBe('192.0.2.2:500');
    expect(v.childSAs).toEqual([]);
    const r = buildReport({ tunnel: 'site-a/to-b', now, kube: { gateway: 'gw-1' }, live: v });
    const live = r.checks.find((c) => c.name === 'live SA state')!;
    expect(live.status).toBe('fail');
    expect(live.detail).toContain('The peer chose none of our IKE proposals');
    expect(live.fix).toBe('set spec.ike.proposals to y.');
  });
});

describe('Kubernetes-mode judgements', () => {
  it('heartbeat: fresh by the API server clock is ok, stale or missing fails with a fix', () => {
    const server = new Date('2030-01-01T00:00:10Z');
    const hb = (renewTime: string) => ({
      lease: 'ipsec-mesh-system/ipsec-mesh-agent-gw-1',
      renewTime,
      durationSeconds: 15,
    });
    expect(judgeHeartbeat(hb('2030-01-01T00:00:01.123456Z'), server, 'gw-1').status).toBe('ok');
    const stale = judgeHeartbeat(hb('2029-12-31T23:59:50Z'), server, 'gw-1');
    expect(stale.status).toBe('fail');
    expect(stale.detail).toContain('renewed 20 s ago');
    expect(stale.fix).toContain('gw-1');
    expect(judgeHeartbeat({ lease: 'x', error: 'not found' }, server, 'gw-1').status).toBe('warn');
    expect(judgeHeartbeat(undefined, server, undefined).status).toBe('n/a');
  });

  it('clock: warns beyond 30 s between this machine and the API server', () => {
    const server = new Date('2030-01-01T00:00:00Z');
    expect(judgeClock(new Date('2030-01-01T00:00:20Z'), server)).toMatchObject({ status: 'ok' });
    const w = judgeClock(new Date('2029-12-31T23:59:00Z'), server);
    expect(w).toMatchObject({ status: 'warn' });
    expect(w.detail).toContain('60 s behind');
  });

  it('agent applied: warns while the agent runs an older generation', () => {
    expect(judgeApplied({ rendered: 4, applied: 4 }, 'gw-1').status).toBe('ok');
    const old = judgeApplied({ rendered: 5, applied: 4 }, 'gw-1');
    expect(old.status).toBe('warn');
    expect(old.detail).toContain('generation 4, the newest is 5');
    expect(judgeApplied({ rendered: 5 }, 'gw-1').status).toBe('warn');
  });

  it('live SPIs: the same IKE SPIs and mirrored CHILD SPIs, or which ones differ', () => {
    const ours = tunnelViewFromStatus(entry, up);
    expect(compareLiveSas(ours, mirror(ours))).toMatchObject({ same: true });
    expect(compareLiveSas(ours, mirror(ours)).detail).toContain('both sides see the same SAs');
    const notMirrored = compareLiveSas(ours, ours);
    expect(notMirrored.same).toBe(false);
    expect(notMirrored.detail).toContain('our CHILD SA c0000001_i c0000002_o has no mirror on the peer');
    const other = mirror(ours);
    other.ikeSA = { ...other.ikeSA, spiR: 'ffffffffffffffff' };
    expect(compareLiveSas(ours, other).detail).toContain('IKE SPIs differ');
  });

  it('mesh specs: names the differing top-level fields and sites, ignoring key order', () => {
    const a = { sites: [{ name: 'a', subnets: ['198.18.1.0/24'] }], esp: { proposals: ['x'], lifetime: '1h' } };
    const b = { esp: { lifetime: '1h', proposals: ['x'] }, sites: [{ subnets: ['198.18.1.0/24'], name: 'a' }] };
    expect(meshSpecDiff(a, b)).toEqual([]);
    expect(
      meshSpecDiff(a, {
        esp: { proposals: ['y'] },
        sites: [
          { name: 'a', subnets: ['198.18.9.0/24'] },
          { name: 'c', subnets: [] },
        ],
      }),
    ).toEqual(['spec.esp', 'site a', 'site c only in the peer cluster']);
  });

  it('kernel support is n/a from afar, but fails when the agent says the kernel rejected an algorithm', () => {
    const v = tunnelViewFromStatus(entry, {
      ...up,
      ikeSA: { state: 'Established' },
      childSAs: [],
      error: {
        reason: 'KernelRejected',
        message: 'the kernel rejected the negotiated CHILD SA (EINVAL). Fix: load the gcm module.',
      },
    });
    const ks = (live: TunnelView) =>
      buildReport({ tunnel: 't', now, kube: { gateway: 'gw-1' }, live }).checks.find(
        (c) => c.name === 'kernel support for the ESP algorithms',
      )!;
    expect(ks(v)).toMatchObject({ status: 'fail', fix: 'load the gcm module.' });
    expect(ks(tunnelViewFromStatus(entry, up))).toMatchObject({ status: 'n/a' });
    expect(ks(tunnelViewFromStatus(entry, up)).detail).toContain('run ipsec-mesh diagnose on gw-1');
  });

  it('a tunnel that could not be read gives one check, and the exit status follows it', () => {
    const r = buildReport({
      tunnel: 'site-a/nope',
      now,
      kube: { problem: { status: 'fail', detail: 'IPsecTunnel site-a/nope not found', fix: 'check the name' } },
    });
    expect(r.checks).toHaveLength(1);
    expect(r.overall).toBe('fail');
    expect(formatReport(r)).toContain('fix: check the name');
  });

  it('a healthy Kubernetes report: every check ok or n/a, both sides the same', () => {
    const live = tunnelViewFromStatus(entry, { ...up, childSAs: [{ ...up.childSAs![0]!, packetsIn: 35 }] });
    const i: DiagnoseInputs = {
      tunnel: 'site-a/to-b',
      now,
      kube: {
        gateway: 'gw-1',
        conditions: [{ type: 'Ready', status: 'True', reason: 'Ready' }],
        heartbeat: { lease: 'ns/l', renewTime: '2030-01-01T00:00:58.000000Z', durationSeconds: 15 },
        serverTime: new Date('2030-01-01T00:01:01Z'),
        applied: { rendered: 3, applied: 3 },
      },
      live,
      peerLive: mirror(live),
      config: side(),
      peer: side({
        key: 'site-b/to-a',
        localAddress: '192.0.2.2',
        remoteAddress: '192.0.2.1',
        localSubnets: ['198.18.2.0/24'],
        remoteSubnets: ['198.18.1.0/24'],
        localId: 'b.example',
        remoteId: 'a.example',
      }),
    };
    const r = buildReport(i);
    expect(r.overall, formatReport(r)).toBe('ok');
    expect(r.checks.map((c) => c.name)).toContain('proof of encryption');
    expect(r.checks.find((c) => c.name === 'both sides agree')?.detail).toContain('same PSK');
    // Without the peer's key the PSKs are n/a, not a failure.
    const noKey = buildReport({ ...i, peer: { ...i.peer!, pskDigest: undefined }, peerNote: 'derived' });
    const agree = noKey.checks.find((c) => c.name === 'both sides agree')!;
    expect(agree.status).toBe('ok');
    expect(agree.detail).toContain("PSKs not compared (n/a): the peer's key cannot be read from here");
  });
});

describe('mesh-derived peer side', () => {
  const spec = {
    sites: [
      {
        name: 'a',
        gateway: { address: '192.0.2.1', nodeSelector: {}, floating: false },
        subnets: ['198.18.1.0/24'],
        id: 'a.example',
      },
      {
        name: 'b',
        gateway: { address: '192.0.2.2', nodeSelector: {}, floating: false },
        subnets: ['198.18.2.0/24'],
        id: 'b.example',
      },
      { name: 'c', gateway: { address: '192.0.2.3', nodeSelector: {}, floating: false }, subnets: ['198.18.3.0/24'] },
    ],
    auth: { psk: { secretRef: { name: 'mesh-psk', key: 'psk' } } },
    ike: { proposals: ['aes256gcm16-prfsha384-x25519'], lifetime: '4h', dpd: { interval: '30s', action: 'restart' } },
    esp: { proposals: ['aes256gcm16-x25519'], lifetime: '1h' },
    natt: 'auto',
    startAction: 'start',
    failClosed: true,
  } as IPsecMeshSpec;

  it("is what site b's operator renders towards our site, found by our subnets", () => {
    const d = meshPeerSide('m1', spec, 'b', { localAddress: '192.0.2.1', localSubnets: ['198.18.1.0/24'] });
    if ('error' in d) throw new Error(d.error);
    expect(d.ourSite).toBe('a');
    expect(d.side).toMatchObject({
      key: 'b: m1-a',
      localAddress: '192.0.2.2',
      remoteAddress: '192.0.2.1',
      localSubnets: ['198.18.2.0/24'],
      remoteSubnets: ['198.18.1.0/24'],
      localId: 'b.example',
      remoteId: 'a.example',
    });
    expect(d.side.pskDigest).toBeUndefined();
    const r = buildReport({ tunnel: 'mesh/m1-b', now, kube: {}, config: side(), peer: d.side });
    expect(r.checks.find((c) => c.name === 'both sides agree')).toMatchObject({ status: 'ok' });
    // A peer site that renders other subnets does not mirror ours.
    const moved = meshPeerSide(
      'm1',
      { ...spec, sites: spec.sites.map((s) => (s.name === 'b' ? { ...s, subnets: ['198.18.20.0/24'] } : s)) },
      'b',
      { localAddress: '192.0.2.1', localSubnets: ['198.18.1.0/24'] },
    );
    if ('error' in moved) throw new Error(moved.error);
    const r2 = buildReport({ tunnel: 'mesh/m1-b', now, kube: {}, config: side(), peer: moved.side });
    expect(r2.checks.find((c) => c.name === 'both sides agree')?.detail).toMatch(/subnets do not mirror/);
  });

  it('says so when no site has our subnets or address', () => {
    const d = meshPeerSide('m1', spec, 'b', { localAddress: '203.0.113.9', localSubnets: ['198.18.99.0/24'] });
    expect(d).toEqual({ error: 'no site of IPsecMesh m1 has our subnets 198.18.99.0/24' });
  });
});
