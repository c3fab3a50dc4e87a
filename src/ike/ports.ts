/**
 * Ports: everything the IKEv2 engine needs from the outside world, passed in. src/ike never opens a socket, reads
 * a clock, starts a timer, draws randomness or touches the kernel by itself; the agent supplies real ports, the
 * simulation harness supplies fake ones (a fake clock, a lossy in-memory network, a recording kernel).
 */
import type { Random } from './crypto/provider.js';

export type { Random } from './crypto/provider.js';

/** A UDP endpoint. `address` is a textual IPv4 or IPv6 address. */
export interface Endpoint {
  address: string;
  port: number;
}

/** Sends one IKE datagram (without the non-ESP marker: the transport adds it on port 4500). */
export interface Sender {
  send(packet: Uint8Array, from: Endpoint, to: Endpoint): void;
}

/** Cancels a scheduled timer; calling it twice is harmless. */
export type Cancel = () => void;

/** Monotonic time and timers. The engine only ever schedules through this. */
export interface Clock {
  /** Milliseconds on a monotonic clock. */
  now(): number;
  /** Wall-clock milliseconds since the epoch, for status timestamps only (never for timeouts). */
  wallNow(): number;
  /** `label` names the timer for diagnostics (fake clocks show it). */
  setTimer(delayMs: number, fn: () => void, label?: string): Cancel;
}

/** Traffic selector range as the kernel needs it. */
export interface KernelSelector {
  family: 4 | 6;
  /** First and last address of the range, textual. */
  startAddress: string;
  endAddress: string;
  /** IP protocol number, 0 for any. */
  protocol: number;
  startPort: number;
  endPort: number;
}

/** One direction of a CHILD SA as handed to the kernel. Keys are raw bytes; they never leave this object. */
export interface KernelSa {
  /** The SPI the receiver of this SA chose, network order as a 32-bit unsigned number. */
  spi: number;
  protocol: 'esp' | 'ah';
  mode: 'tunnel' | 'transport';
  source: string;
  destination: string;
  /** Identifies the CHILD SA's policies; also the ownership tag in the kernel. */
  reqid: number;
  /** Kernel algorithm names, e.g. rfc4106(gcm(aes)), cbc(aes), hmac(sha256), rfc7539esp(chacha20,poly1305). */
  encryption: { name: string; key: Uint8Array; icvBits?: number };
  integrity?: { name: string; key: Uint8Array; truncationBits: number };
  esn: boolean;
  replayWindow: number;
  /** UDP encapsulation (NAT-T, RFC 3948). */
  encap?: { sourcePort: number; destinationPort: number };
  /** Kernel lifetimes: a safety net behind the engine's own rekey timers (seconds since installation). */
  lifetime: {
    softBytes?: bigint;
    hardBytes?: bigint;
    softPackets?: bigint;
    hardPackets?: bigint;
    hardSeconds?: number;
  };
  selectors: { local: KernelSelector; remote: KernelSelector };
  direction: 'in' | 'out';
  mark?: { value: number; mask: number };
  ifId?: number;
}

export interface KernelPolicy {
  direction: 'in' | 'out' | 'fwd';
  local: KernelSelector;
  remote: KernelSelector;
  reqid: number;
  mode: 'tunnel' | 'transport';
  /** Tunnel endpoints (outer addresses) for tunnel mode. */
  source: string;
  destination: string;
  priority?: number;
  mark?: { value: number; mask: number };
  ifId?: number;
}

export interface SaCounters {
  bytes: bigint;
  packets: bigint;
  /** Monotonic ms of the last use, when the kernel reports it. */
  lastUsed?: number;
}

/**
 * The kernel IPsec data plane (XFRM in production, a recording fake in tests). Calls are asynchronous; the engine
 * orders its calls so that a new inbound SA exists before the peer may use it and the old SAs go last.
 */
export interface KernelIpsec {
  /** Reserve an inbound SPI for a CHILD SA being negotiated. */
  allocSpi(args: { source: string; destination: string; protocol: 'esp' | 'ah'; reqid: number }): Promise<number>;
  addSa(sa: KernelSa): Promise<void>;
  updateSa(sa: KernelSa): Promise<void>;
  deleteSa(args: { spi: number; protocol: 'esp' | 'ah'; destination: string }): Promise<void>;
  addPolicy(policy: KernelPolicy): Promise<void>;
  deletePolicy(policy: Pick<KernelPolicy, 'direction' | 'local' | 'remote' | 'mark' | 'ifId'>): Promise<void>;
  querySa(args: { spi: number; protocol: 'esp' | 'ah'; destination: string }): Promise<SaCounters | undefined>;
  /** Change an installed SA's UDP encapsulation ports (the peer's NAT mapping changed). Optional. */
  updateEncapsulation?(args: {
    spi: number;
    destination: string;
    encap: { sourcePort: number; destinationPort: number };
  }): Promise<void>;
}

/** Identity in the configuration (maps to an IKE ID payload). */
export type ConfiguredIdentity =
  | { type: 'ipv4' | 'ipv6'; value: string }
  | { type: 'fqdn'; value: string }
  | { type: 'rfc822'; value: string }
  | { type: 'keyid'; value: Uint8Array }
  /** A subject distinguished name ("CN=site-b.example, O=Example"); only as the remote identity of certificate tunnels. */
  | { type: 'dn'; value: string };

/** Source of tunnel configuration, consulted when a peer initiates. */
export interface ConfigLookup<Peer> {
  /** Candidate configurations for an IKE_SA_INIT arriving on `local` from `remote`. */
  byAddresses(local: Endpoint, remote: Endpoint): Peer[];
  /** The configuration for a peer that authenticated as `remoteId` to `localId` (if given). */
  byIdentities(
    remoteId: ConfiguredIdentity,
    localId: ConfiguredIdentity | undefined,
    candidates: Peer[],
  ): Peer | undefined;
}

/** Everything outside the engine, in one object. */
export interface EnginePorts<Peer> {
  sender: Sender;
  clock: Clock;
  random: Random;
  kernel: KernelIpsec;
  config: ConfigLookup<Peer>;
}
