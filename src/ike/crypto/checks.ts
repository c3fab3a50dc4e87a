/**
 * Argument checks shared by both providers, so that both reject the same inputs with the same typed errors.
 * Messages name lengths and algorithms only, never key bytes.
 */
import { CryptoError } from '../errors.js';
import type { AeadName, HashName } from './provider.js';

/** Output length in bytes of each hash. */
export const HASH_LENGTH: Readonly<Record<HashName, number>> = { sha1: 20, sha256: 32, sha384: 48, sha512: 64 };

export function checkHash(alg: HashName): void {
  if (!Object.hasOwn(HASH_LENGTH, alg))
    throw new CryptoError('CRYPTO_UNSUPPORTED', `unsupported hash '${String(alg)}'`);
}

export function checkAead(alg: AeadName, key: Uint8Array, nonce: Uint8Array, tagLength: number): void {
  if (alg === 'aes-gcm') {
    if (key.length !== 16 && key.length !== 24 && key.length !== 32) {
      throw new CryptoError('CRYPTO_INVALID_KEY', `AES-GCM key must be 16, 24 or 32 bytes, got ${key.length}`);
    }
    if (tagLength !== 8 && tagLength !== 12 && tagLength !== 16) {
      throw new CryptoError('CRYPTO_UNSUPPORTED', `AES-GCM tag length ${tagLength} (IKE uses 8, 12 or 16)`);
    }
  } else if (alg === 'chacha20-poly1305') {
    if (key.length !== 32) {
      throw new CryptoError('CRYPTO_INVALID_KEY', `ChaCha20-Poly1305 key must be 32 bytes, got ${key.length}`);
    }
    if (tagLength !== 16) {
      throw new CryptoError('CRYPTO_UNSUPPORTED', `ChaCha20-Poly1305 tag length ${tagLength} (RFC 7634: 16 only)`);
    }
  } else {
    throw new CryptoError('CRYPTO_UNSUPPORTED', `unsupported AEAD '${String(alg)}'`);
  }
  if (nonce.length !== 12)
    throw new CryptoError('CRYPTO_INVALID_KEY', `AEAD nonce must be 12 bytes, got ${nonce.length}`);
}

/** The sealed input must at least hold the tag; anything shorter cannot authenticate. */
export function checkSealed(sealed: Uint8Array, tagLength: number): void {
  if (sealed.length < tagLength) throw new CryptoError('CRYPTO_AUTH_FAILED', 'AEAD input shorter than its tag');
}

export function checkCbc(key: Uint8Array, iv: Uint8Array, data: Uint8Array): void {
  if (key.length !== 16 && key.length !== 24 && key.length !== 32) {
    throw new CryptoError('CRYPTO_INVALID_KEY', `AES-CBC key must be 16, 24 or 32 bytes, got ${key.length}`);
  }
  if (iv.length !== 16) throw new CryptoError('CRYPTO_INVALID_KEY', `AES-CBC IV must be 16 bytes, got ${iv.length}`);
  if (data.length % 16 !== 0) {
    throw new CryptoError('CRYPTO_INVALID_LENGTH', `AES-CBC data length ${data.length} is not a multiple of 16`);
  }
}

/** Constant-time comparison of two byte strings of equal length (false when the lengths differ). */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  let length = 0;
  for (const p of parts) length += p.length;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}
