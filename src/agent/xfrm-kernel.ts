/**
 * The engine's KernelIpsec port on the Linux XFRM stack (src/xfrm over NETLINK_XFRM).
 *
 * - The inbound SA completes the larval SA that allocSpi reserved (XFRM_MSG_UPDSA), the outbound SA is new (NEWSA);
 *   an existing SA with the same id is replaced (delete + add: the kernel keeps old keys on UPDSA of a live SA).
 * - Traffic selectors from IKE are address ranges; the kernel wants prefixes, so a range that is not one prefix is
 *   refused with a clear error (the engine reports it; ranges from our own configuration are always prefixes).
 * - Policies are templated on the CHILD SA's reqid (ownership tag; see src/xfrm/ownership.ts).
 */

import { parseIp } from '../ike/codec/ip.js';
import type { KernelIpsec, KernelPolicy, KernelSa, KernelSelector, SaCounters } from '../ike/ports.js';
import { familyOf } from '../xfrm/address.js';
import { buildSa } from '../xfrm/builders.js';
import {
  IPPROTO_ESP,
  XFRM_MODE_TRANSPORT,
  XFRM_MODE_TUNNEL,
  XFRM_POLICY_BLOCK,
  XFRM_POLICY_FWD,
  XFRM_POLICY_IN,
  XFRM_POLICY_OUT,
  XFRM_SHARE_ANY,
  XFRMNLGRP_ACQUIRE,
  XFRMNLGRP_EXPIRE,
} from '../xfrm/constants.js';
import type { XfrmPolicy, XfrmSa } from '../xfrm/messages.js';
import { DEFAULT_OWNERSHIP, isOwnedPolicy, isOwnedSa, type Ownership, ownedPolicyIndex } from '../xfrm/ownership.js';
import { ikeBypassPolicies, PRIORITY_BLOCK_BASE, PRIORITY_TUNNEL_BASE } from '../xfrm/policies.js';
import { XfrmError, type XfrmEvent, XfrmSocket } from '../xfrm/socket.js';
import { type XfrmSelector, xfrmSelector, xfrmUserpolicyInfo } from '../xfrm/structs.js';

export class SelectorNotPrefixError extends Error {
  readonly code = 'ERR_SELECTOR_NOT_PREFIX';
}

/** The prefix length of [start, end] when it is exactly one prefix, else undefined. */
export function rangePrefix(start: string, end: string): number | undefined {
  const a = parseIp(start);
  const b = parseIp(end);
  if (a.length !== b.length) return undefined;
  let prefix = a.length * 8;
  for (let bit = 0; bit < a.length * 8; bit++) {
    const m = 0x80 >> (bit & 7);
    if ((a[bit >> 3]! & m) !== (b[bit >> 3]! & m)) {
      prefix = bit;
      break;
    }
  }
  for (let bit = prefix; bit < a.length * 8; bit++) {
    const m = 0x80 >> (bit & 7);
    if ((a[bit >> 3]! & m) !== 0 || (b[bit >> 3]! & m) === 0) return undefined;
  }
  return prefix;
}

function portMask(start: number, end: number): { port: number; mask: number } {
  if (start === 0 && end === 0xffff) return { port: 0, mask: 0 };
  if (start === end) return { port: start, mask: 0xffff };
  throw new SelectorNotPrefixError(`port range ${start}-${end} cannot be expressed as one kernel selector`);
}

export function kernelSelector(src: KernelSelector, dst: KernelSelector): XfrmSelector {
  const ps = rangePrefix(src.startAddress, src.endAddress);
  const pd = rangePrefix(dst.startAddress, dst.endAddress);
  if (ps === undefined || pd === undefined) {
    throw new SelectorNotPrefixError(
      `traffic selector ${src.startAddress}-${src.endAddress} === ${dst.startAddress}-${dst.endAddress} is not a pair of prefixes`,
    );
  }
  const sport = portMask(src.startPort, src.endPort);
  const dport = portMask(dst.startPort, dst.endPort);
  return xfrmSelector({
    family: familyOf(src.startAddress),
    saddr: src.startAddress,
    prefixlenS: ps,
    daddr: dst.startAddress,
    prefixlenD: pd,
    proto: src.protocol || dst.protocol,
    sport: sport.port,
    sportMask: sport.mask,
    dport: dport.port,
    dportMask: dport.mask,
  });
}

function toXfrmSa(sa: KernelSa) {
  const [from, to] =
    sa.direction === 'in' ? [sa.selectors.remote, sa.selectors.local] : [sa.selectors.local, sa.selectors.remote];
  const aead = sa.encryption.icvBits !== undefined;
  const lifetime: Record<string, bigint> = {};
  if (sa.lifetime.softBytes !== undefined) lifetime.softByteLimit = sa.lifetime.softBytes;
  if (sa.lifetime.hardBytes !== undefined) lifetime.hardByteLimit = sa.lifetime.hardBytes;
  if (sa.lifetime.softPackets !== undefined) lifetime.softPacketLimit = sa.lifetime.softPackets;
  if (sa.lifetime.hardPackets !== undefined) lifetime.hardPacketLimit = sa.lifetime.hardPackets;
  if (sa.lifetime.hardSeconds !== undefined) lifetime.hardAddExpiresSeconds = BigInt(sa.lifetime.hardSeconds);
  return buildSa({
    src: sa.source,
    dst: sa.destination,
    spi: sa.spi,
    reqid: sa.reqid,
    proto: IPPROTO_ESP,
    mode: sa.mode === 'transport' ? XFRM_MODE_TRANSPORT : XFRM_MODE_TUNNEL,
    ...(aead
      ? { aead: { name: sa.encryption.name, key: Buffer.from(sa.encryption.key), icvLen: sa.encryption.icvBits! } }
      : { crypt: { name: sa.encryption.name, key: Buffer.from(sa.encryption.key) } }),
    ...(sa.integrity
      ? { auth: { name: sa.integrity.name, key: Buffer.from(sa.integrity.key), truncLen: sa.integrity.truncationBits } }
      : {}),
    ...(sa.encap ? { encap: { sport: sa.encap.sourcePort, dport: sa.encap.destinationPort } } : {}),
    esn: sa.esn,
    replayWindow: sa.direction === 'in' ? sa.replayWindow : 0,
    lifetime,
    ...(sa.mark ? { mark: { v: sa.mark.value, m: sa.mark.mask } } : {}),
    ...(sa.ifId !== undefined ? { ifId: sa.ifId } : {}),
    // Tunnel-mode SAs match any inner traffic (policies select it); transport mode pins the selector.
    ...(sa.mode === 'transport' ? { selector: kernelSelector(from, to) } : {}),
  });
}

const DIR = { in: XFRM_POLICY_IN, out: XFRM_POLICY_OUT, fwd: XFRM_POLICY_FWD } as const;

/** Kernel identity of a policy: direction and selector (what the kernel keys on, with mark and if_id). */
function selectorKey(dir: number, sel: XfrmSelector): string {
  return `${dir}|${sel.family}|${sel.saddr}/${sel.prefixlenS}|${sel.daddr}/${sel.prefixlenD}|${sel.proto}|${sel.sport}/${sel.sportMask}|${sel.dport}/${sel.dportMask}`;
}

/** A subnet pair's policy while no CHILD SA serves it: block (fail closed) or trap (negotiate on the first packet). */
export interface RestingPolicy {
  kind: 'block' | 'trap';
  local: KernelSelector;
  remote: KernelSelector;
  /** For trap: the tunnel's reqid and outer addresses (the template the ACQUIRE reports). */
  reqid: number;
  localAddress: string;
  remoteAddress: string;
}

function toXfrmPolicy(p: KernelPolicy): XfrmPolicy {
  const [src, dst] = p.direction === 'out' ? [p.local, p.remote] : [p.remote, p.local];
  const sel = kernelSelector(src, dst);
  const priority = p.priority ?? PRIORITY_TUNNEL_BASE - (sel.prefixlenS + sel.prefixlenD);
  const policy: XfrmPolicy = {
    info: xfrmUserpolicyInfo({ sel, dir: DIR[p.direction], priority }),
    tmpls: [
      {
        id: { daddr: p.destination, spi: 0, proto: IPPROTO_ESP },
        family: familyOf(p.destination),
        saddr: p.source,
        reqid: p.reqid,
        mode: p.mode === 'transport' ? XFRM_MODE_TRANSPORT : XFRM_MODE_TUNNEL,
        share: XFRM_SHARE_ANY,
        optional: 0,
        aalgos: 0xffff_ffff,
        ealgos: 0xffff_ffff,
        calgos: 0xffff_ffff,
      },
    ],
  };
  if (p.mark) policy.mark = { v: p.mark.value, m: p.mark.mask };
  if (p.ifId !== undefined) policy.ifId = p.ifId;
  return policy;
}

function same(a: unknown, b: unknown): boolean {
  const text = (v: unknown) => JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : x));
  return text(a) === text(b);
}

export class XfrmKernel implements KernelIpsec {
  /** Policy slots (owned index per subnet pair); bypass policies use slots 0..7. */
  private readonly slots = new Map<string, number>();
  private nextSlot = 8;
  /** Resting policies by selector key and the policies a CHILD SA currently holds there. */
  private resting = new Map<string, { policy: XfrmPolicy }>();
  private readonly active = new Set<string>();
  /**
   * Tunnel policies a previous agent left (adopted at start, by selector key). They keep carrying traffic over the
   * adopted SAs until a new CHILD SA takes their pair over, so no resting policy may replace them meanwhile.
   */
  private readonly adopted = new Map<string, XfrmPolicy>();

  private constructor(
    readonly socket: XfrmSocket,
    readonly own: Ownership,
  ) {}

  /** Open NETLINK_XFRM in the current network namespace, subscribed to EXPIRE and ACQUIRE events. */
  static open(own: Ownership = DEFAULT_OWNERSHIP): XfrmKernel {
    return new XfrmKernel(XfrmSocket.open({ groups: [XFRMNLGRP_EXPIRE, XFRMNLGRP_ACQUIRE] }), own);
  }

  onEvent(fn: (ev: XfrmEvent) => void): () => void {
    return this.socket.onEvent(fn);
  }

  private slotFor(sel: XfrmSelector, dir: number): number {
    // Both directions of a subnet pair share a slot: key on the out-direction view.
    const key =
      dir === XFRM_POLICY_OUT
        ? selectorKey(0, sel)
        : selectorKey(0, {
            ...sel,
            saddr: sel.daddr,
            daddr: sel.saddr,
            prefixlenS: sel.prefixlenD,
            prefixlenD: sel.prefixlenS,
            sport: sel.dport,
            sportMask: sel.dportMask,
            dport: sel.sport,
            dportMask: sel.sportMask,
          });
    let slot = this.slots.get(key);
    if (slot === undefined) {
      slot = this.nextSlot++;
      this.slots.set(key, slot);
    }
    return slot;
  }

  private indexed(p: XfrmPolicy): XfrmPolicy {
    p.info.index = ownedPolicyIndex(this.own, this.slotFor(p.info.sel, p.info.dir), p.info.dir);
    if (this.own.mark && !p.mark) p.mark = this.own.mark;
    return p;
  }

  /** IKE must never enter a tunnel: UDP 500/4500 (our ports) bypass every policy (strongSwan does the same). */
  async installBypass(ports: number[]): Promise<void> {
    for (const p of ikeBypassPolicies(this.own, [2, 10], ports)) await this.socket.updatePolicy(p);
  }

  private restingPolicies(r: RestingPolicy): XfrmPolicy[] {
    const dirs: ('out' | 'in' | 'fwd')[] = r.kind === 'trap' ? ['out'] : ['out', 'in', 'fwd'];
    return dirs.map((direction) => {
      if (r.kind === 'trap') {
        const t = toXfrmPolicy({
          direction,
          local: r.local,
          remote: r.remote,
          reqid: r.reqid,
          mode: 'tunnel',
          source: r.localAddress,
          destination: r.remoteAddress,
        });
        return this.indexed(t);
      }
      const [src, dst] = direction === 'out' ? [r.local, r.remote] : [r.remote, r.local];
      const sel = kernelSelector(src, dst);
      return this.indexed({
        info: xfrmUserpolicyInfo({
          sel,
          dir: DIR[direction],
          priority: PRIORITY_BLOCK_BASE - (sel.prefixlenS + sel.prefixlenD),
          action: XFRM_POLICY_BLOCK,
        }),
        tmpls: [],
      });
    });
  }

  /**
   * The policies that hold each subnet pair while no CHILD SA does. Pairs held by a CHILD SA now are left alone
   * (the CHILD SA's removal restores the resting policy atomically with one UPDPOLICY); pairs no longer wanted
   * lose their resting policies.
   */
  async setResting(list: RestingPolicy[]): Promise<void> {
    const next = new Map<string, { policy: XfrmPolicy }>();
    for (const r of list)
      for (const policy of this.restingPolicies(r)) next.set(selectorKey(policy.info.dir, policy.info.sel), { policy });
    for (const [key, { policy }] of next) {
      const before = this.resting.get(key);
      if (this.active.has(key) || this.adopted.has(key)) continue;
      if (before && same(before.policy, policy)) continue;
      await this.socket.updatePolicy(policy);
    }
    for (const [key, { policy }] of this.resting) {
      if (next.has(key) || this.active.has(key) || this.adopted.has(key)) continue;
      await this.ignoreMissing(() =>
        this.socket.deletePolicy({
          sel: policy.info.sel,
          dir: policy.info.dir,
          ...(policy.mark ? { mark: policy.mark } : {}),
        }),
      );
    }
    this.resting = next;
  }

  /** Keep a previous agent's tunnel policies in place (see `adopted`) until a CHILD SA or `releaseAdopted` takes them. */
  adoptPolicies(policies: XfrmPolicy[]): void {
    for (const p of policies) if (p.tmpls.length > 0) this.adopted.set(selectorKey(p.info.dir, p.info.sel), p);
  }

  /**
   * Give up adopted policies (of one reqid, or all) that no CHILD SA took over: the pair gets its resting policy,
   * or none when the tunnel has no resting policy. Returns how many were released.
   */
  async releaseAdopted(reqid?: number): Promise<number> {
    let n = 0;
    for (const [key, p] of [...this.adopted]) {
      if (reqid !== undefined && p.tmpls[0]?.reqid !== reqid) continue;
      this.adopted.delete(key);
      n++;
      const resting = this.resting.get(key);
      if (resting) await this.socket.updatePolicy(resting.policy);
      else await this.deleteXfrmPolicy(p);
    }
    return n;
  }

  /** Everything of ours in the kernel now (for adoption after a restart and for garbage collection). */
  async owned(): Promise<{ sas: XfrmSa[]; policies: XfrmPolicy[] }> {
    const [sas, policies] = await Promise.all([this.socket.dumpSas(), this.socket.dumpPolicies()]);
    return {
      sas: sas.filter((x) => isOwnedSa(x, this.own)),
      policies: policies.filter((x) => isOwnedPolicy(x, this.own)),
    };
  }

  /** Every policy in the kernel, ours or not (the encryption check looks for what shadows ours too). */
  dumpPolicies(): Promise<XfrmPolicy[]> {
    return this.socket.dumpPolicies();
  }

  async deleteXfrmSa(sa: XfrmSa): Promise<void> {
    await this.ignoreMissing(() =>
      this.socket.deleteSa({
        daddr: sa.info.id.daddr,
        spi: sa.info.id.spi,
        proto: sa.info.id.proto,
        family: sa.info.family,
        ...(sa.mark ? { mark: sa.mark } : {}),
      }),
    );
  }

  async deleteXfrmPolicy(p: XfrmPolicy): Promise<void> {
    this.adopted.delete(selectorKey(p.info.dir, p.info.sel));
    await this.ignoreMissing(() =>
      this.socket.deletePolicy({
        sel: p.info.sel,
        dir: p.info.dir,
        ...(p.mark ? { mark: p.mark } : {}),
        ...(p.ifId !== undefined ? { ifId: p.ifId } : {}),
      }),
    );
  }

  private async ignoreMissing(fn: () => Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (e) {
      if (!(e instanceof XfrmError) || (e.code !== 'ENOENT' && e.code !== 'ESRCH')) throw e;
    }
  }

  close(): void {
    this.socket.close();
  }

  async allocSpi(args: { source: string; destination: string; reqid: number }): Promise<number> {
    return this.socket.allocSpi({
      saddr: args.source,
      daddr: args.destination,
      family: familyOf(args.destination),
      proto: IPPROTO_ESP,
      mode: XFRM_MODE_TUNNEL,
      reqid: args.reqid,
      min: 0x100,
      max: 0xffff_fffe,
    });
  }

  async addSa(sa: KernelSa): Promise<void> {
    const x = toXfrmSa(sa);
    try {
      await this.socket.addSa(x);
    } catch (e) {
      if (!(e instanceof XfrmError) || e.code !== 'EEXIST') throw e;
      // Replace: the kernel would keep the old keys on an update of a live SA.
      await this.socket.deleteSa({
        daddr: sa.destination,
        spi: sa.spi,
        proto: IPPROTO_ESP,
        family: familyOf(sa.destination),
      });
      await this.socket.addSa(x);
    }
  }

  async updateSa(sa: KernelSa): Promise<void> {
    await this.socket.updateSa(toXfrmSa(sa));
  }

  async deleteSa(args: { spi: number; destination: string }): Promise<void> {
    try {
      await this.socket.deleteSa({
        daddr: args.destination,
        spi: args.spi,
        proto: IPPROTO_ESP,
        family: familyOf(args.destination),
      });
    } catch (e) {
      // Already gone (expired, or removed by the peer's delete): nothing to do.
      if (!(e instanceof XfrmError) || (e.code !== 'ESRCH' && e.code !== 'ENOENT')) throw e;
    }
  }

  async addPolicy(p: KernelPolicy): Promise<void> {
    // UPDPOLICY creates or replaces: a resting (block/trap) policy or one left by a crashed agent is taken over in
    // one step, so the subnet pair is never without a policy.
    const x = this.indexed(toXfrmPolicy(p));
    await this.socket.updatePolicy(x);
    const key = selectorKey(x.info.dir, x.info.sel);
    this.active.add(key);
    this.adopted.delete(key);
  }

  async deletePolicy(p: Pick<KernelPolicy, 'direction' | 'local' | 'remote' | 'mark' | 'ifId'>): Promise<void> {
    const [src, dst] = p.direction === 'out' ? [p.local, p.remote] : [p.remote, p.local];
    const sel = kernelSelector(src, dst);
    const key = selectorKey(DIR[p.direction], sel);
    this.active.delete(key);
    const resting = this.resting.get(key);
    if (resting) {
      // Fail closed / trap again: swap the tunnel policy for the resting one atomically.
      await this.socket.updatePolicy(resting.policy);
      return;
    }
    await this.ignoreMissing(() =>
      this.socket.deletePolicy({
        sel,
        dir: DIR[p.direction],
        ...(p.mark ? { mark: { v: p.mark.value, m: p.mark.mask } } : {}),
        ...(p.ifId !== undefined ? { ifId: p.ifId } : {}),
      }),
    );
  }

  /** Re-point an SA's ESP-in-UDP encapsulation: GETSA (the kernel returns the whole SA), new ports, UPDSA. */
  async updateEncapsulation(args: {
    spi: number;
    destination: string;
    encap: { sourcePort: number; destinationPort: number };
  }): Promise<void> {
    const family = familyOf(args.destination);
    const sa = await this.socket.getSa({ daddr: args.destination, spi: args.spi, proto: IPPROTO_ESP, family });
    if (!sa.encap) return;
    sa.encap = { ...sa.encap, sport: args.encap.sourcePort, dport: args.encap.destinationPort };
    const { curLifetime: _c, lastUsed: _l, legacyAuth: _a, ...rest } = sa;
    await this.socket.updateSa(rest);
  }

  async querySa(args: { spi: number; destination: string }): Promise<SaCounters | undefined> {
    try {
      const c = await this.socket.saCounters({
        daddr: args.destination,
        spi: args.spi,
        proto: IPPROTO_ESP,
        family: familyOf(args.destination),
      });
      return { bytes: c.bytes, packets: c.packets };
    } catch (e) {
      if (e instanceof XfrmError && (e.code === 'ESRCH' || e.code === 'ENOENT')) return undefined;
      throw e;
    }
  }
}
