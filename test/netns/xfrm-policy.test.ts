/**
 * src/xfrm against the host kernel (which has XFRM policies but no ESP): every test makes its own network namespaces
 * and removes them afterwards, also on failure. Needs root and iproute2 (scripts/install-deps.sh); fails otherwise.
 */
import { execFileSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import type { ApplyResult, XfrmAction } from '../../src/xfrm/apply.js';
import * as C from '../../src/xfrm/constants.js';
import type { XfrmPolicy } from '../../src/xfrm/messages.js';
import { DEFAULT_OWNERSHIP } from '../../src/xfrm/ownership.js';
import { blockPolicies, ikeBypassPolicies, tunnelPolicies } from '../../src/xfrm/policies.js';
import { xfrmLifetimeCfg, xfrmLifetimeCur, xfrmSelector } from '../../src/xfrm/structs.js';
import { NsWorker } from '../uml/support/ns.js';
import { type IpPolicy, parseIpXfrmPolicies } from './ip-xfrm.js';

const own = DEFAULT_OWNERSHIP;
const R = own.reqidMin + 10;
let seq = 0;
const made: { ns: string[]; workers: NsWorker[] } = { ns: [], workers: [] };

function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8' });
}

async function netns(): Promise<{ ns: string; w: NsWorker }> {
  const ns = `ipsecmesh-x-${process.pid}-${++seq}`;
  ip('netns', 'add', ns);
  made.ns.push(ns);
  ip('-n', ns, 'link', 'set', 'lo', 'up');
  const w = new NsWorker(ns);
  made.workers.push(w);
  await w.ready;
  return { ns, w };
}

afterEach(async () => {
  await Promise.all(made.workers.splice(0).map((w) => w.stop()));
  for (const ns of made.ns.splice(0)) {
    try {
      ip('netns', 'del', ns);
    } catch {
      // already gone
    }
  }
});

const desiredPolicies = (): XfrmPolicy[] => [
  ...tunnelPolicies({
    localSubnet: '198.18.1.0/24',
    remoteSubnet: '198.18.2.0/24',
    localAddress: '192.0.2.1',
    remoteAddress: '192.0.2.2',
    reqid: R,
  }),
  ...tunnelPolicies({
    localSubnet: '2001:db8:1::/48',
    remoteSubnet: '2001:db8:2::/48',
    localAddress: '2001:db8:ff::1',
    remoteAddress: '2001:db8:ff::2',
    reqid: R + 1,
  }),
  ...blockPolicies({ localSubnet: '198.18.1.0/24', remoteSubnet: '198.18.3.0/24', slot: 8, own }),
  ...ikeBypassPolicies(own),
];

const dirName = ['in', 'out', 'fwd'];
/** Our dump in the same shape as the iproute2 view. */
function fromDump(p: XfrmPolicy): IpPolicy {
  const s = p.info.sel;
  const r: IpPolicy = {
    src: `${s.saddr}/${s.prefixlenS}`,
    dst: `${s.daddr}/${s.prefixlenD}`,
    dir: dirName[p.info.dir]!,
    action: p.info.action === C.XFRM_POLICY_BLOCK ? 'block' : 'allow',
    index: p.info.index,
    priority: p.info.priority,
    tmpls: p.tmpls.map((t) => ({ src: t.saddr, dst: t.id.daddr, proto: 'esp', reqid: t.reqid, mode: 'tunnel' })),
  };
  if (s.proto === C.IPPROTO_UDP) r.proto = 'udp';
  if (s.sportMask) r.sport = s.sport;
  if (s.dportMask) r.dport = s.dport;
  return r;
}
const byKey = (a: IpPolicy, b: IpPolicy) =>
  `${a.dir}${a.src}${a.dst}${a.sport}${a.dport}`.localeCompare(`${b.dir}${b.src}${b.dst}${b.sport}${b.dport}`);

describe('xfrm policies through our netlink code (host kernel, fresh netns)', () => {
  it('installs tunnel, block and IKE bypass policies that `ip xfrm policy` and our dump both show identically', async () => {
    const { ns, w } = await netns();
    const res = await w.call<ApplyResult>('apply', { desired: { sas: [], policies: desiredPolicies() }, own });
    expect(res.errors).toEqual([]);
    expect(res.counts.addPolicy).toBe(desiredPolicies().length);
    const viaIp = parseIpXfrmPolicies(ip('-n', ns, '-s', 'xfrm', 'policy')).sort(byKey);
    const viaUs = (await w.xfrm<XfrmPolicy[]>('dumpPolicies')).map(fromDump).sort(byKey);
    expect(viaIp).toHaveLength(desiredPolicies().length);
    expect(viaUs).toEqual(viaIp);
    // Spot checks against literal iproute2 text.
    const outV4 = viaIp.find((p) => p.dir === 'out' && p.src === '198.18.1.0/24' && p.action === 'allow');
    expect(outV4?.tmpls).toEqual([{ src: '192.0.2.1', dst: '192.0.2.2', proto: 'esp', reqid: R, mode: 'tunnel' }]);
    const in6 = viaIp.find((p) => p.dir === 'in' && p.src === '2001:db8:2::/48');
    expect(in6?.tmpls[0]).toMatchObject({ src: '2001:db8:ff::2', dst: '2001:db8:ff::1', reqid: R + 1 });
    const block = viaIp.filter((p) => p.action === 'block');
    expect(block.map((p) => p.dir).sort()).toEqual(['fwd', 'in', 'out']);
    expect(block.every((p) => p.index >= own.policyIndexMin && p.index <= own.policyIndexMax)).toBe(true);
    expect(viaIp.filter((p) => p.proto === 'udp' && (p.sport === 4500 || p.dport === 4500))).toHaveLength(4);
  });

  it('is idempotent: a second apply changes nothing; a changed priority is exactly one update', async () => {
    const { ns, w } = await netns();
    await w.call('apply', { desired: { sas: [], policies: desiredPolicies() }, own });
    const again = await w.call<ApplyResult>('apply', { desired: { sas: [], policies: desiredPolicies() }, own });
    expect(again.actions).toEqual([]);
    const changed = desiredPolicies();
    changed[0]!.info.priority = 4242;
    const third = await w.call<ApplyResult>('apply', { desired: { sas: [], policies: changed }, own });
    expect(third.actions.map((a) => a.kind)).toEqual(['updatePolicy']);
    expect(third.errors).toEqual([]);
    const viaIp = parseIpXfrmPolicies(ip('-n', ns, '-s', 'xfrm', 'policy'));
    expect(viaIp.filter((p) => p.priority === 4242)).toHaveLength(1);
  });

  it('garbage-collects owned policies nobody wants and never touches foreign ones', async () => {
    const { ns, w } = await netns();
    // Foreign: another reqid, a template-less block policy with a kernel-chosen index, one with an index outside our range.
    ip(
      '-n',
      ns,
      'xfrm',
      'policy',
      'add',
      'src',
      '198.18.5.0/24',
      'dst',
      '198.18.6.0/24',
      'dir',
      'out',
      'priority',
      '100',
      'tmpl',
      'src',
      '192.0.2.1',
      'dst',
      '192.0.2.5',
      'proto',
      'esp',
      'reqid',
      '7',
      'mode',
      'tunnel',
    );
    ip(
      '-n',
      ns,
      'xfrm',
      'policy',
      'add',
      'src',
      '198.18.5.0/24',
      'dst',
      '198.18.7.0/24',
      'dir',
      'out',
      'priority',
      '100',
      'action',
      'block',
    );
    ip(
      '-n',
      ns,
      'xfrm',
      'policy',
      'add',
      'src',
      '198.18.5.0/24',
      'dst',
      '198.18.8.0/24',
      'dir',
      'fwd',
      'index',
      '0x1002',
      'action',
      'block',
    );
    // Owned by reqid even though someone else created it: a leftover of an earlier agent run.
    ip(
      '-n',
      ns,
      'xfrm',
      'policy',
      'add',
      'src',
      '198.18.1.0/24',
      'dst',
      '198.18.9.0/24',
      'dir',
      'out',
      'tmpl',
      'src',
      '192.0.2.1',
      'dst',
      '192.0.2.9',
      'proto',
      'esp',
      'reqid',
      String(own.reqidMin + 99),
      'mode',
      'tunnel',
    );
    const foreignBefore = parseIpXfrmPolicies(ip('-n', ns, '-s', 'xfrm', 'policy')).filter(
      (p) => !p.dst.startsWith('198.18.9.'),
    );
    const first = await w.call<ApplyResult>('apply', { desired: { sas: [], policies: desiredPolicies() }, own });
    expect(first.counts.deletePolicy).toBe(1); // the owned leftover
    expect(parseIpXfrmPolicies(ip('-n', ns, 'xfrm', 'policy'))).toHaveLength(3 + desiredPolicies().length);
    // Start-up GC with only the v4 tunnel still wanted.
    const keep = desiredPolicies().slice(0, 3);
    const gc = await w.call<ApplyResult>('apply', { desired: { sas: [], policies: keep }, own });
    expect(gc.errors).toEqual([]);
    expect(gc.counts.deletePolicy).toBe(desiredPolicies().length - 3);
    const after = parseIpXfrmPolicies(ip('-n', ns, '-s', 'xfrm', 'policy'));
    const foreignAfter = after.filter((p) => !p.tmpls.some((t) => t.reqid === R));
    expect(foreignAfter.sort(byKey)).toEqual(foreignBefore.sort(byKey));
    expect(after.filter((p) => p.tmpls.some((t) => t.reqid === R))).toHaveLength(3);
  });

  it('swaps a subnet pair between block (tunnel down) and tunnel policies atomically, in place', async () => {
    const { ns, w } = await netns();
    const pair = { localSubnet: '198.18.1.0/24', remoteSubnet: '198.18.2.0/24' };
    const down = blockPolicies({ ...pair, slot: 9, own });
    const up = tunnelPolicies({
      ...pair,
      localAddress: '192.0.2.1',
      remoteAddress: '192.0.2.2',
      reqid: R,
      slot: { slot: 9, own },
    });
    await w.call('apply', { desired: { sas: [], policies: down }, own });
    const before = parseIpXfrmPolicies(ip('-n', ns, '-s', 'xfrm', 'policy'));
    expect(before.map((p) => p.action)).toEqual(['block', 'block', 'block']);
    const toUp = await w.call<ApplyResult>('apply', { desired: { sas: [], policies: up }, own });
    // out, in and fwd are replaced in place (UPDPOLICY: never a moment without a policy).
    expect(toUp.actions.map((a) => a.kind)).toEqual(['updatePolicy', 'updatePolicy', 'updatePolicy']);
    expect(toUp.errors).toEqual([]);
    const mid = parseIpXfrmPolicies(ip('-n', ns, '-s', 'xfrm', 'policy'));
    expect(mid.every((p) => p.action === 'allow' && p.tmpls[0]?.reqid === R)).toBe(true);
    const idx = (l: IpPolicy[], dir: string) => l.find((p) => p.dir === dir)?.index;
    expect(idx(mid, 'out')).toBe(idx(before, 'out'));
    const toDown = await w.call<ApplyResult>('apply', { desired: { sas: [], policies: down }, own });
    expect(toDown.actions.map((a) => a.kind)).toEqual(['updatePolicy', 'updatePolicy', 'updatePolicy']);
    expect(toDown.errors).toEqual([]);
    const after = parseIpXfrmPolicies(ip('-n', ns, '-s', 'xfrm', 'policy'));
    expect(after.map((p) => p.action)).toEqual(['block', 'block', 'block']);
    expect(after.map((p) => p.index).sort()).toEqual(before.map((p) => p.index).sort());
  });

  it('with mark ownership only marked objects are ours: unmarked state in our reqid range is left alone', async () => {
    const { ns, w } = await netns();
    const ownM = { ...own, mark: { v: 0x5a00, m: 0xff00 } };
    const reqid = String(R);
    // Unmarked, our reqid: not ours under mark ownership.
    ip(
      '-n',
      ns,
      'xfrm',
      'policy',
      'add',
      'src',
      '198.18.5.0/24',
      'dst',
      '198.18.6.0/24',
      'dir',
      'out',
      'tmpl',
      'src',
      '192.0.2.1',
      'dst',
      '192.0.2.6',
      'proto',
      'esp',
      'reqid',
      reqid,
      'mode',
      'tunnel',
    );
    // Marked leftover: ours, and unwanted.
    ip(
      '-n',
      ns,
      'xfrm',
      'policy',
      'add',
      'src',
      '198.18.5.0/24',
      'dst',
      '198.18.7.0/24',
      'dir',
      'out',
      'mark',
      '0x5a00',
      'mask',
      '0xff00',
      'tmpl',
      'src',
      '192.0.2.1',
      'dst',
      '192.0.2.7',
      'proto',
      'esp',
      'reqid',
      reqid,
      'mode',
      'tunnel',
    );
    const desired = tunnelPolicies({
      localSubnet: '198.18.1.0/24',
      remoteSubnet: '198.18.2.0/24',
      localAddress: '192.0.2.1',
      remoteAddress: '192.0.2.2',
      reqid: R,
      mark: ownM.mark,
    });
    const res = await w.call<ApplyResult>('apply', { desired: { sas: [], policies: desired }, own: ownM });
    expect(res.errors).toEqual([]);
    expect(res.counts).toMatchObject({ addPolicy: 3, deletePolicy: 1 });
    const after = parseIpXfrmPolicies(ip('-n', ns, '-s', 'xfrm', 'policy'));
    expect(after.map((p) => p.dst).sort()).toEqual([
      '198.18.1.0/24',
      '198.18.1.0/24',
      '198.18.2.0/24',
      '198.18.6.0/24',
    ]);
    expect(after.find((p) => p.dst === '198.18.6.0/24')?.mark).toBeUndefined();
    expect(after.filter((p) => p.mark === '0x5a00/0xff00')).toHaveLength(3);
  });

  it('route-based (XFRM interface) policies carry if_id, and if_id is part of the identity', async () => {
    const { ns, w } = await netns();
    const spec = {
      localSubnet: '198.18.1.0/24',
      remoteSubnet: '198.18.2.0/24',
      localAddress: '192.0.2.1',
      remoteAddress: '192.0.2.2',
      reqid: R,
    };
    const a = tunnelPolicies({ ...spec, ifId: 42 });
    const b = tunnelPolicies({ ...spec, ifId: 43 });
    const res = await w.call<ApplyResult>('apply', { desired: { sas: [], policies: [...a, ...b] }, own });
    expect(res.errors).toEqual([]);
    const viaIp = parseIpXfrmPolicies(ip('-n', ns, 'xfrm', 'policy'));
    expect(viaIp.map((p) => p.ifId).sort()).toEqual([42, 42, 42, 43, 43, 43]);
    const dumped = await w.xfrm<XfrmPolicy[]>('dumpPolicies');
    expect(dumped.map((p) => p.ifId).sort()).toEqual([42, 42, 42, 43, 43, 43]);
    const again = await w.call<ApplyResult>('apply', { desired: { sas: [], policies: a }, own });
    expect(again.actions.map((x) => x.kind)).toEqual(['deletePolicy', 'deletePolicy', 'deletePolicy']);
    expect(parseIpXfrmPolicies(ip('-n', ns, 'xfrm', 'policy')).map((p) => p.ifId)).toEqual([42, 42, 42]);
  });

  it('on EEXIST an add becomes a replace', async () => {
    const { ns, w } = await netns();
    const [out] = desiredPolicies();
    // Someone (an earlier run) left the same selector with another priority: our add hits EEXIST.
    ip(
      '-n',
      ns,
      'xfrm',
      'policy',
      'add',
      'src',
      '198.18.1.0/24',
      'dst',
      '198.18.2.0/24',
      'dir',
      'out',
      'priority',
      '9',
      'tmpl',
      'src',
      '192.0.2.1',
      'dst',
      '192.0.2.2',
      'proto',
      'esp',
      'reqid',
      String(R),
      'mode',
      'tunnel',
    );
    const actions: XfrmAction[] = [{ kind: 'addPolicy', policy: out! }];
    const res = await w.call<ApplyResult>('execute', { actions });
    expect(res.errors).toEqual([]);
    const p = parseIpXfrmPolicies(ip('-n', ns, '-s', 'xfrm', 'policy'));
    expect(p).toHaveLength(1);
    expect(p[0]!.priority).toBe(out!.info.priority);
  });

  it('reports kernel errors as typed XfrmError (errno name, number, operation)', async () => {
    const { w } = await netns();
    const [out] = desiredPolicies();
    const err = await w.xfrm('deletePolicy', { sel: out!.info.sel, dir: out!.info.dir }).then(
      () => undefined,
      (e: Error & { code?: string }) => e,
    );
    expect(err?.code).toBe('ENOENT');
    expect(err?.message).toMatch(/xfrm deletePolicy: ENOENT \(2\)/);
    await w.xfrm('addPolicy', out);
    const dup = await w.xfrm('addPolicy', out).then(
      () => undefined,
      (e: Error & { code?: string }) => e,
    );
    expect(dup?.code).toBe('EEXIST');
    // An algorithm no kernel has: the add fails with a typed error (ENOSYS), not a crash, on any kernel.
    const sa = {
      info: {
        sel: xfrmSelector({ family: C.AF_INET }),
        id: { daddr: '192.0.2.2', spi: 0x100, proto: C.IPPROTO_ESP },
        saddr: '192.0.2.1',
        lft: xfrmLifetimeCfg(),
        curlft: xfrmLifetimeCur(),
        stats: { replayWindow: 0, replay: 0, integrityFailed: 0 },
        seq: 0,
        reqid: R,
        family: C.AF_INET,
        mode: C.XFRM_MODE_TUNNEL,
        replayWindow: 0,
        flags: 0,
      },
      aead: { name: 'rfc4106(gcm(no-such-cipher))', key: Buffer.alloc(20, 7), icvLen: 128 },
    };
    const saErr = await w.xfrm('addSa', sa).then(
      () => undefined,
      (e: Error & { code?: string }) => e,
    );
    expect(saErr?.message).toMatch(/xfrm addSa: E[A-Z]+ \(\d+\)/);
    expect(saErr?.code).toBe('ENOSYS');
    expect(await w.xfrm<unknown[]>('dumpSas')).toEqual([]);
  });

  it('fails closed: a block policy stops plaintext to the remote subnet while IKE (UDP 500/4500) still passes', async () => {
    const a = await netns();
    const b = await netns();
    ip('link', 'add', `va${seq}`, 'netns', a.ns, 'type', 'veth', 'peer', 'name', `vb${seq}`, 'netns', b.ns);
    ip('-n', a.ns, 'link', 'set', `va${seq}`, 'up');
    ip('-n', b.ns, 'link', 'set', `vb${seq}`, 'up');
    ip('-n', a.ns, 'addr', 'add', '192.0.2.1/24', 'dev', `va${seq}`);
    ip('-n', b.ns, 'addr', 'add', '192.0.2.2/24', 'dev', `vb${seq}`);
    ip('-n', a.ns, 'addr', 'add', '198.18.1.1/32', 'dev', 'lo');
    ip('-n', b.ns, 'addr', 'add', '198.18.2.1/32', 'dev', 'lo');
    ip('-n', a.ns, 'route', 'add', '198.18.2.0/24', 'via', '192.0.2.2', 'src', '198.18.1.1');
    ip('-n', b.ns, 'route', 'add', '198.18.1.0/24', 'via', '192.0.2.1', 'src', '198.18.2.1');
    await b.w.call('tcpEchoServer', { host: '198.18.2.1', port: 5000 });
    await b.w.call('udpListen', { host: '198.18.2.1', port: 500 });
    const tcp = () =>
      a.w.call<string>('tcpConnect', { host: '198.18.2.1', port: 5000, localAddress: '198.18.1.1', timeoutMs: 2000 });
    expect(await tcp()).toBe('connected'); // control: the path works without policies
    // The tunnel is "down": only block + bypass policies are installed.
    const policies = [
      ...blockPolicies({ localSubnet: '198.18.1.0/24', remoteSubnet: '198.18.2.0/24', slot: 8, own }),
      ...ikeBypassPolicies(own, [C.AF_INET]),
    ];
    const res = await a.w.call<ApplyResult>('apply', { desired: { sas: [], policies }, own });
    expect(res.errors).toEqual([]);
    expect(await tcp()).toBe('EPERM');
    const send = (localPort: number, data: string) =>
      a.w.call('udpSendFrom', { localAddress: '198.18.1.1', localPort, host: '198.18.2.1', port: 500, data }).then(
        () => 'sent',
        (e: Error) => e.message,
      );
    expect(await send(500, 'ike-from-500')).toBe('sent');
    expect(await send(40000, 'plain-from-40000')).toMatch(/EPERM/);
    let got: { data: string }[] = [];
    for (let t = 0; t < 60 && got.length === 0; t++) {
      await new Promise((r) => setTimeout(r, 50));
      got = await b.w.call<{ data: string }[]>('udpReceived');
    }
    expect(got.map((m) => m.data)).toEqual(['ike-from-500']);
    // Removing our policies (GC) restores the path: nothing of ours lingers.
    await a.w.call('apply', { desired: { sas: [], policies: [] }, own });
    expect(await tcp()).toBe('connected');
    expect(ip('-n', a.ns, 'xfrm', 'policy').trim()).toBe('');
  });
});
