/**
 * Differential tests: node:crypto and @noble must agree bit for bit on every primitive, and tampering must fail the
 * same typed way in both. Inputs come from fast-check (failures print the seed to replay).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EncrId, IntegId, KeId, PrfId } from '../../src/ike/constants.js';
import {
  cipherSuiteKeyLengths,
  createNobleProvider,
  createNodeProvider,
  createSkCipher,
  deriveIkeSaKeys,
  prfPlus,
  skeyseed,
} from '../../src/ike/crypto/index.js';
import type { AeadName, HashName } from '../../src/ike/crypto/provider.js';
import { errorCode, seededRandom, toHex } from './crypto-helpers.js';

const node = createNodeProvider();
const noble = createNobleProvider();
const HASHES: HashName[] = ['sha1', 'sha256', 'sha384', 'sha512'];
const bytes = (min: number, max: number) => fc.uint8Array({ minLength: min, maxLength: max });

describe('node vs noble: symmetric primitives', () => {
  it('hash and hmac', () => {
    fc.assert(
      fc.property(fc.constantFrom(...HASHES), bytes(0, 300), bytes(0, 200), (alg, data, key) => {
        expect(toHex(noble.hash(alg, data))).toBe(toHex(node.hash(alg, data)));
        expect(toHex(noble.hmac(alg, key, data))).toBe(toHex(node.hmac(alg, key, data)));
      }),
      { numRuns: 300 },
    );
  });

  const aeadCases: [AeadName, number, number][] = [
    ...[16, 24, 32].flatMap((k) => [8, 12, 16].map((t): [AeadName, number, number] => ['aes-gcm', k, t])),
    ['chacha20-poly1305', 32, 16],
  ];

  it.each(aeadCases)('%s key %i bytes, tag %i bytes: seal, cross-open, tamper', (alg, keyLength, tagLength) => {
    fc.assert(
      fc.property(
        bytes(keyLength, keyLength),
        bytes(12, 12),
        bytes(0, 64),
        bytes(0, 300),
        fc.nat(),
        (key, nonce, aad, plaintext, flip) => {
          const a = node.aeadSeal(alg, key, nonce, aad, plaintext, tagLength);
          const b = noble.aeadSeal(alg, key, nonce, aad, plaintext, tagLength);
          expect(toHex(b)).toBe(toHex(a));
          expect(a).toHaveLength(plaintext.length + tagLength);
          expect(toHex(node.aeadOpen(alg, key, nonce, aad, b, tagLength))).toBe(toHex(plaintext));
          expect(toHex(noble.aeadOpen(alg, key, nonce, aad, a, tagLength))).toBe(toHex(plaintext));
          const tampered = Uint8Array.from(a);
          const bit = flip % (tampered.length * 8);
          tampered[bit >> 3]! ^= 1 << (bit & 7);
          expect(errorCode(() => node.aeadOpen(alg, key, nonce, aad, tampered, tagLength))).toBe('CRYPTO_AUTH_FAILED');
          expect(errorCode(() => noble.aeadOpen(alg, key, nonce, aad, tampered, tagLength))).toBe('CRYPTO_AUTH_FAILED');
        },
      ),
      { numRuns: 60 },
    );
  });

  it('AES-CBC without padding', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(16, 24, 32),
        bytes(16, 16),
        fc.nat({ max: 20 }),
        fc.integer(),
        (kl, iv, blocks, s) => {
          const key = seededRandom(`cbc-key-${s}`)(kl);
          const data = seededRandom(`cbc-data-${s}`)(blocks * 16);
          const ct = node.aesCbcEncrypt(key, iv, data);
          expect(toHex(noble.aesCbcEncrypt(key, iv, data))).toBe(toHex(ct));
          expect(toHex(noble.aesCbcDecrypt(key, iv, ct))).toBe(toHex(data));
          expect(toHex(node.aesCbcDecrypt(key, iv, ct))).toBe(toHex(data));
        },
      ),
      { numRuns: 60 },
    );
  });
});

describe('node vs noble: SK payload ciphers', () => {
  const suites = [
    { encrId: EncrId.AES_CBC, keyLength: 128, integId: IntegId.HMAC_SHA1_96 },
    { encrId: EncrId.AES_CBC, keyLength: 192, integId: IntegId.HMAC_SHA2_384_192 },
    { encrId: EncrId.AES_CBC, keyLength: 256, integId: IntegId.HMAC_SHA2_512_256 },
    { encrId: EncrId.AES_GCM_8, keyLength: 128 },
    { encrId: EncrId.AES_GCM_12, keyLength: 192 },
    { encrId: EncrId.AES_GCM_16, keyLength: 256 },
    { encrId: EncrId.CHACHA20_POLY1305 },
  ];

  it.each(suites)('%o: same body from both, each opens the other, tampering fails', (suite) => {
    const { encKeyLength, integKeyLength } = cipherSuiteKeyLengths(suite);
    fc.assert(
      fc.property(fc.integer(), bytes(28, 60), fc.nat({ max: 12 }), fc.nat(), (seed, aad, blocks, flip) => {
        const random = seededRandom(`sk-${seed}`);
        const keys = { encKey: random(encKeyLength), integKey: random(integKeyLength) };
        const a = createSkCipher(node, suite, keys);
        const b = createSkCipher(noble, suite, keys);
        const plaintext = random(blocks * a.blockSize * (a.blockSize === 1 ? 13 : 1));
        const iv = random(a.ivLength);
        const body = a.seal(aad, plaintext, iv);
        expect(toHex(b.seal(aad, plaintext, iv))).toBe(toHex(body));
        expect(body).toHaveLength(a.ivLength + plaintext.length + a.icvLength);
        expect(toHex(b.open(aad, body))).toBe(toHex(plaintext));
        const tampered = Uint8Array.from(body);
        const bit = flip % (tampered.length * 8);
        tampered[bit >> 3]! ^= 1 << (bit & 7);
        expect(errorCode(() => a.open(aad, tampered))).toBe('CRYPTO_AUTH_FAILED');
        expect(errorCode(() => b.open(aad, tampered))).toBe('CRYPTO_AUTH_FAILED');
      }),
      { numRuns: 40 },
    );
  });
});

describe('node vs noble: key exchange', () => {
  // MODP 3072/4096 in pure bigint JS are slow: fewer runs for them.
  const groups: [KeId, number][] = [
    [KeId.MODP_2048, 6],
    [KeId.MODP_3072, 3],
    [KeId.MODP_4096, 2],
    [KeId.ECP_256, 12],
    [KeId.ECP_384, 8],
    [KeId.ECP_521, 6],
    [KeId.CURVE25519, 25],
    [KeId.CURVE448, 12],
    [KeId.ML_KEM_512, 3],
    [KeId.ML_KEM_768, 3],
    [KeId.ML_KEM_1024, 3],
  ];

  it.each(groups)(
    'group %i: same private randomness gives the same values; cross-provider exchanges agree',
    (id, runs) => {
      for (let run = 0; run < runs; run++) {
        const seed = `diff-${id}-${run}`;
        const iNode = node.keyExchange(id).initiate(seededRandom(`${seed}-i`));
        const iNoble = noble.keyExchange(id).initiate(seededRandom(`${seed}-i`));
        expect(toHex(iNoble.publicValue)).toBe(toHex(iNode.publicValue));
        // node initiator <-> noble responder, and the reverse.
        const rNoble = noble.keyExchange(id).respond(iNode.publicValue, seededRandom(`${seed}-r`));
        const rNode = node.keyExchange(id).respond(iNoble.publicValue, seededRandom(`${seed}-r`));
        expect(toHex(rNode.publicValue)).toBe(toHex(rNoble.publicValue));
        expect(toHex(rNode.sharedSecret)).toBe(toHex(rNoble.sharedSecret));
        expect(toHex(iNode.complete(rNoble.publicValue))).toBe(toHex(rNoble.sharedSecret));
        expect(toHex(iNoble.complete(rNode.publicValue))).toBe(toHex(rNode.sharedSecret));
        expect(rNode.sharedSecret.length).toBeGreaterThanOrEqual(32);
      }
    },
  );
});

describe('node vs noble: IKEv2 key derivation', () => {
  const PRFS = [PrfId.HMAC_SHA1, PrfId.HMAC_SHA2_256, PrfId.HMAC_SHA2_384, PrfId.HMAC_SHA2_512];

  it('prf+ of any length up to a few blocks past 1 KiB', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...PRFS),
        bytes(1, 80),
        bytes(0, 100),
        fc.nat({ max: 1200 }),
        (id, key, seed, len) => {
          const a = prfPlus(node, id, key, seed, len);
          expect(a).toHaveLength(len);
          expect(toHex(prfPlus(noble, id, key, seed, len))).toBe(toHex(a));
        },
      ),
      { numRuns: 150 },
    );
  });

  it('SKEYSEED and the SK_* split', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...PRFS),
        fc.constantFrom(
          { encrId: EncrId.AES_GCM_16, keyLength: 256 },
          { encrId: EncrId.CHACHA20_POLY1305 },
          { encrId: EncrId.AES_CBC, keyLength: 128, integId: IntegId.HMAC_SHA2_256_128 },
        ),
        bytes(16, 64),
        bytes(16, 64),
        bytes(32, 512),
        bytes(8, 8),
        bytes(8, 8),
        (prfId, cipher, ni, nr, gir, spiI, spiR) => {
          const seedA = skeyseed(node, prfId, ni, nr, gir);
          expect(toHex(skeyseed(noble, prfId, ni, nr, gir))).toBe(toHex(seedA));
          const suite = { prfId, ...cipher };
          const a = deriveIkeSaKeys(node, suite, seedA, ni, nr, spiI, spiR);
          const b = deriveIkeSaKeys(noble, suite, seedA, ni, nr, spiI, spiR);
          expect(Object.fromEntries(Object.entries(b).map(([k, v]) => [k, toHex(v)]))).toEqual(
            Object.fromEntries(Object.entries(a).map(([k, v]) => [k, toHex(v)])),
          );
        },
      ),
      { numRuns: 60 },
    );
  });
});
