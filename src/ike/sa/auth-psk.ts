/**
 * Pre-shared key authentication (RFC 7296 §2.15).
 *
 *   AUTH = prf( prf(Shared Secret, "Key Pad for IKEv2"), <SignedOctets> )
 *   InitiatorSignedOctets = RealMessage1 | NonceRData | MACedIDForI,  MACedIDForI = prf(SK_pi, RestOfInitIDPayload)
 *   ResponderSignedOctets = RealMessage2 | NonceIData | MACedIDForR,  MACedIDForR = prf(SK_pr, RestOfRespIDPayload)
 *
 * RealMessage1/2 are the IKE_SA_INIT messages as sent (bytes, starting with the IKE header); RestOfIDPayload is the
 * ID payload body after the generic header: ID type, three reserved bytes, identification data.
 */
import { type PrfId, PSK_KEY_PAD } from '../constants.js';
import { concatBytes, equalBytes } from '../crypto/checks.js';
import { prf } from '../crypto/prf.js';
import type { CryptoProvider } from '../crypto/provider.js';

const KEY_PAD = new TextEncoder().encode(PSK_KEY_PAD);

export interface SignedOctetsInput {
  /** The IKE_SA_INIT message this side sent (request for the initiator, response for the responder). */
  ownInitMessage: Uint8Array;
  /** The peer's nonce data (Nr for the initiator, Ni for the responder). */
  peerNonce: Uint8Array;
  /** SK_pi for the initiator, SK_pr for the responder. */
  skP: Uint8Array;
  /** Body of this side's ID payload (type, reserved, data). */
  idBody: Uint8Array;
}

/** The octets this side signs / MACs (RFC 7296 §2.15). */
export function signedOctets(provider: CryptoProvider, prfId: PrfId, input: SignedOctetsInput): Uint8Array {
  const macedId = prf(provider, prfId, input.skP, input.idBody);
  return concatBytes(input.ownInitMessage, input.peerNonce, macedId);
}

/** AUTH data for PSK (method 2, SHARED_KEY_MIC). */
export function pskAuth(provider: CryptoProvider, prfId: PrfId, psk: Uint8Array, octets: Uint8Array): Uint8Array {
  return prf(provider, prfId, prf(provider, prfId, psk, KEY_PAD), octets);
}

/** Constant-time check of a peer's PSK AUTH data. */
export function verifyPskAuth(
  provider: CryptoProvider,
  prfId: PrfId,
  psk: Uint8Array,
  octets: Uint8Array,
  received: Uint8Array,
): boolean {
  return equalBytes(pskAuth(provider, prfId, psk, octets), received);
}
