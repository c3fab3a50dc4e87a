/**
 * Nonce payload (RFC 7296 §3.9).
 *
 *                      1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * | Next Payload  |C|  RESERVED   |         Payload Length        |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * ~                            Nonce Data                         ~
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * Nonce Data is between 16 and 256 octets.
 */
import type { PayloadType } from '../../constants.js';
import { checkBytes, fail, type Reader, type Writer } from '../reader.js';
import type { PayloadBase } from './generic.js';

export const MIN_NONCE_LENGTH = 16;
export const MAX_NONCE_LENGTH = 256;

export interface NoncePayload extends PayloadBase {
  type: PayloadType.NONCE;
  data: Uint8Array;
}

export function decodeNonceBody(r: Reader, type: PayloadType.NONCE): NoncePayload {
  if (r.remaining < MIN_NONCE_LENGTH || r.remaining > MAX_NONCE_LENGTH) {
    fail('DECODE_BAD_LENGTH', `nonce of ${r.remaining} bytes outside 16..256`, r.offset);
  }
  return { type, data: r.rest() };
}

export function encodeNonceBody(p: NoncePayload, w: Writer): void {
  w.bytes(checkBytes(p.data, 'nonce', MIN_NONCE_LENGTH, MAX_NONCE_LENGTH));
}
