/**
 * SK / SKF payload protection (RFC 7296 §3.14, RFC 7383 §2.5) for one direction of an IKE SA.
 *
 *  - AEAD (AES-GCM: RFC 5282; ChaCha20-Poly1305: RFC 7634): the key material is key || 4-byte salt; the 12-byte nonce
 *    is salt || 8-byte IV (RFC 5282 §4, RFC 7634 §2); the additional data is the IKE header through the SK payload
 *    header (RFC 5282 §5.1); the ICV is the AEAD tag.
 *  - AES-CBC + HMAC (RFC 3602, RFC 4868): encrypt-then-MAC; ICV = HMAC truncated, over aad || IV || ciphertext, i.e. the
 *    whole message up to the ICV (RFC 7296 §3.14).
 */
import { CryptoError } from '../errors.js';
import { concatBytes, equalBytes } from './checks.js';
import type { AeadName, CryptoProvider, SkCipher } from './provider.js';
import { type CipherSuite, cipherSuiteKeyLengths, encrTransform, integTransform } from './transforms.js';

export interface SkKeys {
  /** SK_ei or SK_er: cipher key, plus the 4-byte salt for AEAD. */
  encKey: Uint8Array;
  /** SK_ai or SK_ar; empty (or absent) for AEAD. */
  integKey?: Uint8Array | undefined;
}

function checkIv(iv: Uint8Array, expected: number): void {
  if (iv.length !== expected)
    throw new CryptoError('CRYPTO_INVALID_LENGTH', `IV must be ${expected} bytes, got ${iv.length}`);
}

export function createSkCipher(provider: CryptoProvider, suite: CipherSuite, keys: SkKeys): SkCipher {
  const { encKeyLength, integKeyLength } = cipherSuiteKeyLengths(suite);
  const encr = encrTransform(suite.encrId);
  if (keys.encKey.length !== encKeyLength) {
    throw new CryptoError('CRYPTO_INVALID_KEY', `${encr.name} key material must be ${encKeyLength} bytes`);
  }
  const integKey = keys.integKey ?? new Uint8Array(0);
  if (integKey.length !== integKeyLength) {
    throw new CryptoError('CRYPTO_INVALID_KEY', `integrity key must be ${integKeyLength} bytes`);
  }

  if (encr.aead) {
    const alg = encr.cipher as AeadName;
    const key = Uint8Array.from(keys.encKey.subarray(0, encKeyLength - encr.saltLength));
    const salt = Uint8Array.from(keys.encKey.subarray(encKeyLength - encr.saltLength));
    const { ivLength, icvLength } = encr;
    const nonceFor = (iv: Uint8Array) => concatBytes(salt, iv);
    return {
      ivLength,
      icvLength,
      blockSize: 1,
      seal(aad, plaintext, iv) {
        checkIv(iv, ivLength);
        return concatBytes(iv, provider.aeadSeal(alg, key, nonceFor(iv), aad, plaintext, icvLength));
      },
      open(aad, body) {
        if (body.length < ivLength + icvLength) {
          throw new CryptoError('CRYPTO_AUTH_FAILED', 'SK body shorter than IV and ICV');
        }
        const iv = body.subarray(0, ivLength);
        return provider.aeadOpen(alg, key, nonceFor(iv), aad, body.subarray(ivLength), icvLength);
      },
    };
  }

  const integ = integTransform(suite.integId!);
  const encKey = Uint8Array.from(keys.encKey);
  const macKey = Uint8Array.from(integKey);
  const ivLength = encr.ivLength;
  const icvLength = integ.icvLength;
  const icv = (aad: Uint8Array, ivAndCiphertext: Uint8Array) =>
    provider.hmac(integ.hash, macKey, concatBytes(aad, ivAndCiphertext)).subarray(0, icvLength);
  return {
    ivLength,
    icvLength,
    blockSize: encr.blockSize,
    seal(aad, plaintext, iv) {
      checkIv(iv, ivLength);
      const ivAndCt = concatBytes(iv, provider.aesCbcEncrypt(encKey, iv, plaintext));
      return concatBytes(ivAndCt, icv(aad, ivAndCt));
    },
    open(aad, body) {
      const ctLength = body.length - ivLength - icvLength;
      if (ctLength < 0) throw new CryptoError('CRYPTO_AUTH_FAILED', 'SK body shorter than IV and ICV');
      const ivAndCt = body.subarray(0, ivLength + ctLength);
      if (!equalBytes(icv(aad, ivAndCt), body.subarray(ivLength + ctLength))) {
        throw new CryptoError('CRYPTO_AUTH_FAILED', 'SK payload integrity check failed');
      }
      // Authentic but not a whole number of blocks: the sender is broken; still an integrity-class failure.
      if (ctLength % encr.blockSize !== 0) {
        throw new CryptoError('CRYPTO_AUTH_FAILED', 'SK ciphertext is not a multiple of the block size');
      }
      return provider.aesCbcDecrypt(encKey, body.subarray(0, ivLength), body.subarray(ivLength, ivLength + ctLength));
    },
  };
}
