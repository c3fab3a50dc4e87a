/**
 * Events the engine reports to its host (the agent turns them into status, metrics and logs). They carry SPIs,
 * algorithms and reasons, never key material.
 */

import type { CertificateErrorCode } from '../errors.js';

/** Stable failure codes, shown in status as `lastError.code`. */
export type FailureCode =
  | 'NO_PROPOSAL_CHOSEN'
  | 'INVALID_KE_PAYLOAD'
  | 'AUTHENTICATION_FAILED'
  | 'IDENTITY_MISMATCH'
  | 'TS_UNACCEPTABLE'
  | 'INVALID_SYNTAX'
  | 'TEMPORARY_FAILURE'
  | 'CHILD_SA_NOT_FOUND'
  | 'PEER_ERROR'
  | 'RETRANSMITS_EXHAUSTED'
  | 'HALF_OPEN_TIMEOUT'
  | 'KERNEL_ERROR'
  | 'CRYPTO_ERROR'
  | 'PROTOCOL_ERROR'
  | 'HARD_EXPIRY'
  // certificate authentication: the codes of CertificateError / SignatureError
  | CertificateErrorCode
  | 'AUTH_UNSUPPORTED_ALGORITHM'
  | 'AUTH_METHOD_MISMATCH'
  | 'AUTH_SIGNATURE_INVALID'
  /** Our own credentials could not be encoded (e.g. a DN as local identity). */
  | 'ENCODE_INVALID';

export interface Failure {
  code: FailureCode;
  /** Human explanation: what was offered, what the peer answered, what would fix it. No key material. */
  message: string;
  /** The notify type behind it, when the peer sent one or we answered with one. */
  notify?: number;
}

export interface IkeSaRef {
  /** Peer configuration name. */
  peer: string;
  uid: number;
  spiI: string;
  spiR: string;
}

export interface ChildSaRef extends IkeSaRef {
  child: string;
  childUid: number;
  reqid: number;
  spiIn: number;
  spiOut: number;
}

export type EngineEvent =
  | { type: 'ike-established'; sa: IkeSaRef; algorithms: string; natLocal: boolean; natRemote: boolean }
  | { type: 'ike-rekeyed'; old: IkeSaRef; sa: IkeSaRef }
  | { type: 'ike-deleted'; sa: IkeSaRef; reason: string }
  | { type: 'ike-failed'; sa: IkeSaRef; failure: Failure }
  | { type: 'child-installed'; sa: ChildSaRef; algorithms: string; rekeyOf?: number }
  | { type: 'child-deleted'; sa: ChildSaRef; reason: string }
  | { type: 'child-failed'; sa: IkeSaRef; child: string; failure: Failure }
  | { type: 'peer-dead'; sa: IkeSaRef }
  | { type: 'kernel-error'; sa: IkeSaRef; operation: string; message: string };
