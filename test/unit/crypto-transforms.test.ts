import { describe, expect, it } from 'vitest';
import { EncrId, IntegId, PrfId } from '../../src/ike/constants.js';
import {
  cipherSuiteKeyLengths,
  defaultProvider,
  encrKeymatLength,
  encrTransform,
  integKeymatLength,
  integTransform,
  isEncrSupported,
  nobleProvider,
  prfKeyLength,
  prfTransform,
  resolveEncrKeyLength,
  supportedEncrIds,
  supportedIntegIds,
  supportedPrfIds,
} from '../../src/ike/crypto/index.js';
import { errorCode } from './crypto-helpers.js';

describe('transform tables', () => {
  it('ENCR key material: AES-CBC key only, AES-GCM key + 4-byte salt, ChaCha20-Poly1305 32 + 4', () => {
    expect([128, 192, 256].map((k) => encrKeymatLength(EncrId.AES_CBC, k))).toEqual([16, 24, 32]);
    for (const id of [EncrId.AES_GCM_8, EncrId.AES_GCM_12, EncrId.AES_GCM_16]) {
      expect([128, 192, 256].map((k) => encrKeymatLength(id, k))).toEqual([20, 28, 36]);
    }
    expect(encrKeymatLength(EncrId.CHACHA20_POLY1305)).toBe(36);
    expect(encrTransform(EncrId.AES_GCM_8).icvLength).toBe(8);
    expect(encrTransform(EncrId.AES_GCM_12).icvLength).toBe(12);
    expect(encrTransform(EncrId.AES_GCM_16).icvLength).toBe(16);
    expect(encrTransform(EncrId.CHACHA20_POLY1305)).toMatchObject({ ivLength: 8, icvLength: 16, aead: true });
    expect(encrTransform(EncrId.AES_CBC)).toMatchObject({ ivLength: 16, blockSize: 16, aead: false });
  });

  it('key length attributes: required for AES, absent (or 256) for ChaCha20-Poly1305', () => {
    expect(errorCode(() => resolveEncrKeyLength(EncrId.AES_CBC))).toBe('CRYPTO_UNSUPPORTED');
    expect(errorCode(() => resolveEncrKeyLength(EncrId.AES_GCM_16, 160))).toBe('CRYPTO_UNSUPPORTED');
    expect(resolveEncrKeyLength(EncrId.CHACHA20_POLY1305)).toBe(256);
    expect(errorCode(() => resolveEncrKeyLength(EncrId.CHACHA20_POLY1305, 128))).toBe('CRYPTO_UNSUPPORTED');
  });

  it('INTEG: key length is the hash output length, ICV is truncated (RFC 2404, RFC 4868)', () => {
    const rows = [
      [IntegId.HMAC_SHA1_96, 20, 12, 'sha1'],
      [IntegId.HMAC_SHA2_256_128, 32, 16, 'sha256'],
      [IntegId.HMAC_SHA2_384_192, 48, 24, 'sha384'],
      [IntegId.HMAC_SHA2_512_256, 64, 32, 'sha512'],
    ] as const;
    for (const [id, key, icv, hash] of rows) {
      expect(integTransform(id)).toMatchObject({ keyLength: key, icvLength: icv, hash });
      expect(integKeymatLength(id)).toBe(key);
    }
    expect(integKeymatLength(IntegId.NONE)).toBe(0);
    expect(integKeymatLength(undefined)).toBe(0);
  });

  it('PRF: preferred key length is the output length', () => {
    expect(
      [PrfId.HMAC_SHA1, PrfId.HMAC_SHA2_256, PrfId.HMAC_SHA2_384, PrfId.HMAC_SHA2_512].map((id) => prfKeyLength(id)),
    ).toEqual([20, 32, 48, 64]);
    expect(prfTransform(PrfId.HMAC_SHA2_384).hash).toBe('sha384');
  });

  it('unknown or unsupported IDs throw CRYPTO_UNSUPPORTED', () => {
    expect(errorCode(() => encrTransform(EncrId.TRIPLE_DES))).toBe('CRYPTO_UNSUPPORTED');
    expect(errorCode(() => encrTransform(9999))).toBe('CRYPTO_UNSUPPORTED');
    expect(errorCode(() => integTransform(IntegId.HMAC_MD5_96))).toBe('CRYPTO_UNSUPPORTED');
    expect(errorCode(() => prfTransform(PrfId.HMAC_MD5))).toBe('CRYPTO_UNSUPPORTED');
    expect(isEncrSupported(EncrId.AES_CTR)).toBe(false);
    expect(supportedEncrIds()).toHaveLength(5);
    expect(supportedIntegIds()).toHaveLength(4);
    expect(supportedPrfIds()).toHaveLength(4);
  });

  it('cipher suites: AEAD without INTEG, CBC with INTEG', () => {
    expect(cipherSuiteKeyLengths({ encrId: EncrId.AES_GCM_16, keyLength: 128 })).toEqual({
      encKeyLength: 20,
      integKeyLength: 0,
    });
    expect(
      cipherSuiteKeyLengths({ encrId: EncrId.AES_CBC, keyLength: 256, integId: IntegId.HMAC_SHA2_512_256 }),
    ).toEqual({ encKeyLength: 32, integKeyLength: 64 });
    expect(
      errorCode(() =>
        cipherSuiteKeyLengths({ encrId: EncrId.AES_GCM_16, keyLength: 128, integId: IntegId.HMAC_SHA1_96 }),
      ),
    ).toBe('CRYPTO_UNSUPPORTED');
    expect(errorCode(() => cipherSuiteKeyLengths({ encrId: EncrId.AES_CBC, keyLength: 128 }))).toBe(
      'CRYPTO_UNSUPPORTED',
    );
  });

  it('defaultProvider() is node:crypto and nobleProvider() is @noble, fresh instances (no module state)', () => {
    expect(defaultProvider().name).toBe('node');
    expect(nobleProvider().name).toBe('noble');
    expect(defaultProvider()).not.toBe(defaultProvider());
  });
});
