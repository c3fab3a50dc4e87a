/**
 * Encrypted Fragment payload SKF (RFC 7383 §2.5).
 *
 *                      1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * | Next Payload  |C|  RESERVED   |         Payload Length        |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |        Fragment Number        |        Total Fragments        |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                     Initialization Vector                     |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * ~                      Encrypted content                        ~
 * +               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |               |             Padding (0-255 octets)            |
 * +-+-+-+-+-+-+-+-+                               +-+-+-+-+-+-+-+-+
 * |                                               |  Pad Length   |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * ~                    Integrity Checksum Data                    ~
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * Fragment Number starts at 1; Total Fragments is the number of fragments. Only the first fragment carries the
 * inner chain's first payload type in Next Payload; the others send 0. Each fragment is protected on its own, with
 * the AAD running through the Total Fragments field. Padding and ICV work as for SK (RFC 7296 §3.14).
 */
import type { PayloadType } from '../../constants.js';
import type { PayloadBase } from './generic.js';

/** Largest fragment count the 16-bit fields allow. */
export const MAX_TOTAL_FRAGMENTS = 0xffff;

/** A received SKF payload, not yet decrypted. */
export interface SkfPayload extends PayloadBase {
  type: PayloadType.SKF;
  /** Next Payload: the first inner payload type in fragment 1, 0 in the others. */
  innerNext: number;
  fragmentNumber: number;
  totalFragments: number;
  /** IV || ciphertext || ICV, as received. */
  body: Uint8Array;
  /** Header through the Total Fragments field. */
  aad: Uint8Array;
}
