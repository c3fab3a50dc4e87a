/**
 * ESP overhead and the largest inner packet that fits a given underlay MTU (pure; no I/O).
 *
 * An ESP packet in tunnel mode (RFC 4303 §2, Figure 1; §3.1.2 for tunnel mode):
 *
 *   outer IP header          20 (IPv4, RFC 791) / 40 (IPv6, RFC 8200)
 *   UDP header                8 when UDP-encapsulated for NAT traversal (RFC 3948 §2.1), else 0
 *   SPI + sequence number     8 (RFC 4303 §2)
 *   IV                        AES-CBC 16 (RFC 3602 §3), AES-GCM 8 (RFC 4106 §3.1), ChaCha20-Poly1305 8 (RFC 7634 §2)
 *   inner packet + padding + pad length (1) + next header (1), padded to the cipher block:
 *                             AES-CBC 16 (RFC 3602 §3); GCM and ChaCha20-Poly1305 are stream-like (block 1), so
 *                             only ESP's own 4-byte alignment applies (RFC 4303 §2.4, RFC 4106 §3.2, RFC 7634 §2)
 *   ICV                       GCM 8/12/16 by transform (RFC 4106 §3.3, IKEv2 ENCR ids 18/19/20), Poly1305 16
 *                             (RFC 7634 §2), HMAC-SHA1-96 12 (RFC 2404), HMAC-SHA-256-128 16, -384-192 24,
 *                             -512-256 32 (RFC 4868 §2.3)
 *
 * The largest inner packet P with outer size <= MTU is therefore
 *   P = floor((MTU - outerIp - udp - 8 - iv - icv) / block) * block - 2
 * which is the Linux kernel's own esp4_get_mtu()/esp6_get_mtu() (net/ipv4/esp4.c: `((mtu - x->props.header_len -
 * crypto_aead_authsize(aead) - net_adj) & ~(blksize - 1)) + net_adj - 2`, blksize = ALIGN(cipher block, 4)) for
 * tunnel mode (net_adj 0). In transport mode no outer header is added and the inner IP header stays in front
 * (net_adj = its length).
 */
import { EncrId, IntegId } from '../ike/constants.js';

export class MtuInputError extends Error {
  readonly code = 'ERR_MTU_INPUT';
}

export interface EspShape {
  encryption: EncrId;
  /** Integrity transform for non-AEAD ciphers (ignored with AEAD). */
  integrity?: IntegId;
  mode: 'tunnel' | 'transport';
  /** Address family of the outer (underlay) header. */
  outerFamily: 4 | 6;
  /** ESP in UDP (NAT traversal, RFC 3948). */
  udpEncapsulation: boolean;
}

interface CipherShape {
  iv: number;
  block: number;
  /** ICV of an AEAD cipher; undefined for ciphers that need an integrity transform. */
  icv?: number;
}

const CIPHERS: ReadonlyMap<EncrId, CipherShape> = new Map([
  [EncrId.AES_CBC, { iv: 16, block: 16 }],
  [EncrId.AES_GCM_8, { iv: 8, block: 4, icv: 8 }],
  [EncrId.AES_GCM_12, { iv: 8, block: 4, icv: 12 }],
  [EncrId.AES_GCM_16, { iv: 8, block: 4, icv: 16 }],
  [EncrId.CHACHA20_POLY1305, { iv: 8, block: 4, icv: 16 }],
]);

const INTEGRITY_ICV: ReadonlyMap<IntegId, number> = new Map([
  [IntegId.HMAC_SHA1_96, 12],
  [IntegId.HMAC_SHA2_256_128, 16],
  [IntegId.HMAC_SHA2_384_192, 24],
  [IntegId.HMAC_SHA2_512_256, 32],
]);

export const ESP_HEADER = 8;
export const ESP_TRAILER = 2;
export const UDP_HEADER = 8;
export const IPV4_HEADER = 20;
export const IPV6_HEADER = 40;
/** TCP header without options (RFC 9293 §3.1). */
export const TCP_HEADER = 20;
/** IPv6 minimum link MTU (RFC 8200 §5); IPv4 minimum datagram every host must accept (RFC 791): 576. */
const MIN_INNER = { 4: 576, 6: 1280 } as const;

export interface EspOverhead {
  /** Bytes ESP adds whatever the payload: outer IP, UDP, ESP header, IV, trailer (pad length + next header), ICV. */
  fixed: number;
  /** Payload + trailer is padded to a multiple of this (adds up to block - 1 bytes more). */
  block: number;
  iv: number;
  icv: number;
  outerHeader: number;
  udp: number;
}

export function espOverhead(s: EspShape): EspOverhead {
  const c = CIPHERS.get(s.encryption);
  if (!c) throw new MtuInputError(`ESP encryption transform ${s.encryption} has no known overhead`);
  let icv = c.icv;
  if (icv === undefined) {
    if (s.integrity === undefined) throw new MtuInputError('a non-AEAD cipher needs an integrity transform');
    icv = INTEGRITY_ICV.get(s.integrity);
    if (icv === undefined) throw new MtuInputError(`ESP integrity transform ${s.integrity} has no known ICV length`);
  }
  const outerHeader = s.mode === 'tunnel' ? (s.outerFamily === 4 ? IPV4_HEADER : IPV6_HEADER) : 0;
  const udp = s.udpEncapsulation ? UDP_HEADER : 0;
  return {
    fixed: outerHeader + udp + ESP_HEADER + c.iv + ESP_TRAILER + icv,
    block: c.block,
    iv: c.iv,
    icv,
    outerHeader,
    udp,
  };
}

/**
 * The largest inner IP packet that leaves as ESP of at most `underlayMtu` bytes. For transport mode give
 * `innerHeader` (the IP header that stays in front of ESP: 20 or 40).
 */
export function innerMtu(underlayMtu: number, s: EspShape, innerHeader = 0): number {
  if (!Number.isInteger(underlayMtu) || underlayMtu < 576 || underlayMtu > 65535) {
    throw new MtuInputError(`underlay MTU ${underlayMtu} is not an integer in 576..65535`);
  }
  const o = espOverhead(s);
  const netAdj = s.mode === 'transport' ? innerHeader : 0;
  const room = underlayMtu - o.outerHeader - o.udp - ESP_HEADER - o.iv - o.icv - netAdj;
  return Math.floor(room / o.block) * o.block + netAdj - ESP_TRAILER;
}

/** TCP MSS for an inner packet size: minus the inner IP header (20 / 40) and the TCP header (20). */
export function mssFor(innerPacketMtu: number, innerFamily: 4 | 6): number {
  return innerPacketMtu - (innerFamily === 4 ? IPV4_HEADER : IPV6_HEADER) - TCP_HEADER;
}

export interface TunnelMtu {
  underlayMtu: number;
  /** Largest inner packet (route MTU for the remote subnets). */
  innerMtu: number;
  /** underlayMtu - innerMtu: what ESP costs at this MTU, padding included. */
  overhead: number;
  mssV4: number;
  mssV6: number;
}

/** Everything the gateway applies for one CHILD SA; refuses inner MTUs below what IP requires. */
export function tunnelMtu(underlayMtu: number, s: EspShape): TunnelMtu {
  const inner = innerMtu(underlayMtu, s);
  if (inner < MIN_INNER[4]) {
    throw new MtuInputError(`an underlay MTU of ${underlayMtu} leaves ${inner} bytes inside ESP (below 576)`);
  }
  return {
    underlayMtu,
    innerMtu: inner,
    overhead: underlayMtu - inner,
    mssV4: mssFor(inner, 4),
    mssV6: mssFor(Math.max(inner, 0), 6),
  };
}

/** Whether an inner MTU can carry IPv6 (RFC 8200 §5 requires 1280). */
export function carriesIpv6(inner: number): boolean {
  return inner >= MIN_INNER[6];
}
