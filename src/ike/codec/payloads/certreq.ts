/**
 * Certificate Request payload (RFC 7296 §3.7).
 *
 *                      1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * | Next Payload  |C|  RESERVED   |         Payload Length        |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * | Cert Encoding |                                               |
 * +-+-+-+-+-+-+-+-+                                               |
 * ~                    Certification Authority                    ~
 * |                                                               |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * For X509_SIGNATURE the Certification Authority field is a concatenation of 20-byte SHA-1 hashes of the
 * trusted CAs' SubjectPublicKeyInfo (see `certReqAuthorities`).
 */
import { CertEncoding, type PayloadType } from '../../constants.js';
import { checkBytes, checkInt, fail, type Reader, type Writer } from '../reader.js';
import type { PayloadBase } from './generic.js';

export interface CertReqPayload extends PayloadBase {
  type: PayloadType.CERTREQ;
  encoding: number;
  data: Uint8Array;
}

export function decodeCertReqBody(r: Reader, type: PayloadType.CERTREQ): CertReqPayload {
  const encoding = r.u8('certreq encoding');
  return { type, encoding, data: r.rest() };
}

export function encodeCertReqBody(p: CertReqPayload, w: Writer): void {
  w.u8(checkInt(p.encoding, 'certreq encoding', 0, 255));
  w.bytes(checkBytes(p.data, 'certreq data'));
}

/** The 20-byte SHA-1 key hashes of an X509_SIGNATURE certificate request; throws DecodeError when malformed. */
export function certReqAuthorities(p: CertReqPayload): Uint8Array[] {
  if (p.encoding !== CertEncoding.X509_SIGNATURE) fail('DECODE_BAD_VALUE', `CERTREQ encoding ${p.encoding} not X509`);
  if (p.data.length % 20 !== 0) fail('DECODE_BAD_LENGTH', 'CERTREQ authorities not a multiple of 20 bytes');
  const out: Uint8Array[] = [];
  for (let i = 0; i < p.data.length; i += 20) out.push(p.data.slice(i, i + 20));
  return out;
}
