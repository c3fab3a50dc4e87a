/**
 * IKE header (RFC 7296 §3.1).
 *
 *                      1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                       IKE SA Initiator's SPI                  |
 * |                                                               |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                       IKE SA Responder's SPI                  |
 * |                                                               |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |  Next Payload | MjVer | MnVer | Exchange Type |     Flags     |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                          Message ID                           |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                            Length                             |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * Flags: bit 3 (0x08) Initiator, bit 4 (0x10) Version, bit 5 (0x20) Response; the rest are reserved.
 */
import { IKE_HEADER_LENGTH, IKE_VERSION, MAX_IKE_MESSAGE_LENGTH, NotifyType } from '../constants.js';
import { DecodeError } from '../errors.js';
import { checkBytes, checkInt, fail, type Writer } from './reader.js';

export interface IkeHeader {
  /** 8 bytes. */
  initiatorSpi: Uint8Array;
  /** 8 bytes; all zero in the first IKE_SA_INIT request. */
  responderSpi: Uint8Array;
  /** First payload of the (cleartext) chain. */
  nextPayload: number;
  majorVersion: number;
  minorVersion: number;
  exchangeType: number;
  /** Raw flags byte (see HeaderFlag). */
  flags: number;
  /** Unsigned 32-bit message ID. */
  messageId: number;
  /** Total message length including the header. */
  length: number;
}

/**
 * Parse the 28 header bytes without validating version or length against the buffer: for answering
 * INVALID_MAJOR_VERSION / INVALID_IKE_SPI from a message that does not otherwise decode.
 * Throws DecodeError('DECODE_TRUNCATED') when fewer than 28 bytes are given.
 */
export function peekHeader(bytes: Uint8Array): IkeHeader {
  if (!(bytes instanceof Uint8Array)) fail('DECODE_BAD_VALUE', 'input is not a Uint8Array');
  if (bytes.length < IKE_HEADER_LENGTH) fail('DECODE_TRUNCATED', `IKE header: ${bytes.length} bytes < 28`, 0);
  const b = plainView(bytes);
  return {
    initiatorSpi: b.slice(0, 8),
    responderSpi: b.slice(8, 16),
    nextPayload: b[16]!,
    majorVersion: b[17]! >>> 4,
    minorVersion: b[17]! & 0x0f,
    exchangeType: b[18]!,
    flags: b[19]!,
    messageId: ((b[20]! << 24) | (b[21]! << 16) | (b[22]! << 8) | b[23]!) >>> 0,
    length: ((b[24]! << 24) | (b[25]! << 16) | (b[26]! << 8) | b[27]!) >>> 0,
  };
}

/**
 * A plain Uint8Array view of the input: for a Node Buffer `slice` would return a view, not a copy, and decoded
 * payloads must not alias a receive buffer the caller may reuse.
 */
export function plainView(bytes: Uint8Array): Uint8Array {
  return Object.getPrototypeOf(bytes) === Uint8Array.prototype
    ? bytes
    : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Parse and validate the header: major version 2, length equal to the buffer and within MAX_IKE_MESSAGE_LENGTH. */
export function decodeHeader(bytes: Uint8Array): IkeHeader {
  const h = peekHeader(bytes);
  if (h.majorVersion !== 2) {
    throw new DecodeError('DECODE_BAD_VERSION', `IKE major version ${h.majorVersion} is not 2`, {
      notify: NotifyType.INVALID_MAJOR_VERSION,
      offset: 17,
    });
  }
  if (h.length < IKE_HEADER_LENGTH) fail('DECODE_BAD_LENGTH', `IKE header length ${h.length} < 28`, 24);
  if (h.length > MAX_IKE_MESSAGE_LENGTH) fail('DECODE_TOO_LARGE', `IKE message length ${h.length} too large`, 24);
  if (h.length > bytes.length) fail('DECODE_TRUNCATED', `IKE length ${h.length} > ${bytes.length} bytes received`, 24);
  if (h.length < bytes.length) fail('DECODE_BAD_LENGTH', `IKE length ${h.length} < ${bytes.length} bytes received`, 24);
  return h;
}

/** Header fields a caller provides for encoding (version and length are computed). */
export interface HeaderFields {
  initiatorSpi: Uint8Array;
  responderSpi: Uint8Array;
  exchangeType: number;
  flags: number;
  messageId: number;
}

export function encodeHeader(w: Writer, h: HeaderFields, nextPayload: number, length: number): void {
  checkBytes(h.initiatorSpi, 'initiatorSpi', 8, 8);
  checkBytes(h.responderSpi, 'responderSpi', 8, 8);
  w.bytes(h.initiatorSpi);
  w.bytes(h.responderSpi);
  w.u8(nextPayload, 'next payload');
  w.u8(IKE_VERSION);
  w.u8(checkInt(h.exchangeType, 'exchangeType', 0, 255));
  w.u8(checkInt(h.flags, 'flags', 0, 255));
  w.u32(checkInt(h.messageId, 'messageId', 0, 0xffffffff));
  w.u32(length, 'message length');
}
