/**
 * Identification payloads IDi and IDr (RFC 7296 §3.5).
 *
 *                      1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * | Next Payload  |C|  RESERVED   |         Payload Length        |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |   ID Type     |                 RESERVED                      |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * ~                   Identification Data                         ~
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * ID types: ID_IPV4_ADDR (4 bytes), ID_FQDN (ASCII, no NUL), ID_RFC822_ADDR, ID_IPV6_ADDR (16 bytes),
 * ID_DER_ASN1_DN (DER Name), ID_DER_ASN1_GN, ID_KEY_ID (opaque). Other types are kept as opaque bytes.
 * The AUTH computation (§2.15) signs the body of this payload: see `idPayloadBody`.
 */
import { IdType, type PayloadType } from '../../constants.js';
import { formatIp, parseIPv4, parseIPv6 } from '../ip.js';
import { checkBytes, checkInt, fail, invalid, type Reader, Writer } from '../reader.js';
import type { PayloadBase } from './generic.js';

export interface IdPayload extends PayloadBase {
  type: PayloadType.IDi | PayloadType.IDr;
  idType: number;
  data: Uint8Array;
}

export function decodeIdBody(r: Reader, type: PayloadType.IDi | PayloadType.IDr): IdPayload {
  const at = r.offset;
  const idType = r.u8('id type');
  r.skip(3, 'id reserved');
  const data = r.rest();
  if (idType === IdType.ID_IPV4_ADDR && data.length !== 4) fail('DECODE_BAD_LENGTH', 'ID_IPV4_ADDR not 4 bytes', at);
  if (idType === IdType.ID_IPV6_ADDR && data.length !== 16) fail('DECODE_BAD_LENGTH', 'ID_IPV6_ADDR not 16 bytes', at);
  return { type, idType, data };
}

export function encodeIdBody(p: IdPayload, w: Writer): void {
  const idType = checkInt(p.idType, 'id type', 0, 255);
  const data = checkBytes(p.data, 'id data');
  if (idType === IdType.ID_IPV4_ADDR && data.length !== 4) invalid('ID_IPV4_ADDR must be 4 bytes');
  if (idType === IdType.ID_IPV6_ADDR && data.length !== 16) invalid('ID_IPV6_ADDR must be 16 bytes');
  w.u8(idType);
  w.zeros(3);
  w.bytes(data);
}

/** The payload body (ID type, reserved, data): "RestOfInitIDPayload"/"RestOfRespIDPayload" of RFC 7296 §2.15. */
export function idPayloadBody(p: IdPayload): Uint8Array {
  const w = new Writer(p.data.length + 4);
  encodeIdBody(p, w);
  return w.finish();
}

/** A typed view of an identity. */
export type Identity =
  | { kind: 'ipv4'; address: string }
  | { kind: 'ipv6'; address: string }
  | { kind: 'fqdn'; name: string }
  | { kind: 'rfc822'; address: string }
  | { kind: 'keyId'; keyId: Uint8Array }
  | { kind: 'dn'; der: Uint8Array }
  | { kind: 'opaque'; idType: number; data: Uint8Array };

const ascii = new TextDecoder('latin1');
const utf8 = new TextEncoder();

/** Interpret an ID payload. FQDN/RFC822 are decoded as Latin-1 (RFC 7296 says ASCII) so every byte round-trips. */
export function identityOf(p: Pick<IdPayload, 'idType' | 'data'>): Identity {
  switch (p.idType) {
    case IdType.ID_IPV4_ADDR:
      if (p.data.length === 4) return { kind: 'ipv4', address: formatIp(p.data) };
      break;
    case IdType.ID_IPV6_ADDR:
      if (p.data.length === 16) return { kind: 'ipv6', address: formatIp(p.data) };
      break;
    case IdType.ID_FQDN:
      return { kind: 'fqdn', name: ascii.decode(p.data) };
    case IdType.ID_RFC822_ADDR:
      return { kind: 'rfc822', address: ascii.decode(p.data) };
    case IdType.ID_KEY_ID:
      return { kind: 'keyId', keyId: p.data.slice() };
    case IdType.ID_DER_ASN1_DN:
      return { kind: 'dn', der: p.data.slice() };
  }
  return { kind: 'opaque', idType: p.idType, data: p.data.slice() };
}

/** Build an ID payload from a typed identity. FQDN and RFC822 must be ASCII without NUL. */
export function idPayload(type: PayloadType.IDi | PayloadType.IDr, id: Identity): IdPayload {
  const text = (s: string, what: string): Uint8Array => {
    // biome-ignore lint/suspicious/noControlCharactersInRegex: NUL and non-ASCII are what we reject
    if (typeof s !== 'string' || s.length === 0 || /[^\x01-\x7f]/.test(s)) invalid(`${what} must be non-empty ASCII`);
    return utf8.encode(s);
  };
  switch (id.kind) {
    case 'ipv4': {
      const a = parseIPv4(id.address);
      if (!a) invalid('not an IPv4 address');
      return { type, idType: IdType.ID_IPV4_ADDR, data: a };
    }
    case 'ipv6': {
      const a = parseIPv6(id.address);
      if (!a) invalid('not an IPv6 address');
      return { type, idType: IdType.ID_IPV6_ADDR, data: a };
    }
    case 'fqdn':
      return { type, idType: IdType.ID_FQDN, data: text(id.name, 'FQDN') };
    case 'rfc822':
      return { type, idType: IdType.ID_RFC822_ADDR, data: text(id.address, 'RFC822 address') };
    case 'keyId':
      return { type, idType: IdType.ID_KEY_ID, data: checkBytes(id.keyId, 'key id', 1) };
    case 'dn':
      return { type, idType: IdType.ID_DER_ASN1_DN, data: checkBytes(id.der, 'DN', 1) };
    case 'opaque':
      return { type, idType: checkInt(id.idType, 'id type', 0, 255), data: checkBytes(id.data, 'id data') };
  }
}
