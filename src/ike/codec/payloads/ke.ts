/**
 * Key Exchange payload (RFC 7296 §3.4).
 *
 *                      1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * | Next Payload  |C|  RESERVED   |         Payload Length        |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |   Diffie-Hellman Group Num    |           RESERVED            |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * ~                       Key Exchange Data                       ~
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 */
import type { PayloadType } from '../../constants.js';
import { checkBytes, checkInt, type Reader, type Writer } from '../reader.js';
import type { PayloadBase } from './generic.js';

export interface KePayload extends PayloadBase {
  type: PayloadType.KE;
  /** Key exchange method (KeId), "DH Group Num" in RFC 7296. */
  group: number;
  data: Uint8Array;
}

export function decodeKeBody(r: Reader, type: PayloadType.KE): KePayload {
  const group = r.u16('ke group');
  r.skip(2, 'ke reserved');
  return { type, group, data: r.rest() };
}

export function encodeKeBody(p: KePayload, w: Writer): void {
  w.u16(checkInt(p.group, 'ke group', 0, 0xffff));
  w.u16(0);
  w.bytes(checkBytes(p.data, 'ke data'));
}
