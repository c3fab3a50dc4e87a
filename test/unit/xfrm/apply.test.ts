import { describe, expect, it } from 'vitest';
import { planXfrm, type XfrmAction } from '../../../src/xfrm/apply.js';
import * as C from '../../../src/xfrm/constants.js';
import type { XfrmPolicy, XfrmSa } from '../../../src/xfrm/messages.js';
import { DEFAULT_OWNERSHIP, isOwnedPolicy, type Ownership, ownedPolicyIndex } from '../../../src/xfrm/ownership.js';
import { blockPolicies, ikeBypassPolicies, tunnelPolicies } from '../../../src/xfrm/policies.js';
import { xfrmLifetimeCfg, xfrmLifetimeCur, xfrmSelector } from '../../../src/xfrm/structs.js';

const own = DEFAULT_OWNERSHIP;
const R = own.reqidMin + 1;

function sa(
  spi: number,
  p: Partial<{ reqid: number; key: number; soft: bigint; daddr: string; mark: { v: number; m: number } }> = {},
): XfrmSa {
  const s: XfrmSa = {
    info: {
      sel: xfrmSelector({ family: C.AF_INET }),
      id: { daddr: p.daddr ?? '192.0.2.2', spi, proto: C.IPPROTO_ESP },
      saddr: '192.0.2.1',
      lft: xfrmLifetimeCfg(p.soft !== undefined ? { softByteLimit: p.soft } : {}),
      curlft: xfrmLifetimeCur(),
      stats: { replayWindow: 0, replay: 0, integrityFailed: 0 },
      seq: 0,
      reqid: p.reqid ?? R,
      family: C.AF_INET,
      mode: C.XFRM_MODE_TUNNEL,
      replayWindow: 32,
      flags: 0,
    },
    aead: { name: 'rfc4106(gcm(aes))', key: Buffer.alloc(20, p.key ?? 1), icvLen: 128 },
  };
  if (p.mark) s.mark = p.mark;
  return s;
}

const tun = (reqid = R, remote = '198.18.2.0/24') =>
  tunnelPolicies({
    localSubnet: '198.18.1.0/24',
    remoteSubnet: remote,
    localAddress: '192.0.2.1',
    remoteAddress: '192.0.2.2',
    reqid,
  });

/** What the kernel reports back: same objects plus kernel-filled counters/index. */
function asKernel<T extends XfrmSa | XfrmPolicy>(x: T, index = 0): T {
  const c = structuredClone(x);
  if ('tmpls' in c && c.info.index === 0) c.info.index = index;
  if ('tmpls' in c) c.info.curlft = { ...c.info.curlft, addTime: 1_700_000_000n };
  else c.info.curlft = { ...c.info.curlft, bytes: 1234n, packets: 5n };
  return c;
}

const kinds = (a: XfrmAction[]) => a.map((x) => x.kind);

describe('planXfrm (pure diff)', () => {
  it('adds everything on an empty kernel: SAs before policies', () => {
    const desired = { sas: [sa(0x1001), sa(0x1002)], policies: tun() };
    expect(kinds(planXfrm(desired, { sas: [], policies: [] }, own))).toEqual([
      'addSa',
      'addSa',
      'addPolicy',
      'addPolicy',
      'addPolicy',
    ]);
  });

  it('does nothing when the kernel already matches (kernel-filled counters, index, add time ignored)', () => {
    const desired = { sas: [sa(0x1001)], policies: [...tun(), ...ikeBypassPolicies(own)] };
    const current = {
      sas: desired.sas.map((s) => asKernel(s)),
      policies: desired.policies.map((p, i) => asKernel(p, 8 * i + p.info.dir)),
    };
    expect(planXfrm(desired, current, own)).toEqual([]);
  });

  it('IPv6 addresses compare canonically', () => {
    const p = tunnelPolicies({
      localSubnet: '2001:db8:1::/48',
      remoteSubnet: '2001:db8:2::/48',
      localAddress: '2001:db8:ff::1',
      remoteAddress: '2001:db8:ff::2',
      reqid: R,
    });
    const k = p.map((x) => asKernel(x));
    for (const x of k)
      x.info.sel.daddr = x.info.sel.daddr.toUpperCase().replace('::', ':0:0:0:0::').replace(':0::', '::');
    expect(planXfrm({ sas: [], policies: p }, { sas: [], policies: k }, own)).toEqual([]);
  });

  it('deletes extra owned state, policies before SAs, and never touches foreign state', () => {
    const foreignSa = sa(0x2001, { reqid: 7 });
    const foreignPol = tun(7, '198.18.9.0/24');
    const foreignBlock: XfrmPolicy = {
      ...blockPolicies({ localSubnet: '198.18.1.0/24', remoteSubnet: '198.18.8.0/24', slot: 3, own })[0]!,
      tmpls: [],
    };
    foreignBlock.info = { ...foreignBlock.info, index: 0x100 + foreignBlock.info.dir };
    const current = {
      sas: [asKernel(sa(0x1001)), asKernel(foreignSa)],
      policies: [...tun().map((p) => asKernel(p)), ...foreignPol.map((p) => asKernel(p)), foreignBlock],
    };
    const plan = planXfrm({ sas: [], policies: [] }, current, own);
    expect(kinds(plan)).toEqual(['deletePolicy', 'deletePolicy', 'deletePolicy', 'deleteSa']);
    const deleted = plan.flatMap((a) => (a.kind === 'deleteSa' ? [a.id.spi] : []));
    expect(deleted).toEqual([0x1001]);
    for (const a of plan) {
      if (a.kind === 'deletePolicy') expect([a.id.sel.daddr, a.id.sel.saddr]).toContain('198.18.2.0');
    }
  });

  it('replaces an SA whose keys changed (UPDSA would keep the old keys) and updates one whose lifetime changed', () => {
    const current = { sas: [asKernel(sa(0x1001)), asKernel(sa(0x1002))], policies: [] };
    const plan = planXfrm({ sas: [sa(0x1001, { key: 2 }), sa(0x1002, { soft: 4096n })], policies: [] }, current, own);
    expect(plan.map((a) => [a.kind, 'reason' in a ? a.reason : ''])).toEqual([
      ['replaceSa', 'aead'],
      ['updateSa', 'lifetime'],
    ]);
  });

  it('completes a larval SA (allocated SPI) with update, and keeps undesired larval SAs unless told otherwise', () => {
    const larval = asKernel(sa(0x1001));
    delete larval.aead;
    const other = asKernel(sa(0x1002));
    delete other.aead;
    expect(kinds(planXfrm({ sas: [sa(0x1001)], policies: [] }, { sas: [larval, other], policies: [] }, own))).toEqual([
      'updateSa',
    ]);
    expect(
      kinds(planXfrm({ sas: [], policies: [] }, { sas: [larval], policies: [] }, own, { keepLarval: false })),
    ).toEqual(['deleteSa']);
  });

  it('updates a policy whose priority or template changed, replaces one whose owned index changed', () => {
    const want = tun();
    const have = want.map((p) => asKernel(p));
    have[0]!.info.priority += 1;
    have[1]!.tmpls[0]!.saddr = '192.0.2.99';
    const plan = planXfrm({ sas: [], policies: want }, { sas: [], policies: have }, own);
    expect(plan.map((a) => [a.kind, 'reason' in a ? a.reason : ''])).toEqual([
      ['updatePolicy', 'priority'],
      ['updatePolicy', 'templates'],
    ]);
    const block = blockPolicies({ localSubnet: '198.18.1.0/24', remoteSubnet: '198.18.2.0/24', slot: 9, own });
    const moved = block.map((p) => asKernel(p));
    moved[0]!.info.index += 8;
    expect(kinds(planXfrm({ sas: [], policies: block }, { sas: [], policies: moved }, own))).toEqual(['replacePolicy']);
  });

  it('with a mark configured, only marked objects are owned and desired objects must carry it', () => {
    const marked: Ownership = { ...own, mark: { v: 0x500, m: 0xf00 } };
    const unmarked = asKernel(sa(0x1001));
    const mine = asKernel(sa(0x1002, { mark: { v: 0x500, m: 0xf00 } }));
    expect(kinds(planXfrm({ sas: [], policies: [] }, { sas: [unmarked, mine], policies: [] }, marked))).toEqual([
      'deleteSa',
    ]);
    expect(() => planXfrm({ sas: [sa(0x1003)], policies: [] }, { sas: [], policies: [] }, marked)).toThrow(/not owned/);
  });

  it('refuses to manage foreign or duplicate desired objects', () => {
    expect(() => planXfrm({ sas: [sa(1, { reqid: 5 })], policies: [] }, { sas: [], policies: [] }, own)).toThrow(
      /not owned/,
    );
    expect(() => planXfrm({ sas: [sa(1), sa(1)], policies: [] }, { sas: [], policies: [] }, own)).toThrow(/duplicate/);
  });
});

describe('policy builders', () => {
  it('owned indexes satisfy the kernel rule (index & 3) == dir and stay in range', () => {
    for (const dir of [0, 1, 2]) {
      const i = ownedPolicyIndex(own, 5, dir);
      expect(i & C.XFRM_POLICY_MAX).toBe(dir);
      expect(i).toBeGreaterThanOrEqual(own.policyIndexMin);
    }
    expect(() => ownedPolicyIndex(own, 1 << 20, 0)).toThrow(RangeError);
  });

  it('bypass < tunnel < block in kernel precedence (lower priority value wins)', () => {
    const bypass = ikeBypassPolicies(own);
    const t = tun();
    const b = blockPolicies({ localSubnet: '198.18.1.0/24', remoteSubnet: '198.18.2.0/24', slot: 8, own });
    expect(bypass).toHaveLength(8);
    expect(Math.max(...bypass.map((p) => p.info.priority))).toBeLessThan(Math.min(...t.map((p) => p.info.priority)));
    expect(Math.max(...t.map((p) => p.info.priority))).toBeLessThan(Math.min(...b.map((p) => p.info.priority)));
    for (const p of [...bypass, ...t, ...b]) expect(isOwnedPolicy(p, own)).toBe(true);
    expect(b.every((p) => p.info.action === C.XFRM_POLICY_BLOCK && p.tmpls.length === 0)).toBe(true);
    const out = bypass.find((p) => p.info.dir === C.XFRM_POLICY_OUT && p.info.sel.sport === 4500);
    expect(out?.info.sel).toMatchObject({ proto: C.IPPROTO_UDP, sportMask: 0xffff, dport: 0 });
  });

  it('tunnel templates point out local->remote and in/fwd remote->local', () => {
    const [o, i, f] = tun();
    expect(o!.tmpls[0]).toMatchObject({
      saddr: '192.0.2.1',
      id: { daddr: '192.0.2.2' },
      reqid: R,
      mode: C.XFRM_MODE_TUNNEL,
    });
    expect(i!.tmpls[0]).toMatchObject({ saddr: '192.0.2.2', id: { daddr: '192.0.2.1' } });
    expect(f!.info.dir).toBe(C.XFRM_POLICY_FWD);
    expect(i!.info.sel).toMatchObject({ saddr: '198.18.2.0', prefixlenS: 24, daddr: '198.18.1.0', prefixlenD: 24 });
  });
});
