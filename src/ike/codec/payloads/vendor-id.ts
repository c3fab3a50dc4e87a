/**
 * Vendor ID payload (RFC 7296 §3.12).
 *
 *                      1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * | Next Payload  |C|  RESERVED   |         Payload Length        |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * ~                        Vendor ID (VID)                        ~
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 */
import type { PayloadType } from '../../constants.js';
import { checkBytes, type Reader, type Writer } from '../reader.js';
import type { PayloadBase } from './generic.js';

export interface VendorIdPayload extends PayloadBase {
  type: PayloadType.VENDOR_ID;
  data: Uint8Array;
}

export function decodeVendorIdBody(r: Reader, type: PayloadType.VENDOR_ID): VendorIdPayload {
  return { type, data: r.rest() };
}

export function encodeVendorIdBody(p: VendorIdPayload, w: Writer): void {
  w.bytes(checkBytes(p.data, 'vendor id'));
}
