/**
 * Delete payload (RFC 7296 §3.11).
 *
 *                      1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * | Next Payload  |C|  RESERVED   |         Payload Length        |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * | Protocol ID   |   SPI Size    |          Num of SPIs          |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * ~               Security Parameter Index(es) (SPI)              ~
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * Deleting the IKE SA: protocol 1, SPI size 0, no SPIs. Child SAs: protocol ESP/AH, SPI size 4.
 */
import { type PayloadType, ProtocolId } from '../../constants.js';
import { checkBytes, checkInt, fail, invalid, type Reader, type Writer } from '../reader.js';
import type { PayloadBase } from './generic.js';

export interface DeletePayload extends PayloadBase {
  type: PayloadType.DELETE;
  protocol: number;
  /** SPI size: 0 for IKE, 4 for ESP/AH. */
  spiSize: number;
  spis: Uint8Array[];
}

export function decodeDeleteBody(r: Reader, type: PayloadType.DELETE): DeletePayload {
  const at = r.offset;
  const protocol = r.u8('delete protocol');
  const spiSize = r.u8('delete spi size');
  const count = r.u16('delete num spis');
  if (protocol === ProtocolId.IKE && (spiSize !== 0 || count !== 0)) {
    fail('DECODE_BAD_VALUE', 'IKE SA delete with SPIs', at);
  }
  if (spiSize === 0 && count !== 0) fail('DECODE_BAD_VALUE', 'delete with SPI size 0 and SPIs', at);
  if (spiSize * count !== r.remaining) fail('DECODE_BAD_LENGTH', `delete of ${count} SPIs of ${spiSize} bytes`, at);
  const spis: Uint8Array[] = [];
  for (let i = 0; i < count; i++) spis.push(r.take(spiSize, 'delete spi'));
  return { type, protocol, spiSize, spis };
}

export function encodeDeleteBody(p: DeletePayload, w: Writer): void {
  const protocol = checkInt(p.protocol, 'delete protocol', 0, 255);
  const spiSize = checkInt(p.spiSize, 'delete spi size', 0, 255);
  if (!Array.isArray(p.spis) || p.spis.length > 0xffff) invalid('delete spis must be an array');
  if (protocol === ProtocolId.IKE && (spiSize !== 0 || p.spis.length !== 0)) invalid('IKE SA delete takes no SPIs');
  if (spiSize === 0 && p.spis.length !== 0) invalid('SPI size 0 with SPIs');
  w.u8(protocol);
  w.u8(spiSize);
  w.u16(p.spis.length);
  for (const s of p.spis) w.bytes(checkBytes(s, 'delete spi', spiSize, spiSize));
}
