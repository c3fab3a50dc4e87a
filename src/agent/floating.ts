/**
 * Floating gateway addresses: a site keeps one public IKE address across gateway failovers because the elected
 * node adds it to its interface while it holds the site's tunnels (and removes it when it stops). The operator's
 * election (heartbeat Leases) decides who holds it; this module only adds and removes the address, over rtnetlink.
 *
 * The address goes onto the interface that carries the node's own address of the same family (as a /32 or /128,
 * no prefix route, no DAD for IPv6 so it is usable at once). On a shared L2 segment the peers' neighbour caches
 * learn the new holder from its first ARP request / neighbour solicitation.
 */
import { isIP } from 'node:net';
import { createRtNetlink, FlagsNew, type RtNetlinkSocket } from 'netlink';

export interface AddressControl {
  /** Add `address` next to `near` (a local address of the same family); resolves once the kernel has it. */
  claim(address: string, near: string): Promise<void>;
  release(address: string): Promise<void>;
}

export class FloatingAddressError extends Error {
  constructor(
    readonly reason: 'NoInterface' | 'KernelRejected',
    message: string,
  ) {
    super(message);
    this.name = 'FloatingAddressError';
  }
}

const AF_INET = 2;
const AF_INET6 = 10;

function bytes(address: string): Buffer {
  if (isIP(address) === 4) return Buffer.from(address.split('.').map(Number));
  // Expand :: and write 8 groups of 16 bits.
  const [head = '', tail] = address.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  const b = Buffer.alloc(16);
  for (const [i, g] of groups.entries()) b.writeUInt16BE(Number.parseInt(g, 16), i * 2);
  return b;
}

/** Addresses over rtnetlink in the agent's network namespace. */
export class RtnlAddresses implements AddressControl {
  private sock: RtNetlinkSocket | undefined;
  /** Where each claimed address went (interface index), for the release. */
  private readonly held = new Map<string, number>();

  private rt(): RtNetlinkSocket {
    this.sock ??= createRtNetlink();
    return this.sock;
  }

  private async interfaceOf(near: string): Promise<number> {
    const family = isIP(near) === 6 ? AF_INET6 : AF_INET;
    const want = bytes(near);
    for (const m of await this.rt().getAddresses({ family })) {
      const a = m.attrs.local ?? m.attrs.address;
      if (a && Buffer.compare(a, want) === 0 && m.data.index !== undefined) return m.data.index;
    }
    throw new FloatingAddressError('NoInterface', `no interface carries the node address ${near}`);
  }

  async claim(address: string, near: string): Promise<void> {
    const index = await this.interfaceOf(near);
    const v6 = isIP(address) === 6;
    const b = bytes(address);
    try {
      await this.rt().newAddress(
        { family: v6 ? AF_INET6 : AF_INET, prefixlen: v6 ? 128 : 32, index, ...(v6 ? { flags: { nodad: true } } : {}) },
        { local: b, address: b, flags: { noprefixroute: true, ...(v6 ? { nodad: true } : {}) } },
        { flags: FlagsNew.CREATE | FlagsNew.REPLACE },
      );
    } catch (e) {
      throw new FloatingAddressError('KernelRejected', `adding ${address}: ${(e as Error).message}`);
    }
    this.held.set(address, index);
  }

  async release(address: string): Promise<void> {
    const index = this.held.get(address);
    if (index === undefined) return;
    const v6 = isIP(address) === 6;
    const b = bytes(address);
    try {
      await this.rt().delAddress({ family: v6 ? AF_INET6 : AF_INET, prefixlen: v6 ? 128 : 32, index }, { local: b });
    } catch (e) {
      // Already gone (an administrator removed it, or the interface went away): nothing left to release.
      if (!/ENOENT|EADDRNOTAVAIL|ENODEV/.test(String((e as Error).message))) {
        throw new FloatingAddressError('KernelRejected', `removing ${address}: ${(e as Error).message}`);
      }
    }
    this.held.delete(address);
  }

  close(): void {
    this.sock?.socket.close();
    this.sock = undefined;
  }
}
