/**
 * Configuration payload (RFC 7296 §3.15).
 *
 *                      1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * | Next Payload  |C| RESERVED    |         Payload Length        |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |   CFG Type    |                    RESERVED                   |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * ~                   Configuration Attributes                    ~
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * Configuration attribute (§3.15.1):
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |R|         Attribute Type      |            Length             |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * ~                             Value                             ~
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 */
import type { PayloadType } from '../../constants.js';
import { checkBytes, checkInt, invalid, type Reader, type Writer } from '../reader.js';
import type { PayloadBase } from './generic.js';

export interface CfgAttribute {
  /** CfgAttributeType value (15 bits; the reserved bit is dropped). */
  type: number;
  value: Uint8Array;
}

export interface CpPayload extends PayloadBase {
  type: PayloadType.CP;
  /** CfgType value. */
  cfgType: number;
  attributes: CfgAttribute[];
}

export function decodeCpBody(r: Reader, type: PayloadType.CP): CpPayload {
  const cfgType = r.u8('cfg type');
  r.skip(3, 'cp reserved');
  const attributes: CfgAttribute[] = [];
  while (r.remaining > 0) {
    const t = r.u16('cfg attribute type') & 0x7fff;
    const len = r.u16('cfg attribute length');
    attributes.push({ type: t, value: r.take(len, 'cfg attribute value') });
  }
  return { type, cfgType, attributes };
}

export function encodeCpBody(p: CpPayload, w: Writer): void {
  w.u8(checkInt(p.cfgType, 'cfg type', 0, 255));
  w.zeros(3);
  if (!Array.isArray(p.attributes)) invalid('cp attributes must be an array');
  for (const a of p.attributes) {
    w.u16(checkInt(a.type, 'cfg attribute type', 0, 0x7fff));
    const v = checkBytes(a.value, 'cfg attribute value');
    w.u16(v.length);
    w.bytes(v);
  }
}
