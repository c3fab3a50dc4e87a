/**
 * What each supported transform ID means for key material, IVs and ICVs. One table per transform type
 * (IANA "IKEv2 Transform Type 1/2/3" registries); used for the IKE SA (SK payloads, SKEYSEED split) and for ESP
 * CHILD SAs (KEYMAT split), which use the same transform IDs and the same key material layout.
 *
 * Unknown or unsupported IDs throw CryptoError('CRYPTO_UNSUPPORTED').
 */
import { EncrId, IntegId, nameOf, PrfId } from '../constants.js';
import { CryptoError } from '../errors.js';
import type { AeadName, HashName } from './provider.js';

export interface EncrTransform {
  readonly id: EncrId;
  readonly name: string;
  /** 'aes-cbc' for the encrypt-then-MAC cipher, otherwise the AEAD algorithm. */
  readonly cipher: 'aes-cbc' | AeadName;
  readonly aead: boolean;
  /** Allowed key lengths in bits (the Key Length attribute, RFC 7296 §3.3.5). */
  readonly keyLengths: readonly number[];
  /** Whether the Key Length attribute is required (AES) or must be absent (ChaCha20-Poly1305, RFC 7634 §3). */
  readonly keyLengthAttribute: boolean;
  /** Salt bytes appended to the key in the key material (RFC 5282 §7.1, RFC 4106 §8.1, RFC 7634 §2). */
  readonly saltLength: number;
  /** Bytes of explicit IV carried in each SK payload / ESP packet. */
  readonly ivLength: number;
  /** AEAD tag bytes (0 for non-AEAD: the ICV comes from the INTEG transform). */
  readonly icvLength: number;
  /** Plaintext (including padding and pad length) must be a multiple of this. */
  readonly blockSize: number;
}

export interface IntegTransform {
  readonly id: IntegId;
  readonly name: string;
  readonly hash: HashName;
  /** Key length in bytes: the hash output length (RFC 4868 §2.1.1, RFC 2404 §3). */
  readonly keyLength: number;
  /** Truncated ICV length in bytes. */
  readonly icvLength: number;
}

export interface PrfTransform {
  readonly id: PrfId;
  readonly name: string;
  readonly hash: HashName;
  /** Preferred key length in bytes (RFC 7296 §2.13, RFC 4868 §2.1.2): the output length for HMAC PRFs. */
  readonly keyLength: number;
  readonly outputLength: number;
}

const AES_KEY_LENGTHS = [128, 192, 256] as const;

function aesGcm(id: EncrId, icvLength: number): EncrTransform {
  return {
    id,
    name: nameOf(EncrId, id),
    cipher: 'aes-gcm',
    aead: true,
    keyLengths: AES_KEY_LENGTHS,
    keyLengthAttribute: true,
    saltLength: 4,
    ivLength: 8,
    icvLength,
    blockSize: 1,
  };
}

const ENCR: ReadonlyMap<number, EncrTransform> = new Map<number, EncrTransform>([
  [
    EncrId.AES_CBC,
    {
      id: EncrId.AES_CBC,
      name: 'AES_CBC',
      cipher: 'aes-cbc',
      aead: false,
      keyLengths: AES_KEY_LENGTHS,
      keyLengthAttribute: true,
      saltLength: 0,
      ivLength: 16,
      icvLength: 0,
      blockSize: 16,
    },
  ],
  [EncrId.AES_GCM_8, aesGcm(EncrId.AES_GCM_8, 8)],
  [EncrId.AES_GCM_12, aesGcm(EncrId.AES_GCM_12, 12)],
  [EncrId.AES_GCM_16, aesGcm(EncrId.AES_GCM_16, 16)],
  [
    EncrId.CHACHA20_POLY1305,
    {
      id: EncrId.CHACHA20_POLY1305,
      name: 'CHACHA20_POLY1305',
      cipher: 'chacha20-poly1305',
      aead: true,
      keyLengths: [256],
      keyLengthAttribute: false,
      saltLength: 4,
      ivLength: 8,
      icvLength: 16,
      blockSize: 1,
    },
  ],
]);

function integ(id: IntegId, hash: HashName, keyLength: number, icvLength: number): IntegTransform {
  return { id, name: nameOf(IntegId, id), hash, keyLength, icvLength };
}

const INTEG: ReadonlyMap<number, IntegTransform> = new Map<number, IntegTransform>([
  // RFC 2404 (HMAC-SHA-1-96), RFC 4868 §2.1 (HMAC-SHA-256-128 / -384-192 / -512-256).
  [IntegId.HMAC_SHA1_96, integ(IntegId.HMAC_SHA1_96, 'sha1', 20, 12)],
  [IntegId.HMAC_SHA2_256_128, integ(IntegId.HMAC_SHA2_256_128, 'sha256', 32, 16)],
  [IntegId.HMAC_SHA2_384_192, integ(IntegId.HMAC_SHA2_384_192, 'sha384', 48, 24)],
  [IntegId.HMAC_SHA2_512_256, integ(IntegId.HMAC_SHA2_512_256, 'sha512', 64, 32)],
]);

function prf(id: PrfId, hash: HashName, length: number): PrfTransform {
  return { id, name: nameOf(PrfId, id), hash, keyLength: length, outputLength: length };
}

const PRF: ReadonlyMap<number, PrfTransform> = new Map<number, PrfTransform>([
  // RFC 2104 / RFC 7296 §3.3.2 (PRF_HMAC_SHA1), RFC 4868 §2.1.2 (PRF_HMAC_SHA2_256/384/512).
  [PrfId.HMAC_SHA1, prf(PrfId.HMAC_SHA1, 'sha1', 20)],
  [PrfId.HMAC_SHA2_256, prf(PrfId.HMAC_SHA2_256, 'sha256', 32)],
  [PrfId.HMAC_SHA2_384, prf(PrfId.HMAC_SHA2_384, 'sha384', 48)],
  [PrfId.HMAC_SHA2_512, prf(PrfId.HMAC_SHA2_512, 'sha512', 64)],
]);

export function encrTransform(id: number): EncrTransform {
  const t = ENCR.get(id);
  if (!t) throw new CryptoError('CRYPTO_UNSUPPORTED', `unsupported encryption transform ${nameOf(EncrId, id)}`);
  return t;
}

export function integTransform(id: number): IntegTransform {
  const t = INTEG.get(id);
  if (!t) throw new CryptoError('CRYPTO_UNSUPPORTED', `unsupported integrity transform ${nameOf(IntegId, id)}`);
  return t;
}

export function prfTransform(id: number): PrfTransform {
  const t = PRF.get(id);
  if (!t) throw new CryptoError('CRYPTO_UNSUPPORTED', `unsupported PRF transform ${nameOf(PrfId, id)}`);
  return t;
}

export function isEncrSupported(id: number): boolean {
  return ENCR.has(id);
}
export function isIntegSupported(id: number): boolean {
  return INTEG.has(id);
}
export function isPrfSupported(id: number): boolean {
  return PRF.has(id);
}
export function supportedEncrIds(): EncrId[] {
  return [...ENCR.keys()];
}
export function supportedIntegIds(): IntegId[] {
  return [...INTEG.keys()];
}
export function supportedPrfIds(): PrfId[] {
  return [...PRF.keys()];
}

/**
 * The key length in bits to use for `id`: the given Key Length attribute, checked against the allowed ones, or for
 * transforms without the attribute (ChaCha20-Poly1305) their fixed length; an attribute where none is allowed, a
 * missing one where it is required, or an unknown length throw CRYPTO_UNSUPPORTED.
 */
export function resolveEncrKeyLength(id: number, keyLength?: number): number {
  const t = encrTransform(id);
  if (!t.keyLengthAttribute) {
    if (keyLength !== undefined && keyLength !== t.keyLengths[0]) {
      throw new CryptoError('CRYPTO_UNSUPPORTED', `${t.name} takes no key length attribute (got ${keyLength})`);
    }
    return t.keyLengths[0]!;
  }
  if (keyLength === undefined) throw new CryptoError('CRYPTO_UNSUPPORTED', `${t.name} needs a key length attribute`);
  if (!t.keyLengths.includes(keyLength)) {
    throw new CryptoError('CRYPTO_UNSUPPORTED', `${t.name} with key length ${keyLength} is not supported`);
  }
  return keyLength;
}

/** Bytes of key material for an encryption transform: the cipher key plus the AEAD salt (SK_e / ESP encr key). */
export function encrKeymatLength(id: number, keyLength?: number): number {
  return resolveEncrKeyLength(id, keyLength) / 8 + encrTransform(id).saltLength;
}

/** Bytes of key material for an integrity transform (SK_a / ESP integ key); 0 for NONE (with an AEAD). */
export function integKeymatLength(id: number | undefined): number {
  if (id === undefined || id === IntegId.NONE) return 0;
  return integTransform(id).keyLength;
}

/** Preferred key length of a PRF in bytes: the length of SK_d, SK_pi and SK_pr (RFC 7296 §2.14). */
export function prfKeyLength(id: number): number {
  return prfTransform(id).keyLength;
}

/** Per-direction key material lengths of an encryption + integrity pair (for an SK cipher or an ESP SA). */
export interface CipherSuite {
  encrId: EncrId;
  /** Key Length attribute in bits; omit for ChaCha20-Poly1305. */
  keyLength?: number | undefined;
  /** Must be NONE / absent for AEAD and present for AES-CBC. */
  integId?: IntegId | undefined;
}

/** Checks the combination (AEAD without INTEG, CBC with INTEG) and returns both key lengths in bytes. */
export function cipherSuiteKeyLengths(suite: CipherSuite): { encKeyLength: number; integKeyLength: number } {
  const e = encrTransform(suite.encrId);
  const hasInteg = suite.integId !== undefined && suite.integId !== IntegId.NONE;
  if (e.aead && hasInteg) {
    throw new CryptoError('CRYPTO_UNSUPPORTED', `${e.name} is an AEAD and takes no integrity transform`);
  }
  if (!e.aead && !hasInteg) throw new CryptoError('CRYPTO_UNSUPPORTED', `${e.name} needs an integrity transform`);
  return {
    encKeyLength: encrKeymatLength(suite.encrId, suite.keyLength),
    integKeyLength: integKeymatLength(suite.integId),
  };
}
