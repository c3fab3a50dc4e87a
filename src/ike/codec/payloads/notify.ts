/**
 * Notify payload (RFC 7296 §3.10).
 *
 *                      1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * | Next Payload  |C|  RESERVED   |         Payload Length        |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |  Protocol ID  |   SPI Size    |      Notify Message Type      |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * ~                Security Parameter Index (SPI)                 ~
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * ~                       Notification Data                       ~
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * Types below 16384 are errors (§3.10.1). Structured data of the types the engine uses:
 *  INVALID_KE_PAYLOAD          2-byte accepted KE method (§1.3)
 *  NAT_DETECTION_*_IP          20-byte SHA-1 hash (§2.23)
 *  COOKIE                      1..64 bytes (§2.6)
 *  REKEY_SA                    protocol ESP/AH, 4-byte SPI, no data (§1.3.3)
 *  SET_WINDOW_SIZE             4-byte window size (§2.3)
 *  SIGNATURE_HASH_ALGORITHMS   list of 2-byte hash algorithm ids (RFC 7427 §4)
 *  USE_TRANSPORT_MODE, ESP_TFC_PADDING_NOT_SUPPORTED, NON_FIRST_FRAGMENTS_ALSO, IKEV2_FRAGMENTATION_SUPPORTED
 *  (RFC 7383), CHILDLESS_IKEV2_SUPPORTED (RFC 6023): no data.
 * The decoder rejects these types when their data does not have that structure (INVALID_SYNTAX).
 */
import { NOTIFY_ERROR_MAX, NotifyType, PayloadType, ProtocolId } from '../../constants.js';
import { checkBytes, checkInt, fail, invalid, type Reader, type Writer } from '../reader.js';
import type { PayloadBase } from './generic.js';

export interface NotifyPayload extends PayloadBase {
  type: PayloadType.NOTIFY;
  /** Protocol ID (0 when no SA is concerned, 1 IKE, 2 AH, 3 ESP). */
  protocol: number;
  spi: Uint8Array;
  notifyType: number;
  data: Uint8Array;
}

/** Expected data length per type (undefined: free-form; [min, max] range). */
const DATA_LENGTH: ReadonlyMap<number, readonly [number, number]> = new Map<number, readonly [number, number]>([
  [NotifyType.INVALID_KE_PAYLOAD, [2, 2]],
  [NotifyType.NAT_DETECTION_SOURCE_IP, [20, 20]],
  [NotifyType.NAT_DETECTION_DESTINATION_IP, [20, 20]],
  [NotifyType.COOKIE, [1, 64]],
  [NotifyType.REKEY_SA, [0, 0]],
  [NotifyType.SET_WINDOW_SIZE, [4, 4]],
  [NotifyType.USE_TRANSPORT_MODE, [0, 0]],
  [NotifyType.ESP_TFC_PADDING_NOT_SUPPORTED, [0, 0]],
  [NotifyType.NON_FIRST_FRAGMENTS_ALSO, [0, 0]],
  [NotifyType.IKEV2_FRAGMENTATION_SUPPORTED, [0, 0]],
  [NotifyType.CHILDLESS_IKEV2_SUPPORTED, [0, 0]],
]);

/** Problem with a notify's structure, or undefined when it is well formed. */
function notifyProblem(notifyType: number, protocol: number, spi: Uint8Array, data: Uint8Array): string | undefined {
  const range = DATA_LENGTH.get(notifyType);
  if (range && (data.length < range[0] || data.length > range[1])) {
    return `notify ${notifyType} data of ${data.length} bytes, expected ${range[0]}..${range[1]}`;
  }
  if (notifyType === NotifyType.SIGNATURE_HASH_ALGORITHMS && data.length % 2 !== 0) {
    return 'SIGNATURE_HASH_ALGORITHMS data not a list of 16-bit values';
  }
  if (
    notifyType === NotifyType.REKEY_SA &&
    ((protocol !== ProtocolId.ESP && protocol !== ProtocolId.AH) || spi.length !== 4)
  ) {
    return 'REKEY_SA needs protocol ESP/AH and a 4-byte SPI';
  }
  return undefined;
}

export function decodeNotifyBody(r: Reader, type: PayloadType.NOTIFY): NotifyPayload {
  const at = r.offset;
  const protocol = r.u8('notify protocol');
  const spiSize = r.u8('notify spi size');
  const notifyType = r.u16('notify type');
  const spi = r.take(spiSize, 'notify spi');
  const data = r.rest();
  const problem = notifyProblem(notifyType, protocol, spi, data);
  if (problem) fail('DECODE_BAD_VALUE', problem, at);
  return { type, protocol, spi, notifyType, data };
}

export function encodeNotifyBody(p: NotifyPayload, w: Writer): void {
  const protocol = checkInt(p.protocol, 'notify protocol', 0, 255);
  const spi = checkBytes(p.spi, 'notify spi', 0, 255);
  const notifyType = checkInt(p.notifyType, 'notify type', 0, 0xffff);
  const data = checkBytes(p.data, 'notify data');
  const problem = notifyProblem(notifyType, protocol, spi, data);
  if (problem) invalid(problem);
  w.u8(protocol);
  w.u8(spi.length);
  w.u16(notifyType);
  w.bytes(spi);
  w.bytes(data);
}

/** Build a notify; protocol defaults to 0 and SPI to empty (a notify about the IKE SA or no SA). */
export function notify(
  notifyType: NotifyType | number,
  options: { data?: Uint8Array; protocol?: number; spi?: Uint8Array; critical?: boolean } = {},
): NotifyPayload {
  const p: NotifyPayload = {
    type: PayloadType.NOTIFY,
    protocol: options.protocol ?? 0,
    spi: options.spi ?? new Uint8Array(0),
    notifyType,
    data: options.data ?? new Uint8Array(0),
  };
  if (options.critical) p.critical = true;
  return p;
}

export function isErrorNotify(n: Pick<NotifyPayload, 'notifyType'>): boolean {
  return n.notifyType <= NOTIFY_ERROR_MAX;
}

function u16s(values: readonly number[]): Uint8Array {
  const out = new Uint8Array(values.length * 2);
  values.forEach((v, i) => {
    checkInt(v, 'value', 0, 0xffff);
    out[2 * i] = v >>> 8;
    out[2 * i + 1] = v & 0xff;
  });
  return out;
}

function expect(n: NotifyPayload, t: NotifyType): void {
  if (n.notifyType !== t) fail('DECODE_BAD_VALUE', `notify ${n.notifyType} is not ${NotifyType[t]}`);
  const problem = notifyProblem(n.notifyType, n.protocol, n.spi, n.data);
  if (problem) fail('DECODE_BAD_VALUE', problem);
}

/** INVALID_KE_PAYLOAD carrying the KE method the responder accepts. */
export function invalidKePayloadNotify(group: number): NotifyPayload {
  return notify(NotifyType.INVALID_KE_PAYLOAD, { data: u16s([group]) });
}
export function invalidKeGroup(n: NotifyPayload): number {
  expect(n, NotifyType.INVALID_KE_PAYLOAD);
  return (n.data[0]! << 8) | n.data[1]!;
}

/** SIGNATURE_HASH_ALGORITHMS (RFC 7427 §4): a list of HashAlgorithm values. */
export function signatureHashAlgorithmsNotify(algorithms: readonly number[]): NotifyPayload {
  return notify(NotifyType.SIGNATURE_HASH_ALGORITHMS, { data: u16s(algorithms) });
}
export function signatureHashAlgorithms(n: NotifyPayload): number[] {
  expect(n, NotifyType.SIGNATURE_HASH_ALGORITHMS);
  const out: number[] = [];
  for (let i = 0; i + 1 < n.data.length; i += 2) out.push((n.data[i]! << 8) | n.data[i + 1]!);
  return out;
}

/** SET_WINDOW_SIZE (RFC 7296 §2.3). */
export function setWindowSizeNotify(size: number): NotifyPayload {
  checkInt(size, 'window size', 1, 0xffffffff);
  const d = new Uint8Array([size >>> 24, (size >>> 16) & 0xff, (size >>> 8) & 0xff, size & 0xff]);
  return notify(NotifyType.SET_WINDOW_SIZE, { data: d });
}
export function windowSize(n: NotifyPayload): number {
  expect(n, NotifyType.SET_WINDOW_SIZE);
  const d = n.data;
  return ((d[0]! << 24) | (d[1]! << 16) | (d[2]! << 8) | d[3]!) >>> 0;
}

/** NAT_DETECTION_SOURCE_IP / NAT_DETECTION_DESTINATION_IP with a 20-byte SHA-1 hash (RFC 7296 §2.23). */
export function natDetectionNotify(
  which: NotifyType.NAT_DETECTION_SOURCE_IP | NotifyType.NAT_DETECTION_DESTINATION_IP,
  hash: Uint8Array,
): NotifyPayload {
  return notify(which, { data: checkBytes(hash, 'NAT detection hash', 20, 20) });
}
export function natDetectionHash(n: NotifyPayload): Uint8Array {
  if (n.notifyType !== NotifyType.NAT_DETECTION_SOURCE_IP) expect(n, NotifyType.NAT_DETECTION_DESTINATION_IP);
  else expect(n, NotifyType.NAT_DETECTION_SOURCE_IP);
  return n.data;
}

/** COOKIE (RFC 7296 §2.6), 1..64 bytes. */
export function cookieNotify(cookie: Uint8Array): NotifyPayload {
  return notify(NotifyType.COOKIE, { data: checkBytes(cookie, 'cookie', 1, 64) });
}
export function cookieOf(n: NotifyPayload): Uint8Array {
  expect(n, NotifyType.COOKIE);
  return n.data;
}

/** REKEY_SA naming the Child SA (its inbound SPI from the sender's view) being rekeyed. */
export function rekeySaNotify(protocol: ProtocolId.ESP | ProtocolId.AH, spi: Uint8Array): NotifyPayload {
  return notify(NotifyType.REKEY_SA, { protocol, spi: checkBytes(spi, 'REKEY_SA spi', 4, 4) });
}
export function rekeySaSpi(n: NotifyPayload): { protocol: number; spi: Uint8Array } {
  expect(n, NotifyType.REKEY_SA);
  return { protocol: n.protocol, spi: n.spi };
}
