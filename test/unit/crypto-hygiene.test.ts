/**
 * Cross-cutting properties: errors carry stable codes and never key bytes; randomness only comes from the Random
 * port (same port output -> same keys, different output -> different keys).
 */
import { describe, expect, it } from 'vitest';
import { EncrId, IntegId, KeId, PrfId } from '../../src/ike/constants.js';
import { createSkCipher, prfPlus } from '../../src/ike/crypto/index.js';
import { IkeError } from '../../src/ike/errors.js';
import { providers, seededRandom, toHex } from './crypto-helpers.js';

function caught(fn: () => unknown): IkeError {
  try {
    fn();
  } catch (err) {
    if (err instanceof IkeError) return err;
    throw new Error(`expected an IkeError, got ${String(err)}`);
  }
  throw new Error('expected an error');
}

describe.each(providers)('error hygiene ($name provider)', (provider) => {
  const key = new Uint8Array(32).fill(0xa5);
  const keyHex = toHex(key.subarray(0, 4));
  const nonce = new Uint8Array(12);

  it('failures are IkeErrors with stable codes whose messages contain no key bytes and no cause', () => {
    const sealed = provider.aeadSeal('aes-gcm', key, nonce, new Uint8Array(0), new Uint8Array(40), 16);
    sealed[3]! ^= 1;
    const sk = createSkCipher(
      provider,
      { encrId: EncrId.AES_CBC, keyLength: 256, integId: IntegId.HMAC_SHA2_256_128 },
      {
        encKey: key,
        integKey: key,
      },
    );
    const body = sk.seal(new Uint8Array(8), new Uint8Array(16), new Uint8Array(16).fill(0xa5));
    body[20]! ^= 1;
    const errors = [
      caught(() => provider.aeadOpen('aes-gcm', key, nonce, new Uint8Array(0), sealed, 16)),
      caught(() => provider.aeadOpen('chacha20-poly1305', key, nonce, new Uint8Array(0), sealed, 16)),
      caught(() => sk.open(new Uint8Array(8), body)),
      caught(() => createSkCipher(provider, { encrId: EncrId.AES_GCM_16, keyLength: 256 }, { encKey: key })),
      caught(() => provider.keyExchange(KeId.CURVE25519).initiate(seededRandom('h')).complete(new Uint8Array(32))),
      caught(() => provider.keyExchange(KeId.ECP_256).initiate(seededRandom('h')).complete(key.subarray(0, 31))),
      caught(() => prfPlus(provider, PrfId.HMAC_SHA1, key, key, 10_000)),
    ];
    expect(errors.map((e) => e.code)).toEqual([
      'CRYPTO_AUTH_FAILED',
      'CRYPTO_AUTH_FAILED',
      'CRYPTO_AUTH_FAILED',
      'CRYPTO_INVALID_KEY',
      'CRYPTO_INVALID_PUBLIC_VALUE',
      'CRYPTO_INVALID_PUBLIC_VALUE',
      'CRYPTO_PRF_PLUS_LIMIT',
    ]);
    for (const e of errors) {
      expect(e.name).toBe('CryptoError');
      expect(e.message.toLowerCase()).not.toContain(keyHex);
      expect(e.cause).toBeUndefined();
    }
  });

  it.each([KeId.MODP_2048, KeId.ECP_256, KeId.CURVE25519, KeId.CURVE448, KeId.ML_KEM_768])(
    'method %i: key pairs come from the Random port only',
    (id) => {
      const method = provider.keyExchange(id);
      const a = method.initiate(seededRandom('same')).publicValue;
      const b = method.initiate(seededRandom('same')).publicValue;
      const c = method.initiate(seededRandom('other')).publicValue;
      expect(toHex(a)).toBe(toHex(b));
      expect(toHex(a)).not.toBe(toHex(c));
    },
  );
});
