/**
 * Traffic Selector payloads TSi and TSr (RFC 7296 §3.13).
 *
 *                      1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * | Next Payload  |C|  RESERVED   |         Payload Length        |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * | Number of TSs |                 RESERVED                      |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * ~                       <Traffic Selectors>                     ~
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * Traffic selector (§3.13.1):
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |   TS Type     |IP Protocol ID*|       Selector Length         |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |           Start Port*         |           End Port*           |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * ~                         Starting Address*                     ~
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * ~                         Ending Address*                       ~
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * (* for TS_IPV4_ADDR_RANGE (4-byte addresses, length 16) and TS_IPV6_ADDR_RANGE (16-byte addresses, length 40).)
 * Other TS types (e.g. RFC 9478 security labels) are kept as opaque bodies after the 4-byte header.
 */
import { type PayloadType, TsType } from '../../constants.js';
import { formatIp, parseIp } from '../ip.js';
import { checkBytes, checkInt, fail, invalid, type Reader, type Writer } from '../reader.js';
import type { PayloadBase } from './generic.js';

/** An address range selector (TS_IPV4_ADDR_RANGE or TS_IPV6_ADDR_RANGE). IP protocol 0 means any. */
export interface AddressRangeSelector {
  tsType: TsType.TS_IPV4_ADDR_RANGE | TsType.TS_IPV6_ADDR_RANGE;
  ipProtocol: number;
  startPort: number;
  endPort: number;
  startAddress: Uint8Array;
  endAddress: Uint8Array;
}

/** A selector of a type this codec does not interpret: its bytes after TS Type and Selector Length. */
export interface OpaqueSelector {
  tsType: number;
  opaque: Uint8Array;
}

export type TrafficSelector = AddressRangeSelector | OpaqueSelector;

export interface TsPayload extends PayloadBase {
  type: PayloadType.TSi | PayloadType.TSr;
  selectors: TrafficSelector[];
}

export function isAddressRange(ts: TrafficSelector): ts is AddressRangeSelector {
  return !('opaque' in ts);
}

export function decodeTsBody(r: Reader, type: PayloadType.TSi | PayloadType.TSr): TsPayload {
  const at = r.offset;
  const count = r.u8('number of TSs');
  r.skip(3, 'ts reserved');
  const selectors: TrafficSelector[] = [];
  for (let i = 0; i < count; i++) {
    const sat = r.offset;
    const tsType = r.u8('ts type');
    const b1 = r.u8('ts ip protocol');
    const length = r.u16('selector length');
    if (length < 4) fail('DECODE_BAD_LENGTH', `selector length ${length} < 4`, sat);
    const s = r.sub(length - 4, 'traffic selector');
    if (tsType === TsType.TS_IPV4_ADDR_RANGE || tsType === TsType.TS_IPV6_ADDR_RANGE) {
      const alen = tsType === TsType.TS_IPV4_ADDR_RANGE ? 4 : 16;
      if (length !== 8 + 2 * alen) fail('DECODE_BAD_LENGTH', `selector length ${length} for TS type ${tsType}`, sat);
      const startPort = s.u16('start port');
      const endPort = s.u16('end port');
      const startAddress = s.take(alen, 'start address');
      const endAddress = s.take(alen, 'end address');
      selectors.push({ tsType, ipProtocol: b1, startPort, endPort, startAddress, endAddress });
    } else {
      // the second byte belongs to the type-specific body; keep it at the front of `opaque`
      const rest = s.rest();
      const opaque = new Uint8Array(rest.length + 1);
      opaque[0] = b1;
      opaque.set(rest, 1);
      selectors.push({ tsType, opaque });
    }
  }
  if (r.remaining !== 0) fail('DECODE_BAD_LENGTH', `${r.remaining} bytes after ${count} traffic selectors`, at);
  return { type, selectors };
}

export function encodeTsBody(p: TsPayload, w: Writer): void {
  if (!Array.isArray(p.selectors) || p.selectors.length > 255) invalid('selectors must be an array of <= 255');
  w.u8(p.selectors.length);
  w.zeros(3);
  for (const ts of p.selectors) {
    const tsType = checkInt(ts.tsType, 'ts type', 0, 255);
    if (!isAddressRange(ts)) {
      const o = checkBytes(ts.opaque, 'opaque selector', 1, 0xffff - 3);
      if (tsType === TsType.TS_IPV4_ADDR_RANGE || tsType === TsType.TS_IPV6_ADDR_RANGE) {
        invalid('address range selectors must not be opaque');
      }
      w.u8(tsType);
      w.u8(o[0]!);
      w.u16(o.length + 3);
      w.bytes(o.subarray(1));
      continue;
    }
    const alen = tsType === TsType.TS_IPV4_ADDR_RANGE ? 4 : tsType === TsType.TS_IPV6_ADDR_RANGE ? 16 : 0;
    if (alen === 0) invalid(`address range with TS type ${tsType}`);
    w.u8(tsType);
    w.u8(checkInt(ts.ipProtocol, 'ip protocol', 0, 255));
    w.u16(8 + 2 * alen);
    w.u16(checkInt(ts.startPort, 'start port', 0, 0xffff));
    w.u16(checkInt(ts.endPort, 'end port', 0, 0xffff));
    w.bytes(checkBytes(ts.startAddress, 'start address', alen, alen));
    w.bytes(checkBytes(ts.endAddress, 'end address', alen, alen));
  }
}

/**
 * A selector for a CIDR prefix (e.g. '198.18.1.0/24', '2001:db8::/32') or a single address, any protocol and port
 * unless given.
 */
export function selectorFromCidr(
  cidr: string,
  options: { ipProtocol?: number; startPort?: number; endPort?: number } = {},
): AddressRangeSelector {
  const slash = cidr.indexOf('/');
  const addr = parseIp(slash < 0 ? cidr : cidr.slice(0, slash));
  const bits = addr.length * 8;
  const prefix = slash < 0 ? bits : Number(cidr.slice(slash + 1));
  if (
    !Number.isInteger(prefix) ||
    prefix < 0 ||
    prefix > bits ||
    (slash >= 0 && !/^\d+$/.test(cidr.slice(slash + 1)))
  ) {
    invalid('bad prefix length');
  }
  const start = addr.slice();
  const end = addr.slice();
  for (let i = 0; i < addr.length; i++) {
    const keep = Math.max(0, Math.min(8, prefix - i * 8));
    const mask = keep === 0 ? 0 : (0xff << (8 - keep)) & 0xff;
    start[i] = addr[i]! & mask;
    end[i] = (addr[i]! & mask) | (~mask & 0xff);
  }
  return {
    tsType: addr.length === 4 ? TsType.TS_IPV4_ADDR_RANGE : TsType.TS_IPV6_ADDR_RANGE,
    ipProtocol: options.ipProtocol ?? 0,
    startPort: options.startPort ?? 0,
    endPort: options.endPort ?? 0xffff,
    startAddress: start,
    endAddress: end,
  };
}

/** Human-readable form, e.g. '198.18.1.0-198.18.1.255 proto 0 ports 0-65535'. */
export function formatSelector(ts: TrafficSelector): string {
  if (!isAddressRange(ts)) return `TS type ${ts.tsType} (${ts.opaque.length} bytes)`;
  return `${formatIp(ts.startAddress)}-${formatIp(ts.endAddress)} proto ${ts.ipProtocol} ports ${ts.startPort}-${ts.endPort}`;
}
