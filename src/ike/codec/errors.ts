/** Codec-specific error classes (all are DecodeError, so callers may match on `code` alone). */
import { NotifyType } from '../constants.js';
import { DecodeError } from '../errors.js';

/**
 * A payload of a type we do not implement arrived with the critical bit set (RFC 7296 §2.5). The engine answers
 * with UNSUPPORTED_CRITICAL_PAYLOAD whose notification data is the one-byte `payloadType`.
 */
export class UnsupportedCriticalPayloadError extends DecodeError {
  readonly payloadType: number;
  constructor(payloadType: number, offset: number) {
    super('DECODE_UNSUPPORTED_CRITICAL_PAYLOAD', `unsupported critical payload type ${payloadType}`, {
      notify: NotifyType.UNSUPPORTED_CRITICAL_PAYLOAD,
      offset,
    });
    this.name = 'UnsupportedCriticalPayloadError';
    this.payloadType = payloadType;
  }
}
