/**
 * Proof of encryption (src/agent/encryption-check.ts): the pure comparison of the engine's policies with a kernel
 * dump, and the check's state changes (False with a reason and a restore, then True) against a fake kernel.
 */
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { checkPolicies, EncryptionCheck, type ExpectedChild } from '../../src/agent/encryption-check.js';
import { kernelSelector } from '../../src/agent/xfrm-kernel.js';
import type { KernelPolicy, KernelSelector } from '../../src/ike/ports.js';
import {
  IPPROTO_ESP,
  XFRM_MODE_TUNNEL,
  XFRM_POLICY_ALLOW,
  XFRM_POLICY_BLOCK,
  XFRM_POLICY_FWD,
  XFRM_POLICY_IN,
  XFRM_POLICY_OUT,
} from '../../src/xfrm/constants.js';
import type { XfrmPolicy } from '../../src/xfrm/messages.js';
import { xfrmUserpolicyInfo } from '../../src/xfrm/structs.js';

const net = (a: string, b: string): KernelSelector => ({
  family: 4,
  startAddress: a,
  endAddress: b,
  protocol: 0,
  startPort: 0,
  endPort: 0xffff,
});
const L = net('198.18.1.0', '198.18.1.255');
const R = net('198.18.2.0', '198.18.2.255');
const base = { reqid: 7, mode: 'tunnel' as const, local: L, remote: R };
const EXPECTED: KernelPolicy[] = [
  { ...base, direction: 'out', source: '192.0.2.1', destination: '192.0.2.2' },
  { ...base, direction: 'in', source: '192.0.2.2', destination: '192.0.2.1' },
  { ...base, direction: 'fwd', source: '192.0.2.2', destination: '192.0.2.1' },
];
const DIR = { out: XFRM_POLICY_OUT, in: XFRM_POLICY_IN, fwd: XFRM_POLICY_FWD };

function kernelPolicy(p: KernelPolicy, o: { reqid?: number; action?: number; priority?: number } = {}): XfrmPolicy {
  const [s, d] = p.direction === 'out' ? [p.local, p.remote] : [p.remote, p.local];
  return {
    info: xfrmUserpolicyInfo({
      sel: kernelSelector(s, d),
      dir: DIR[p.direction],
      priority: o.priority ?? 1000,
      action: o.action ?? XFRM_POLICY_ALLOW,
    }),
    tmpls:
      o.action === XFRM_POLICY_BLOCK
        ? []
        : [
            {
              id: { daddr: p.destination, spi: 0, proto: IPPROTO_ESP },
              family: 2,
              saddr: p.source,
              reqid: o.reqid ?? p.reqid,
              mode: XFRM_MODE_TUNNEL,
              share: 0,
              optional: 0,
              aalgos: 0xffffffff,
              ealgos: 0xffffffff,
              calgos: 0xffffffff,
            },
          ],
  };
}

describe('checkPolicies', () => {
  it('all three in place: no problem', () => {
    expect(
      checkPolicies(
        EXPECTED,
        EXPECTED.map((p) => kernelPolicy(p)),
      ),
    ).toEqual([]);
  });

  it('out policy deleted by hand: PolicyMissing', () => {
    const k = EXPECTED.slice(1).map((p) => kernelPolicy(p));
    expect(checkPolicies(EXPECTED, k).map((p) => [p.reason, p.policy.direction, p.detail])).toEqual([
      ['PolicyMissing', 'out', 'no out 198.18.1.0-198.18.1.255 -> 198.18.2.0-198.18.2.255 policy'],
    ]);
  });

  it('a block policy or another reqid in its place: PolicyMismatch', () => {
    const k = [
      kernelPolicy(EXPECTED[0]!, { action: XFRM_POLICY_BLOCK }),
      kernelPolicy(EXPECTED[1]!, { reqid: 9 }),
      kernelPolicy(EXPECTED[2]!),
    ];
    expect(checkPolicies(EXPECTED, k).map((p) => [p.reason, p.policy.direction])).toEqual([
      ['PolicyMismatch', 'out'],
      ['PolicyMismatch', 'in'],
    ]);
  });

  it('a wider allow policy without template in front: PolicyShadowed', () => {
    const wide = kernelPolicy(
      { ...EXPECTED[0]!, local: net('0.0.0.0', '255.255.255.255'), remote: net('198.18.0.0', '198.18.255.255') },
      { priority: 10 },
    );
    wide.tmpls = [];
    const k = [...EXPECTED.map((p) => kernelPolicy(p)), wide];
    expect(checkPolicies(EXPECTED, k).map((p) => [p.reason, p.policy.direction])).toEqual([['PolicyShadowed', 'out']]);
  });
});

describe('EncryptionCheck', () => {
  it('False with a restore when a policy is gone, True again on the next check; counters per interval', async () => {
    let kernel = EXPECTED.map((p) => kernelPolicy(p));
    const added: KernelPolicy[] = [];
    let packets = 100n;
    const results: string[] = [];
    const child: ExpectedChild = {
      tunnel: 'default/t',
      reqid: 7,
      spiOut: 0x1234,
      remoteAddress: '192.0.2.2',
      policies: EXPECTED,
    };
    const c = new EncryptionCheck({
      intervalMs: 1000,
      restore: true,
      children: () => [child],
      tunnels: () => ['default/t', 'default/idle'],
      dumpPolicies: async () => kernel,
      addPolicy: async (p) => {
        added.push(p);
        kernel = [...kernel, kernelPolicy(p)];
      },
      outPackets: async () => packets,
      logger: pino({ level: 'silent' }),
      wallNow: () => 0,
      onResult: (t, v, r) => results.push(`${t} ${v.status} ${r}`),
    });
    await c.check();
    expect(c.view('default/t')).toMatchObject({ status: 'True', reason: 'PoliciesInPlace', restored: 0 });
    expect(c.view('default/idle')).toMatchObject({ status: 'Unknown', reason: 'NoChildSa' });
    kernel = kernel.filter((p) => p.info.dir !== XFRM_POLICY_OUT);
    packets = 150n;
    await c.check();
    expect(c.view('default/t')).toMatchObject({
      status: 'False',
      reason: 'PolicyMissing',
      restored: 1,
      packetsOutDelta: 50,
    });
    expect(c.view('default/t')?.message).toContain('restored 1 of 1');
    expect(added.map((p) => p.direction)).toEqual(['out']);
    await c.check();
    expect(c.view('default/t')).toMatchObject({ status: 'True', restored: 1, packetsOutDelta: 0 });
    expect(results).toEqual([
      'default/t True 0',
      'default/idle Unknown 0',
      'default/t False 1',
      'default/idle Unknown 0',
      'default/t True 0',
      'default/idle Unknown 0',
    ]);
  });

  it('outbound SA gone while policies stay: False OutboundSaMissing (no restore of SAs: that is the engine’s job)', async () => {
    const c = new EncryptionCheck({
      intervalMs: 1000,
      restore: true,
      children: () => [{ tunnel: 'default/t', reqid: 7, spiOut: 1, remoteAddress: '192.0.2.2', policies: EXPECTED }],
      tunnels: () => ['default/t'],
      dumpPolicies: async () => EXPECTED.map((p) => kernelPolicy(p)),
      addPolicy: async () => {},
      outPackets: async () => undefined,
      logger: pino({ level: 'silent' }),
      wallNow: () => 0,
    });
    await c.check();
    expect(c.view('default/t')).toMatchObject({ status: 'False', reason: 'OutboundSaMissing' });
  });
});
