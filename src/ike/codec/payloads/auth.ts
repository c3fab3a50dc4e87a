/**
 * Authentication payload (RFC 7296 §3.8).
 *
 *                      1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * | Next Payload  |C|  RESERVED   |         Payload Length        |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * | Auth Method   |                RESERVED                       |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * ~                      Authentication Data                      ~
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 */
import type { PayloadType } from '../../constants.js';
import { checkBytes, checkInt, type Reader, type Writer } from '../reader.js';
import type { PayloadBase } from './generic.js';

export interface AuthPayload extends PayloadBase {
  type: PayloadType.AUTH;
  /** AuthMethod value. */
  method: number;
  data: Uint8Array;
}

export function decodeAuthBody(r: Reader, type: PayloadType.AUTH): AuthPayload {
  const method = r.u8('auth method');
  r.skip(3, 'auth reserved');
  return { type, method, data: r.rest() };
}

export function encodeAuthBody(p: AuthPayload, w: Writer): void {
  w.u8(checkInt(p.method, 'auth method', 0, 255));
  w.zeros(3);
  w.bytes(checkBytes(p.data, 'auth data'));
}
