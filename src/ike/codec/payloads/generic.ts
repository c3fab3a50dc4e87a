/**
 * Generic payload header (RFC 7296 §3.2).
 *
 *                      1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * | Next Payload  |C|  RESERVED   |         Payload Length        |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * Payload Length includes this 4-byte header. C is the critical bit: a receiver that does not understand a payload
 * with C set rejects the whole message (UNSUPPORTED_CRITICAL_PAYLOAD); without C it skips the payload.
 */
import { GENERIC_PAYLOAD_HEADER_LENGTH, PAYLOAD_CRITICAL_FLAG } from '../../constants.js';
import { fail, type Reader } from '../reader.js';

export interface GenericHeader {
  nextPayload: number;
  critical: boolean;
  /** Payload length including the generic header. */
  length: number;
}

export function decodeGenericHeader(r: Reader): GenericHeader {
  const at = r.offset;
  r.need(GENERIC_PAYLOAD_HEADER_LENGTH, 'generic payload header');
  const nextPayload = r.u8('next payload');
  const critical = (r.u8('flags') & PAYLOAD_CRITICAL_FLAG) !== 0;
  const length = r.u16('payload length');
  if (length < GENERIC_PAYLOAD_HEADER_LENGTH) fail('DECODE_BAD_LENGTH', `payload length ${length} < 4`, at);
  if (length - GENERIC_PAYLOAD_HEADER_LENGTH > r.remaining) {
    fail('DECODE_TRUNCATED', `payload length ${length} exceeds the ${r.remaining + 4} bytes left`, at);
  }
  return { nextPayload, critical, length };
}

/** Common fields of every in-memory payload. */
export interface PayloadBase {
  /** Critical bit as sent or to send; RFC 7296 says senders set it only for payloads the receiver must know. */
  critical?: boolean;
}
