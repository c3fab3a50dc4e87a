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
  XFRM_POLICY_FWD,
  XFRM_POLICY_IN,
  XFRM_POLICY_OUT,
  XFRM_SHARE_ANY,
} from '../xfrm/constants.js';
import type { XfrmPolicy } from '../xfrm/messages.js';
import { PRIORITY_TUNNEL_BASE } from '../xfrm/policies.js';
import { XfrmError, XfrmSocket } from '../xfrm/socket.js';
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

export class XfrmKernel implements KernelIpsec {
  private constructor(readonly socket: XfrmSocket) {}

  /** Open NETLINK_XFRM in the current network namespace. */
  static open(): XfrmKernel {
    return new XfrmKernel(XfrmSocket.open());
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
    // UPDPOLICY creates or replaces: a policy for the same selectors (e.g. left by a crashed agent) is taken over.
    await this.socket.updatePolicy(toXfrmPolicy(p));
  }

  async deletePolicy(p: Pick<KernelPolicy, 'direction' | 'local' | 'remote' | 'mark' | 'ifId'>): Promise<void> {
    const [src, dst] = p.direction === 'out' ? [p.local, p.remote] : [p.remote, p.local];
    try {
      await this.socket.deletePolicy({
        sel: kernelSelector(src, dst),
        dir: DIR[p.direction],
        ...(p.mark ? { mark: { v: p.mark.value, m: p.mark.mask } } : {}),
        ...(p.ifId !== undefined ? { ifId: p.ifId } : {}),
      });
    } catch (e) {
      if (!(e instanceof XfrmError) || e.code !== 'ENOENT') throw e;
    }
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
