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
