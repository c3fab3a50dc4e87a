/**
 * Builders for the policies an IPsec gateway needs: tunnel policies (out/in/fwd with an ESP template), fail-closed
 * block policies, and IKE bypass policies.
 *
 * Precedence: the kernel prefers the LOWEST priority value. Bypass (1) < tunnel (PRIORITY_TUNNEL_BASE - prefix bits,
 * so more specific selectors win, as strongSwan does) < block (PRIORITY_BLOCK_BASE - prefix bits).
 *
 * Fail closed: the kernel identifies a policy by (dir, selector, mark, if_id, type) — NOT by priority — so a block
 * policy and a tunnel policy for the same subnet pair are the same kernel object and cannot coexist. The desired state
 * therefore holds either the tunnel policies (tunnel up) or the block policies (tunnel down) for a subnet pair, built
 * with the same `slot`: both then carry the same owned index per direction, and apply turns one into the other with a
 * single atomic XFRM_MSG_UPDPOLICY per direction — there is never a moment without a policy, so never plaintext.
 * (A tunnel policy whose SA is missing is itself fail-closed: the kernel drops and sends ACQUIRE.) A block policy with
 * a broader selector than the tunnels' (e.g. the whole remote site) coexists and is ordered by priority.
 *
 * IKE bypass: we use port-bypass policies (UDP sport 500/4500 out, dport 500/4500 in) rather than per-socket
 * IP_XFRM_POLICY policies. A per-socket policy needs setsockopt with a struct xfrm_userpolicy_info argument, which the
 * integer-only `sockopt` helper cannot pass; port bypass policies are plain netlink, visible in `ip xfrm policy`,
 * owned and garbage-collected like any other policy (strongSwan offers the same as `port_bypass`).
 */
import { familyOf } from './address.js';
import {
  type AddressFamily,
  IPPROTO_ESP,
  IPPROTO_UDP,
  XFRM_MODE_TUNNEL,
  XFRM_POLICY_ALLOW,
  XFRM_POLICY_BLOCK,
  XFRM_POLICY_FWD,
  XFRM_POLICY_IN,
  XFRM_POLICY_OUT,
  XFRM_SHARE_ANY,
} from './constants.js';
import type { XfrmPolicy } from './messages.js';
import { type Ownership, ownedPolicyIndex } from './ownership.js';
import { type XfrmMark, type XfrmSelector, xfrmSelector, xfrmUserpolicyInfo } from './structs.js';

export const PRIORITY_BYPASS = 1;
export const PRIORITY_TUNNEL_BASE = 0x0001_0000;
export const PRIORITY_BLOCK_BASE = 0x0100_0000;

export interface Cidr {
  address: string;
  prefix: number;
}

export function parseCidr(s: string): Cidr {
  const [address, p] = s.split('/');
  if (!address) throw new RangeError(`invalid CIDR '${s}'`);
  const max = familyOf(address) === 10 ? 128 : 32;
  const prefix = p === undefined ? max : Number(p);
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > max) throw new RangeError(`invalid CIDR '${s}'`);
  return { address, prefix };
}

export function selectorFor(src: Cidr, dst: Cidr, extra: Partial<XfrmSelector> = {}): XfrmSelector {
  return xfrmSelector({
    family: familyOf(src.address),
    saddr: src.address,
    prefixlenS: src.prefix,
    daddr: dst.address,
    prefixlenD: dst.prefix,
    ...extra,
  });
}

export interface TunnelPolicySpec {
  localSubnet: string;
  remoteSubnet: string;
  /** Outer (underlay) addresses. */
  localAddress: string;
  remoteAddress: string;
  reqid: number;
  proto?: number;
  mark?: XfrmMark;
  ifId?: number;
  /** Whether to install the fwd policy (gateways routing for a subnet: yes). Default true. */
  fwd?: boolean;
  priority?: number;
  /** Owned index slot shared with this subnet pair's block policies (atomic tunnel <-> block swap). */
  slot?: { slot: number; own: Ownership };
}

/** out: local → remote via an ESP tunnel template; in and fwd: remote → local requiring that template. */
export function tunnelPolicies(s: TunnelPolicySpec): XfrmPolicy[] {
  const local = parseCidr(s.localSubnet);
  const remote = parseCidr(s.remoteSubnet);
  const outerFamily = familyOf(s.localAddress);
  const priority = s.priority ?? PRIORITY_TUNNEL_BASE - (local.prefix + remote.prefix);
  const tmpl = (src: string, dst: string) => ({
    id: { daddr: dst, spi: 0, proto: s.proto ?? IPPROTO_ESP },
    family: outerFamily,
    saddr: src,
    reqid: s.reqid,
    mode: XFRM_MODE_TUNNEL,
    share: XFRM_SHARE_ANY,
    optional: 0,
    aalgos: 0xffff_ffff,
    ealgos: 0xffff_ffff,
    calgos: 0xffff_ffff,
  });
  const mk = (dir: number, sel: XfrmSelector, src: string, dst: string): XfrmPolicy => {
    const index = s.slot ? ownedPolicyIndex(s.slot.own, s.slot.slot, dir) : 0;
    const p: XfrmPolicy = { info: xfrmUserpolicyInfo({ sel, dir, priority, index }), tmpls: [tmpl(src, dst)] };
    if (s.mark) p.mark = s.mark;
    if (s.ifId !== undefined) p.ifId = s.ifId;
    return p;
  };
  const out = [
    mk(XFRM_POLICY_OUT, selectorFor(local, remote), s.localAddress, s.remoteAddress),
    mk(XFRM_POLICY_IN, selectorFor(remote, local), s.remoteAddress, s.localAddress),
  ];
  if (s.fwd ?? true) out.push(mk(XFRM_POLICY_FWD, selectorFor(remote, local), s.remoteAddress, s.localAddress));
  return out;
}

export interface BlockPolicySpec {
  localSubnet: string;
  remoteSubnet: string;
  /** Slot in the owned index range (one slot per remote subnet). */
  slot: number;
  own: Ownership;
}

/**
 * Fail closed: drop local → remote (out) and remote → local (in, fwd): the same three kernel keys as the tunnel's
 * policies for this pair, so a tunnel built with the same slot replaces them in place (see the header).
 */
export function blockPolicies(s: BlockPolicySpec): XfrmPolicy[] {
  const local = parseCidr(s.localSubnet);
  const remote = parseCidr(s.remoteSubnet);
  const priority = PRIORITY_BLOCK_BASE - (local.prefix + remote.prefix);
  return [XFRM_POLICY_OUT, XFRM_POLICY_IN, XFRM_POLICY_FWD].map((dir) => {
    const p: XfrmPolicy = {
      info: xfrmUserpolicyInfo({
        sel: dir === XFRM_POLICY_OUT ? selectorFor(local, remote) : selectorFor(remote, local),
        dir,
        priority,
        action: XFRM_POLICY_BLOCK,
        index: ownedPolicyIndex(s.own, s.slot, dir),
      }),
      tmpls: [],
    };
    if (s.own.mark) p.mark = s.own.mark;
    return p;
  });
}

/**
 * IKE bypass: UDP from our ports 500/4500 out, and to them in, never enter a tunnel. Uses slots 0..7 of the owned
 * index range (family × port × dir), so block/tunnel slots should start at 8.
 */
export function ikeBypassPolicies(
  own: Ownership,
  families: AddressFamily[] = [2, 10],
  ports = [500, 4500],
): XfrmPolicy[] {
  const out: XfrmPolicy[] = [];
  families.forEach((family, fi) => {
    ports.forEach((port, pi) => {
      const slot = fi * ports.length + pi;
      for (const dir of [XFRM_POLICY_OUT, XFRM_POLICY_IN]) {
        const sel =
          dir === XFRM_POLICY_OUT
            ? xfrmSelector({ family, proto: IPPROTO_UDP, sport: port, sportMask: 0xffff })
            : xfrmSelector({ family, proto: IPPROTO_UDP, dport: port, dportMask: 0xffff });
        const p: XfrmPolicy = {
          info: xfrmUserpolicyInfo({
            sel,
            dir,
            priority: PRIORITY_BYPASS,
            action: XFRM_POLICY_ALLOW,
            index: ownedPolicyIndex(own, slot, dir),
          }),
          tmpls: [],
        };
        if (own.mark) p.mark = own.mark;
        out.push(p);
      }
    });
  });
  return out;
}
