/**
 * Certificate payload (RFC 7296 §3.6).
 *
 *                      1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * | Next Payload  |C|  RESERVED   |         Payload Length        |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * | Cert Encoding |                                               |
 * +-+-+-+-+-+-+-+-+                                               |
 * ~                       Certificate Data                        ~
 * |                                                               |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * Cert Encoding is a CertEncoding value; for X509_SIGNATURE (4) the data is one DER certificate.
 */
import type { PayloadType } from '../../constants.js';
import { checkBytes, checkInt, type Reader, type Writer } from '../reader.js';
import type { PayloadBase } from './generic.js';

export interface CertPayload extends PayloadBase {
  type: PayloadType.CERT;
  encoding: number;
  data: Uint8Array;
}

export function decodeCertBody(r: Reader, type: PayloadType.CERT): CertPayload {
  const encoding = r.u8('cert encoding');
  return { type, encoding, data: r.rest() };
}

export function encodeCertBody(p: CertPayload, w: Writer): void {
  w.u8(checkInt(p.encoding, 'cert encoding', 0, 255));
  w.bytes(checkBytes(p.data, 'cert data'));
}
