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
  | 'NO_PROPOSAL_CHOSEN'
  // certificate authentication (src/ike/sa/certificates.ts, src/ike/crypto/signature.ts)
  | CertificateErrorCode
  | 'AUTH_UNSUPPORTED_ALGORITHM'
  | 'AUTH_METHOD_MISMATCH'
  | 'AUTH_SIGNATURE_INVALID';

/** Why a certificate (chain) or a certificate configuration was refused; one code per cause. */
export type CertificateErrorCode =
  /** Not a parsable DER X.509 certificate. */
  | 'CERT_INVALID'
  /** The peer sent no CERT payload (it has to: we know no raw public keys). */
  | 'CERT_MISSING'
  | 'CERT_EXPIRED'
  | 'CERT_NOT_YET_VALID'
  /** No chain to one of the trusted CAs (issuer unknown). */
  | 'CERT_UNTRUSTED'
  /** A certificate's signature does not verify with its issuer's key. */
  | 'CERT_BAD_SIGNATURE'
  /** An issuer without basicConstraints CA:TRUE. */
  | 'CERT_ISSUER_NOT_CA'
  /** Key usage forbids the use: an issuer without keyCertSign, or an end-entity EKU without an IKE purpose. */
  | 'CERT_KEY_USAGE'
  | 'CERT_CHAIN_TOO_LONG'
  /** The identity in the ID payload is not in the certificate (subjectAltName or subject DN). */
  | 'CERT_IDENTITY_MISMATCH'
  /** Our own private key does not belong to our certificate (a configuration error). */
  | 'CERT_KEY_MISMATCH';

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

/** A certificate or chain was refused. Messages name certificates by subject, never key material. */
export class CertificateError extends IkeError {
  declare readonly code: CertificateErrorCode;
  constructor(code: CertificateErrorCode, message: string) {
    super(code, message);
    this.name = 'CertificateError';
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
