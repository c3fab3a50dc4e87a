/**
 * Engine-facing configuration of a peer (an IKE SA) and its children (CHILD SAs). The agent builds these from
 * IPsecTunnel resources (src/api); the engine never sees YAML, Secrets or Kubernetes objects.
 */
import type { KeyObject } from 'node:crypto';
import type { Proposal } from '../codec/payloads/sa-types.js';
import type { AddressRangeSelector } from '../codec/payloads/ts.js';
import type { ConfiguredIdentity, Endpoint } from '../ports.js';

/** Traffic selectors are the codec's address-range selectors (RFC 7296 §3.13.1). */
export type TrafficSelector = AddressRangeSelector;

export interface RetransmitConfig {
  /** First timeout in ms (strongSwan: 4 s). */
  timeoutMs: number;
  /** Back-off factor (strongSwan: 1.8). */
  base: number;
  /** Retransmissions before giving up (strongSwan: 5). */
  tries: number;
  /** Upper bound of a single timeout, ms. */
  maxTimeoutMs?: number;
}

export const DEFAULT_RETRANSMIT: RetransmitConfig = { timeoutMs: 4000, base: 1.8, tries: 5 };

/** Lifetime of an SA: rekey after `rekeyMs` minus up to `jitterMs` random, give up at `rekeyMs + overMs`. */
export interface LifetimeConfig {
  rekeyMs: number;
  /** Random reduction of the rekey time so that many tunnels do not rekey together. */
  jitterMs: number;
  /** Hard lifetime beyond the rekey time (strongSwan's over_time; default 10 % of rekeyMs). */
  overMs: number;
}

export type DpdAction = 'clear' | 'restart' | 'hold';

export interface ChildConfig {
  name: string;
  /** ESP proposals (parsed); a KE transform in them means PFS on rekey. */
  proposals: Proposal[];
  localTs: TrafficSelector[];
  remoteTs: TrafficSelector[];
  mode: 'tunnel' | 'transport';
  lifetime: LifetimeConfig;
  /** Kernel soft/hard byte and packet limits (0 = none). */
  lifeBytes?: bigint;
  lifePackets?: bigint;
  replayWindow: number;
  startAction: 'start' | 'trap' | 'none';
  /** Kernel reqid for this CHILD SA configuration (ownership tag); the engine picks one when absent. */
  reqid?: number;
}

/** Pre-shared key authentication (AUTH method 2, RFC 7296 §2.15). */
export interface PskAuthConfig {
  method: 'psk';
  psk: Uint8Array;
}

/**
 * Certificate authentication: we sign with `privateKey` (RFC 7427 digital signature when the peer announces
 * SIGNATURE_HASH_ALGORITHMS, else the classic RSA/ECDSA methods) and send `certChain`; the peer's chain must lead
 * to one of `trustAnchors` and its certificate must contain the identity it claims.
 */
export interface CertificateAuthConfig {
  method: 'certificate';
  /** DER certificates, ours first, then intermediates to send along (not the root). */
  certChain: Uint8Array[];
  /** Our private key: a KeyObject or PEM (PKCS#8, SEC1 or PKCS#1). */
  privateKey: KeyObject | string;
  /** DER CA certificates the peer's chain must lead to. */
  trustAnchors: Uint8Array[];
  /** Send CERTREQ payloads naming our trust anchors (default true; strongSwan sends its certificate only if asked). */
  sendCertReq?: boolean;
  /** RSA keys under RFC 7427: RSASSA-PSS (default) or PKCS#1 v1.5. */
  rsaPadding?: 'pss' | 'pkcs1';
}

export type AuthConfig = PskAuthConfig | CertificateAuthConfig;

export interface PeerConfig {
  name: string;
  local: Endpoint;
  /** The peer's address; `port` 500 unless configured otherwise. */
  remote: Endpoint;
  localId: ConfiguredIdentity;
  /** The identity the peer must prove; undefined accepts any identity the PSK/certificate proves (not recommended). */
  remoteId: ConfiguredIdentity | undefined;
  auth: AuthConfig;
  ikeProposals: Proposal[];
  ikeLifetime: LifetimeConfig;
  /** Dead peer detection: interval of liveness checks when no traffic was seen (0 = off). */
  dpdIntervalMs: number;
  dpdAction: DpdAction;
  /** NAT traversal: `force` pretends a NAT so ESP is always UDP-encapsulated. */
  natt: 'auto' | 'force' | 'off';
  /** Initiate IKE_AUTH without a CHILD SA when the peer supports it (RFC 6023). */
  childless: 'never' | 'prefer' | 'force';
  /** IKE fragmentation (RFC 7383): off, or fragment protected messages above `fragmentSize` bytes. */
  fragmentation: boolean;
  fragmentSize: number;
  /** Our SET_WINDOW_SIZE (1 = no notify). */
  windowSize: number;
  retransmit: RetransmitConfig;
  /** Half-open SAs older than this are destroyed (ms). */
  halfOpenTimeoutMs: number;
  children: ChildConfig[];
}
