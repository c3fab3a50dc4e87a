/**
 * Typed errors of the IKE engine. Every error carries a stable `code` (safe to match on, log, and show in status)
 * and never any key material in its message.
 */

export type IkeErrorCode =
  // decoding (src/ike/codec)
  | 'DECODE_TRUNCATED'
  | 'DECODE_BAD_LENGTH'
  | 'DECODE_BAD_VERSION'
  | 'DECODE_BAD_VALUE'
  | 'DECODE_TOO_LARGE'
  | 'DECODE_TOO_MANY'
  | 'DECODE_UNSUPPORTED_CRITICAL_PAYLOAD'
  | 'DECODE_PAYLOAD_RULES'
  | 'DECODE_INTEGRITY'
  // encoding
  | 'ENCODE_INVALID'
  // crypto (src/ike/crypto)
  | 'CRYPTO_INVALID_PUBLIC_VALUE'
  | 'CRYPTO_INVALID_KEY'
  | 'CRYPTO_AUTH_FAILED'
  | 'CRYPTO_UNSUPPORTED'
  /** An input length that no valid use produces (e.g. CBC data not a multiple of the block size). */
  | 'CRYPTO_INVALID_LENGTH'
  /** prf+ asked for more than 255 blocks (RFC 7296 §2.13). */
  | 'CRYPTO_PRF_PLUS_LIMIT'
  // proposals
  | 'PROPOSAL_SYNTAX'
  | 'NO_PROPOSAL_CHOSEN';

export class IkeError extends Error {
  readonly code: IkeErrorCode;
  /** The RFC 7296 notify type to answer with, when the error maps to one (e.g. INVALID_SYNTAX = 7). */
  readonly notify: number | undefined;

  constructor(code: IkeErrorCode, message: string, options?: { notify?: number; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'IkeError';
    this.code = code;
    this.notify = options?.notify;
  }
}

/** Error raised while decoding bytes from the network. */
export class DecodeError extends IkeError {
  /** Byte offset in the input where the problem was found, when known. */
  readonly offset: number | undefined;
  constructor(code: IkeErrorCode, message: string, options?: { notify?: number; offset?: number; cause?: unknown }) {
    super(code, message, options);
    this.name = 'DecodeError';
    this.offset = options?.offset;
  }
}

export class CryptoError extends IkeError {
  constructor(code: IkeErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'CryptoError';
  }
}

export class ProposalError extends IkeError {
  /** The offending token, when a single token is at fault. */
  readonly token: string | undefined;
  constructor(code: IkeErrorCode, message: string, options?: { token?: string; notify?: number }) {
    super(code, message, options);
    this.name = 'ProposalError';
    this.token = options?.token;
  }
}
