/**
 * NAT detection (RFC 7296 §2.23): NAT_DETECTION_SOURCE_IP / _DESTINATION_IP carry
 *   SHA-1( SPIi | SPIr | IP address | Port )
 * with SPIr all zero in IKE_SA_INIT, the address in network order (4 or 16 bytes) and the port as 2 bytes.
 * A mismatch of the destination hash means we are behind a NAT; of a source hash, the peer is.
 */

import { parseIp as addressBytes } from '../codec/ip.js';
import { concatBytes } from '../crypto/checks.js';
import type { CryptoProvider } from '../crypto/provider.js';
import type { Endpoint } from '../ports.js';

export function natdHash(provider: CryptoProvider, spiI: Uint8Array, spiR: Uint8Array, ep: Endpoint): Uint8Array {
  const port = new Uint8Array([(ep.port >>> 8) & 0xff, ep.port & 0xff]);
  return provider.hash('sha1', concatBytes(spiI, spiR, addressBytes(ep.address), port));
}

export interface NatDetection {
  /** Our own address is translated (the peer's DESTINATION hash does not match our address). */
  localBehindNat: boolean;
  /** The peer's address is translated (no SOURCE hash matches the address we see it at). */
  remoteBehindNat: boolean;
}

/**
 * Evaluate the hashes the peer sent against the addresses we actually see.
 * `received` is the packet's own source (the peer as we see it) and destination (us as the peer reached us).
 */
export function detectNat(
  provider: CryptoProvider,
  spiI: Uint8Array,
  spiR: Uint8Array,
  received: { source: Endpoint; destination: Endpoint },
  peerSourceHashes: readonly Uint8Array[],
  peerDestinationHash: Uint8Array | undefined,
): NatDetection {
  const eq = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((v, i) => v === b[i]);
  const src = natdHash(provider, spiI, spiR, received.source);
  const dst = natdHash(provider, spiI, spiR, received.destination);
  return {
    localBehindNat: peerDestinationHash !== undefined && !eq(peerDestinationHash, dst),
    remoteBehindNat: peerSourceHashes.length > 0 && !peerSourceHashes.some((h) => eq(h, src)),
  };
}
