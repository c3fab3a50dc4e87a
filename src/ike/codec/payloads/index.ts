/**
 * All payload types as one discriminated union on `type`, and the dispatch from a payload type to its body codec.
 */
import { PayloadType } from '../../constants.js';
import { invalid, type Reader, type Writer } from '../reader.js';
import { type AuthPayload, decodeAuthBody, encodeAuthBody } from './auth.js';
import { type CertPayload, decodeCertBody, encodeCertBody } from './cert.js';
import { type CertReqPayload, decodeCertReqBody, encodeCertReqBody } from './certreq.js';
import { type CpPayload, decodeCpBody, encodeCpBody } from './cp.js';
import { type DeletePayload, decodeDeleteBody, encodeDeleteBody } from './delete.js';
import { decodeEapBody, type EapPayload, encodeEapBody } from './eap.js';
import { decodeIdBody, encodeIdBody, type IdPayload } from './id.js';
import { decodeKeBody, encodeKeBody, type KePayload } from './ke.js';
import { decodeNonceBody, encodeNonceBody, type NoncePayload } from './nonce.js';
import { decodeNotifyBody, encodeNotifyBody, type NotifyPayload } from './notify.js';
import { decodeSaBody, encodeSaBody, type SaPayload } from './sa.js';
import type { SkPayload } from './sk.js';
import type { SkfPayload } from './skf.js';
import { decodeTsBody, encodeTsBody, type TsPayload } from './ts.js';
import { decodeVendorIdBody, encodeVendorIdBody, type VendorIdPayload } from './vendor-id.js';

/** A payload that can appear inside SK (everything except SK and SKF). */
export type PlainPayload =
  | SaPayload
  | KePayload
  | IdPayload
  | CertPayload
  | CertReqPayload
  | AuthPayload
  | NoncePayload
  | NotifyPayload
  | DeletePayload
  | VendorIdPayload
  | TsPayload
  | CpPayload
  | EapPayload;

/** Any payload of a decoded message (SK/SKF only in the cleartext chain of a not yet decrypted message). */
export type Payload = PlainPayload | SkPayload | SkfPayload;

/** The payload of a given type, e.g. PayloadOf<PayloadType.NOTIFY> is NotifyPayload. */
export type PayloadOf<T extends PayloadType> = Extract<Payload, { type: T }>;

/** Payload types this codec understands as plain payloads. */
export function isKnownPlainType(t: number): boolean {
  return (t >= PayloadType.SA && t <= PayloadType.TSr) || t === PayloadType.CP || t === PayloadType.EAP;
}

/** Decode the body of a known plain payload type (the reader spans exactly the body). */
export function decodePlainBody(type: number, r: Reader): PlainPayload {
  switch (type) {
    case PayloadType.SA:
      return decodeSaBody(r, type);
    case PayloadType.KE:
      return decodeKeBody(r, type);
    case PayloadType.IDi:
    case PayloadType.IDr:
      return decodeIdBody(r, type);
    case PayloadType.CERT:
      return decodeCertBody(r, type);
    case PayloadType.CERTREQ:
      return decodeCertReqBody(r, type);
    case PayloadType.AUTH:
      return decodeAuthBody(r, type);
    case PayloadType.NONCE:
      return decodeNonceBody(r, type);
    case PayloadType.NOTIFY:
      return decodeNotifyBody(r, type);
    case PayloadType.DELETE:
      return decodeDeleteBody(r, type);
    case PayloadType.VENDOR_ID:
      return decodeVendorIdBody(r, type);
    case PayloadType.TSi:
    case PayloadType.TSr:
      return decodeTsBody(r, type);
    case PayloadType.CP:
      return decodeCpBody(r, type);
    case PayloadType.EAP:
      return decodeEapBody(r, type);
  }
  throw new Error(`decodePlainBody called for unknown payload type ${type}`);
}

/** Encode the body of a plain payload (validating it; IkeError('ENCODE_INVALID') on bad input). */
export function encodePlainBody(p: PlainPayload, w: Writer): void {
  switch (p.type) {
    case PayloadType.SA:
      encodeSaBody(p, w);
      return;
    case PayloadType.KE:
      encodeKeBody(p, w);
      return;
    case PayloadType.IDi:
    case PayloadType.IDr:
      encodeIdBody(p, w);
      return;
    case PayloadType.CERT:
      encodeCertBody(p, w);
      return;
    case PayloadType.CERTREQ:
      encodeCertReqBody(p, w);
      return;
    case PayloadType.AUTH:
      encodeAuthBody(p, w);
      return;
    case PayloadType.NONCE:
      encodeNonceBody(p, w);
      return;
    case PayloadType.NOTIFY:
      encodeNotifyBody(p, w);
      return;
    case PayloadType.DELETE:
      encodeDeleteBody(p, w);
      return;
    case PayloadType.VENDOR_ID:
      encodeVendorIdBody(p, w);
      return;
    case PayloadType.TSi:
    case PayloadType.TSr:
      encodeTsBody(p, w);
      return;
    case PayloadType.CP:
      encodeCpBody(p, w);
      return;
    case PayloadType.EAP:
      encodeEapBody(p, w);
      return;
  }
  invalid(`cannot encode payload type ${String((p as { type: unknown }).type)}`);
}

export type {
  AuthPayload,
  CertPayload,
  CertReqPayload,
  CpPayload,
  DeletePayload,
  EapPayload,
  IdPayload,
  KePayload,
  NoncePayload,
  NotifyPayload,
  SaPayload,
  SkfPayload,
  SkPayload,
  TsPayload,
  VendorIdPayload,
};
