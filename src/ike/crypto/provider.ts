/**
 * The cryptographic provider interface. Two implementations exist:
 *  - `node`  (node-provider.ts): node:crypto / OpenSSL, the default, for speed;
 *  - `noble` (noble-provider.ts): @noble/*, the reference implementation, and the only one for ML-KEM.
 * Differential tests require both to give identical results for identical inputs.
 *
 * Randomness is never taken from a global: private keys and KEM coins are derived from the `Random` passed in,
 * so that simulations are reproducible and both providers can be compared on the same private values.
 */
import type { KeId } from '../constants.js';

export type HashName = 'sha1' | 'sha256' | 'sha384' | 'sha512';
export type AeadName = 'aes-gcm' | 'chacha20-poly1305';

/** Source of random bytes (a port: tests pass a seeded one, production passes crypto.randomFillSync). */
export type Random = (length: number) => Uint8Array;

/**
 * One party's side of a key exchange method (DH group or KEM) in IKEv2 terms.
 * For DH both sides are symmetric. For a KEM the initiator sends the encapsulation key; the responder
 * answers with a ciphertext (RFC 9370 / draft-ietf-ipsecme-ikev2-mlkem).
 */
export interface KeyExchange {
  readonly id: KeId;
  /** The value to put in our KE payload (without the group number). */
  readonly publicValue: Uint8Array;
  /**
   * Complete the exchange with the peer's KE data and return the shared secret (g^ir / KEM shared key).
   * Throws CryptoError('CRYPTO_INVALID_PUBLIC_VALUE') when the peer value is invalid.
   */
  complete(peerValue: Uint8Array): Uint8Array;
}

export interface KeyExchangeMethod {
  readonly id: KeId;
  /** Length in bytes of the initiator's KE data. */
  readonly initiatorLength: number;
  /** Length in bytes of the responder's KE data (differs from initiatorLength only for KEMs). */
  readonly responderLength: number;
  /** Start as initiator: create our key pair (or KEM key pair) from `random`. */
  initiate(random: Random): KeyExchange;
  /**
   * Respond to the initiator's KE data: for DH create our key pair and compute the secret; for a KEM
   * encapsulate. Returns our KE data and the shared secret.
   */
  respond(peerValue: Uint8Array, random: Random): { publicValue: Uint8Array; sharedSecret: Uint8Array };
}

export interface CryptoProvider {
  readonly name: 'node' | 'noble';
  hash(alg: HashName, data: Uint8Array): Uint8Array;
  hmac(alg: HashName, key: Uint8Array, data: Uint8Array): Uint8Array;
  /** AEAD seal: returns ciphertext || tag (tag of `tagLength` bytes). `nonce` is the full 12-byte nonce. */
  aeadSeal(
    alg: AeadName,
    key: Uint8Array,
    nonce: Uint8Array,
    aad: Uint8Array,
    plaintext: Uint8Array,
    tagLength: number,
  ): Uint8Array;
  /** AEAD open of ciphertext || tag; throws CryptoError('CRYPTO_AUTH_FAILED') on a bad tag. */
  aeadOpen(
    alg: AeadName,
    key: Uint8Array,
    nonce: Uint8Array,
    aad: Uint8Array,
    sealed: Uint8Array,
    tagLength: number,
  ): Uint8Array;
  /** AES-CBC without padding; `data.length` must be a multiple of 16. */
  aesCbcEncrypt(key: Uint8Array, iv: Uint8Array, data: Uint8Array): Uint8Array;
  aesCbcDecrypt(key: Uint8Array, iv: Uint8Array, data: Uint8Array): Uint8Array;
  /** Throws CryptoError('CRYPTO_UNSUPPORTED') for a method this provider lacks. */
  keyExchange(id: KeId): KeyExchangeMethod;
  supportsKeyExchange(id: KeId): boolean;
}

/**
 * The negotiated protection of SK / SKF payloads (RFC 7296 §3.14, RFC 5282 for AEAD, RFC 7634 for ChaCha20-Poly1305,
 * RFC 7383 §2.5 for SKF). One instance per direction (keys SK_ei/SK_ai or SK_er/SK_ar).
 * The codec handles payload chaining, padding and length fields; an SkCipher only encrypts and authenticates.
 */
export interface SkCipher {
  /** Bytes of IV at the start of the SK body (8 for AES-GCM and ChaCha20-Poly1305, 16 for AES-CBC). */
  readonly ivLength: number;
  /** Bytes of ICV at the end of the SK body (AEAD tag, or truncated HMAC). */
  readonly icvLength: number;
  /** Plaintext (payloads + padding + pad length byte) must be a multiple of this (16 for CBC, 1 for AEAD). */
  readonly blockSize: number;
  /**
   * Encrypt and authenticate. `aad` is the message from the first byte of the IKE header up to and including the
   * SK/SKF generic payload header (and for SKF its fragment number fields), with all length fields already final.
   * Returns the SK body: IV || ciphertext || ICV. For AEAD, `aad` is the additional data; for encrypt-then-MAC the
   * ICV is computed over aad || IV || ciphertext.
   */
  seal(aad: Uint8Array, plaintext: Uint8Array, iv: Uint8Array): Uint8Array;
  /** Verify and decrypt an SK body (IV || ciphertext || ICV); throws CryptoError('CRYPTO_AUTH_FAILED'). */
  open(aad: Uint8Array, body: Uint8Array): Uint8Array;
}
