import { describe, expect, it } from 'vitest';
import { EncrId, IntegId } from '../../src/ike/constants.js';
import { createSkCipher } from '../../src/ike/crypto/index.js';
import type { AeadName } from '../../src/ike/crypto/provider.js';
import { errorCode, fromHex, loadVectors, providers, toHex } from './crypto-helpers.js';

interface AeadVector {
  name: string;
  alg: AeadName;
  key: string;
  salt: string;
  iv: string;
  aad: string;
  plaintext: string;
  tagLength: number;
  sealed: string;
}
const file = loadVectors<{ vectors: AeadVector[] }>('aead.json');

function encrIdFor(v: AeadVector): EncrId {
  if (v.alg === 'chacha20-poly1305') return EncrId.CHACHA20_POLY1305;
  return { 8: EncrId.AES_GCM_8, 12: EncrId.AES_GCM_12, 16: EncrId.AES_GCM_16 }[v.tagLength]!;
}

describe.each(providers)('AEAD known answers ($name provider)', (provider) => {
  it.each(file.vectors)('$name: seal and open', (v) => {
    const nonce = fromHex(v.salt + v.iv);
    const sealed = provider.aeadSeal(v.alg, fromHex(v.key), nonce, fromHex(v.aad), fromHex(v.plaintext), v.tagLength);
    expect(toHex(sealed)).toBe(v.sealed);
    const opened = provider.aeadOpen(v.alg, fromHex(v.key), nonce, fromHex(v.aad), fromHex(v.sealed), v.tagLength);
    expect(toHex(opened)).toBe(v.plaintext);
  });

  it.each(file.vectors)('$name: a flipped bit anywhere fails with CRYPTO_AUTH_FAILED', (v) => {
    const nonce = fromHex(v.salt + v.iv);
    const sealed = fromHex(v.sealed);
    for (const index of [0, Math.floor(sealed.length / 2), sealed.length - 1]) {
      const tampered = Uint8Array.from(sealed);
      tampered[index]! ^= 0x01;
      expect(
        errorCode(() => provider.aeadOpen(v.alg, fromHex(v.key), nonce, fromHex(v.aad), tampered, v.tagLength)),
      ).toBe('CRYPTO_AUTH_FAILED');
    }
    const badAad = fromHex(v.aad.length > 0 ? v.aad : '00');
    badAad[0]! ^= 0x80;
    expect(errorCode(() => provider.aeadOpen(v.alg, fromHex(v.key), nonce, badAad, sealed, v.tagLength))).toBe(
      'CRYPTO_AUTH_FAILED',
    );
  });

  it.each(file.vectors)('$name: as an SK payload cipher (key || salt, IV in the body)', (v) => {
    const encrId = encrIdFor(v);
    const keyLength = v.alg === 'aes-gcm' ? (v.key.length / 2) * 8 : undefined;
    const sk = createSkCipher(provider, { encrId, keyLength }, { encKey: fromHex(v.key + v.salt) });
    expect(sk.ivLength).toBe(8);
    expect(sk.icvLength).toBe(v.tagLength);
    expect(sk.blockSize).toBe(1);
    const body = sk.seal(fromHex(v.aad), fromHex(v.plaintext), fromHex(v.iv));
    expect(toHex(body)).toBe(v.iv + v.sealed);
    expect(toHex(sk.open(fromHex(v.aad), body))).toBe(v.plaintext);
  });

  it('rejects truncated inputs, wrong nonce and key sizes and unsupported tag lengths with typed errors', () => {
    const key = new Uint8Array(16);
    const nonce = new Uint8Array(12);
    const none = new Uint8Array(0);
    expect(errorCode(() => provider.aeadOpen('aes-gcm', key, nonce, none, new Uint8Array(7), 8))).toBe(
      'CRYPTO_AUTH_FAILED',
    );
    expect(errorCode(() => provider.aeadSeal('aes-gcm', key, new Uint8Array(8), none, none, 16))).toBe(
      'CRYPTO_INVALID_KEY',
    );
    expect(errorCode(() => provider.aeadSeal('aes-gcm', new Uint8Array(20), nonce, none, none, 16))).toBe(
      'CRYPTO_INVALID_KEY',
    );
    expect(errorCode(() => provider.aeadSeal('aes-gcm', key, nonce, none, none, 4))).toBe('CRYPTO_UNSUPPORTED');
    expect(errorCode(() => provider.aeadSeal('chacha20-poly1305', new Uint8Array(32), nonce, none, none, 8))).toBe(
      'CRYPTO_UNSUPPORTED',
    );
  });

  it('AES-CBC (RFC 3602 §4 case 2: two blocks, AES-128) encrypts without padding and decrypts', () => {
    const key = fromHex('c286696d887c9aa0611bbb3e2025a45a');
    const iv = fromHex('562e17996d093d28ddb3ba695a2e6f58');
    const pt = fromHex('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f');
    const ct = 'd296cd94c2cccf8a3a863028b5e1dc0a7586602d253cfff91b8266bea6d61ab1';
    expect(toHex(provider.aesCbcEncrypt(key, iv, pt))).toBe(ct);
    expect(toHex(provider.aesCbcDecrypt(key, iv, fromHex(ct)))).toBe(toHex(pt));
    expect(errorCode(() => provider.aesCbcEncrypt(key, iv, new Uint8Array(15)))).toBe('CRYPTO_INVALID_LENGTH');
  });

  it('SK cipher with AES-CBC + HMAC: encrypt-then-MAC over aad || IV || ciphertext, tamper detection', () => {
    const encKey = fromHex('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f');
    const integKey = new Uint8Array(32).fill(0x42);
    const sk = createSkCipher(
      provider,
      { encrId: EncrId.AES_CBC, keyLength: 256, integId: IntegId.HMAC_SHA2_256_128 },
      { encKey, integKey },
    );
    expect([sk.ivLength, sk.icvLength, sk.blockSize]).toEqual([16, 16, 16]);
    const aad = new Uint8Array(32).fill(7);
    const iv = new Uint8Array(16).fill(9);
    const pt = new Uint8Array(48).fill(3);
    const body = sk.seal(aad, pt, iv);
    expect(body.length).toBe(16 + 48 + 16);
    const expectedIcv = provider.hmac('sha256', integKey, Uint8Array.from([...aad, ...body.subarray(0, 64)]));
    expect(toHex(body.subarray(64))).toBe(toHex(expectedIcv.subarray(0, 16)));
    expect(toHex(body.subarray(16, 64))).toBe(toHex(provider.aesCbcEncrypt(encKey, iv, pt)));
    expect(toHex(sk.open(aad, body))).toBe(toHex(pt));
    for (const index of [0, 20, body.length - 1]) {
      const t = Uint8Array.from(body);
      t[index]! ^= 0x10;
      expect(errorCode(() => sk.open(aad, t))).toBe('CRYPTO_AUTH_FAILED');
    }
    const badAad = Uint8Array.from(aad);
    badAad[3]! ^= 1;
    expect(errorCode(() => sk.open(badAad, body))).toBe('CRYPTO_AUTH_FAILED');
    expect(errorCode(() => sk.open(aad, body.subarray(0, 20)))).toBe('CRYPTO_AUTH_FAILED');
    expect(errorCode(() => sk.seal(aad, new Uint8Array(17), iv))).toBe('CRYPTO_INVALID_LENGTH');
    expect(errorCode(() => sk.seal(aad, pt, new Uint8Array(8)))).toBe('CRYPTO_INVALID_LENGTH');
  });
});

describe('SK cipher construction', () => {
  const provider = providers[0]!;
  it('checks key material lengths and transform combinations', () => {
    expect(
      errorCode(() =>
        createSkCipher(provider, { encrId: EncrId.AES_GCM_16, keyLength: 128 }, { encKey: new Uint8Array(16) }),
      ),
    ).toBe('CRYPTO_INVALID_KEY');
    expect(
      errorCode(() =>
        createSkCipher(
          provider,
          { encrId: EncrId.AES_GCM_16, keyLength: 128, integId: IntegId.HMAC_SHA2_256_128 },
          { encKey: new Uint8Array(20) },
        ),
      ),
    ).toBe('CRYPTO_UNSUPPORTED');
    expect(
      errorCode(() =>
        createSkCipher(provider, { encrId: EncrId.AES_CBC, keyLength: 128 }, { encKey: new Uint8Array(16) }),
      ),
    ).toBe('CRYPTO_UNSUPPORTED');
    expect(
      errorCode(() => createSkCipher(provider, { encrId: EncrId.TRIPLE_DES }, { encKey: new Uint8Array(24) })),
    ).toBe('CRYPTO_UNSUPPORTED');
  });

  it('names its sources', () => {
    expect(file.source).toMatch(/RFC 7634/);
  });
});
