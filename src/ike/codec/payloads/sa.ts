/**
 * Security Association payload (RFC 7296 §3.3).
 *
 *                      1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * | Next Payload  |C|  RESERVED   |         Payload Length        |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                                                               |
 * ~                          <Proposals>                          ~
 * |                                                               |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * Proposal substructure (§3.3.1):
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * | Last Substruc |   RESERVED    |         Proposal Length       |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * | Proposal Num  |  Protocol ID  |    SPI Size   |Num  Transforms|
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * ~                        SPI (variable)                         ~
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * ~                        <Transforms>                           ~
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * Last Substruc: 0 for the last proposal, 2 when another follows.
 *
 * Transform substructure (§3.3.2):
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * | Last Substruc |   RESERVED    |        Transform Length       |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |Transform Type |   RESERVED    |          Transform ID         |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * ~                      Transform Attributes                     ~
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * Last Substruc: 0 for the last transform of a proposal, 3 when another follows.
 *
 * Data attribute (§3.3.5):
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |A|       Attribute Type        |    AF=0  Attribute Length     |
 * |F|                             |    AF=1  Attribute Value      |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                   AF=0  Attribute Value                       |
 * |                   AF=1  Not Transmitted                       |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * AF=1 is TV (2-byte value in the header), AF=0 is TLV. Key Length (type 14) is TV, in bits.
 * Unknown attributes are kept (the negotiator rejects transforms whose attributes it does not understand).
 */
import { ATTRIBUTE_FORMAT_TV, type PayloadType, TransformAttributeType } from '../../constants.js';
import { checkBytes, checkInt, fail, invalid, type Reader, type Writer } from '../reader.js';
import type { PayloadBase } from './generic.js';
import type { Proposal, Transform, TransformAttribute } from './sa-types.js';

export type { Proposal, Transform, TransformAttribute } from './sa-types.js';

export interface SaPayload extends PayloadBase {
  type: PayloadType.SA;
  proposals: Proposal[];
}

const LAST = 0;
const MORE_PROPOSALS = 2;
const MORE_TRANSFORMS = 3;
/** Attributes per transform we accept (each takes at least 4 bytes, so this only bounds pathological input). */
const MAX_ATTRIBUTES = 64;

export function decodeSaBody(r: Reader, type: PayloadType.SA): SaPayload {
  const proposals: Proposal[] = [];
  let last = -1;
  while (r.remaining > 0) {
    if (last === LAST) fail('DECODE_BAD_VALUE', 'data after the last proposal', r.offset);
    if (proposals.length >= 255) fail('DECODE_TOO_MANY', 'more than 255 proposals', r.offset);
    const at = r.offset;
    last = r.u8('proposal last substruc');
    if (last !== LAST && last !== MORE_PROPOSALS) fail('DECODE_BAD_VALUE', `proposal last substruc ${last}`, at);
    r.skip(1, 'proposal reserved');
    const length = r.u16('proposal length');
    if (length < 8) fail('DECODE_BAD_LENGTH', `proposal length ${length} < 8`, at);
    const pr = r.sub(length - 4, 'proposal');
    const num = pr.u8('proposal num');
    const protocol = pr.u8('protocol id');
    const spiSize = pr.u8('spi size');
    const numTransforms = pr.u8('num transforms');
    const spi = pr.take(spiSize, 'proposal spi');
    const transforms: Transform[] = [];
    let tlast = -1;
    while (pr.remaining > 0) {
      if (tlast === LAST) fail('DECODE_BAD_VALUE', 'data after the last transform', pr.offset);
      const t = decodeTransform(pr);
      tlast = t.last;
      transforms.push(t.transform);
    }
    if (transforms.length !== numTransforms) {
      fail('DECODE_BAD_VALUE', `proposal says ${numTransforms} transforms, found ${transforms.length}`, at);
    }
    if (transforms.length > 0 && tlast !== LAST) fail('DECODE_BAD_VALUE', 'last transform not marked last', at);
    proposals.push({ num, protocol, spi, transforms });
  }
  if (proposals.length > 0 && last !== LAST) fail('DECODE_BAD_VALUE', 'last proposal not marked last', r.offset);
  return { type, proposals };
}

function decodeTransform(r: Reader): { transform: Transform; last: number } {
  const at = r.offset;
  const last = r.u8('transform last substruc');
  if (last !== LAST && last !== MORE_TRANSFORMS) fail('DECODE_BAD_VALUE', `transform last substruc ${last}`, at);
  r.skip(1, 'transform reserved');
  const length = r.u16('transform length');
  if (length < 8) fail('DECODE_BAD_LENGTH', `transform length ${length} < 8`, at);
  const tr = r.sub(length - 4, 'transform');
  const type = tr.u8('transform type');
  tr.skip(1, 'transform reserved');
  const id = tr.u16('transform id');
  const t: Transform = { type, id };
  let attributes: TransformAttribute[] | undefined;
  let count = 0;
  while (tr.remaining > 0) {
    if (++count > MAX_ATTRIBUTES) fail('DECODE_TOO_MANY', 'too many transform attributes', tr.offset);
    const aat = tr.offset;
    const word = tr.u16('attribute type');
    const attrType = word & 0x7fff;
    if (word & ATTRIBUTE_FORMAT_TV) {
      const value = tr.u16('attribute value');
      if (attrType === TransformAttributeType.KEY_LENGTH) {
        if (t.keyLength !== undefined) fail('DECODE_BAD_VALUE', 'duplicate key length attribute', aat);
        t.keyLength = value;
        continue;
      }
      attributes = attributes ?? [];
      attributes.push({ type: attrType, value });
    } else {
      const len = tr.u16('attribute length');
      attributes = attributes ?? [];
      attributes.push({ type: attrType, value: tr.take(len, 'attribute value') });
    }
  }
  if (attributes) t.attributes = attributes;
  return { transform: t, last };
}

export function encodeSaBody(p: SaPayload, w: Writer): void {
  if (!Array.isArray(p.proposals)) invalid('SA proposals must be an array');
  if (p.proposals.length > 255) invalid('more than 255 proposals');
  p.proposals.forEach((pr, i) => {
    const start = w.length;
    w.u8(i === p.proposals.length - 1 ? LAST : MORE_PROPOSALS);
    w.u8(0);
    w.u16(0);
    w.u8(checkInt(pr.num, 'proposal num', 0, 255));
    w.u8(checkInt(pr.protocol, 'proposal protocol', 0, 255));
    const spi = checkBytes(pr.spi, 'proposal spi', 0, 255);
    w.u8(spi.length);
    if (!Array.isArray(pr.transforms) || pr.transforms.length > 255) invalid('transforms must be an array of <= 255');
    w.u8(pr.transforms.length);
    w.bytes(spi);
    pr.transforms.forEach((t, j) => {
      encodeTransform(t, j === pr.transforms.length - 1, w);
    });
    w.patchU16(start + 2, w.length - start, 'proposal length');
  });
}

function encodeTransform(t: Transform, isLast: boolean, w: Writer): void {
  const start = w.length;
  w.u8(isLast ? LAST : MORE_TRANSFORMS);
  w.u8(0);
  w.u16(0);
  w.u8(checkInt(t.type, 'transform type', 0, 255));
  w.u8(0);
  w.u16(checkInt(t.id, 'transform id', 0, 0xffff));
  if (t.keyLength !== undefined) {
    w.u16(ATTRIBUTE_FORMAT_TV | TransformAttributeType.KEY_LENGTH);
    w.u16(checkInt(t.keyLength, 'key length', 0, 0xffff));
  }
  for (const a of t.attributes ?? []) {
    checkInt(a.type, 'attribute type', 0, 0x7fff);
    if (typeof a.value === 'number') {
      if (a.type === TransformAttributeType.KEY_LENGTH) invalid('key length belongs in Transform.keyLength');
      w.u16(ATTRIBUTE_FORMAT_TV | a.type);
      w.u16(checkInt(a.value, 'attribute value', 0, 0xffff));
    } else {
      const v = checkBytes(a.value, 'attribute value', 0, 0xffff);
      w.u16(a.type);
      w.u16(v.length);
      w.bytes(v);
    }
  }
  w.patchU16(start + 2, w.length - start, 'transform length');
}
