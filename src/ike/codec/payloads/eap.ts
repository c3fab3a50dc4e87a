/**
 * Extensible Authentication payload (RFC 7296 §3.16).
 *
 *                      1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * | Next Payload  |C|  RESERVED   |         Payload Length        |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * ~                       EAP Message                             ~
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * The EAP message (Code, Identifier, Length, Type, Type_Data; RFC 3748) is kept opaque.
 */
import type { PayloadType } from '../../constants.js';
import { checkBytes, type Reader, type Writer } from '../reader.js';
import type { PayloadBase } from './generic.js';

export interface EapPayload extends PayloadBase {
  type: PayloadType.EAP;
  message: Uint8Array;
}

export function decodeEapBody(r: Reader, type: PayloadType.EAP): EapPayload {
  return { type, message: r.rest() };
}

export function encodeEapBody(p: EapPayload, w: Writer): void {
  w.bytes(checkBytes(p.message, 'eap message'));
}
