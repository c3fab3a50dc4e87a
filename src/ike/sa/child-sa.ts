/** A CHILD SA (RFC 7296 §1.3): one pair of ESP SAs with their traffic selectors, owned by an IKE SA. */
import type { Proposal } from '../codec/payloads/sa-types.js';
import type { AddressRangeSelector } from '../codec/payloads/ts.js';
import type { Cancel } from '../ports.js';
import type { ChildConfig } from './config.js';

export type ChildState =
  /** Being negotiated. */
  | 'creating'
  /** Both SAs in the kernel (outbound may be deferred while a peer-initiated rekey completes). */
  | 'installed'
  /** A rekey of this CHILD SA is running. */
  | 'rekeying'
  /** Replaced by a newer CHILD SA; waiting for its deletion. */
  | 'rekeyed'
  /** A delete of this CHILD SA is running. */
  | 'deleting'
  | 'deleted';

export interface ChildSuite {
  encrId: number;
  keyLength?: number | undefined;
  integId?: number | undefined;
  esn: boolean;
  /** Key exchange method used for PFS when this CHILD SA was created (undefined: none). */
  keId?: number | undefined;
}

export class ChildSa {
  state: ChildState = 'creating';
  /** Our inbound SPI (we chose it). */
  spiIn = 0;
  /** Outbound SPI (the peer chose it). */
  spiOut = 0;
  mode: 'tunnel' | 'transport';
  proposal: Proposal | undefined;
  suite: ChildSuite | undefined;
  localTs: AddressRangeSelector[] = [];
  remoteTs: AddressRangeSelector[] = [];
  /** Wall-clock ms of installation (status). */
  installedAt: number | undefined;
  /** Monotonic ms when this CHILD SA will be rekeyed. */
  rekeyAt: number | undefined;
  /** Monotonic ms when it expires for good if not rekeyed. */
  expireAt: number | undefined;
  inboundInstalled = false;
  outboundInstalled = false;
  policiesInstalled = false;
  /**
   * Lowest nonce of the exchange that created this CHILD SA, for rekey collisions (RFC 7296 §2.8.1): of two
   * redundant SAs, the one created with the lowest nonce is deleted.
   */
  lowestNonce: Uint8Array | undefined;
  /** Whether we initiated the exchange that created this CHILD SA. */
  createdByUs = false;
  /** The CHILD SA that replaced this one in a rekey. */
  replacedBy: ChildSa | undefined;
  timers: Cancel[] = [];
  /** The IKE SA that currently owns this CHILD SA (changes when the IKE SA is rekeyed). */
  owner: unknown;
  /** Responder of a rekey: outbound keys held until the old CHILD SA is deleted (then installed and wiped). */
  pendingOutbound: { encKey: Uint8Array; integKey: Uint8Array } | undefined;
  /**
   * The peer's answer to our last ESP_RECEIVED_QUERY for this CHILD SA (src/ike/tasks/esp-check.ts): the packets
   * its inbound SA (our outbound) had received, or `unknown` when the peer answered without a count (not an
   * ipsec-mesh peer, or it could not read its kernel). `at` is the monotonic ms of the answer.
   */
  peerReceived: { at: number; packets?: bigint } | undefined;

  constructor(
    readonly uid: number,
    readonly config: ChildConfig,
    /** Ties the SAs to their policies in the kernel; kept across rekeys. */
    readonly reqid: number,
  ) {
    this.mode = config.mode;
  }

  clearTimers(): void {
    for (const c of this.timers) c();
    this.timers = [];
  }

  /** Whether this CHILD SA is still serving traffic or about to (not replaced or being removed). */
  get isActive(): boolean {
    return this.state === 'installed' || this.state === 'rekeying' || this.state === 'creating';
  }
}
