import { getDiffieHellman } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { KeId } from '../../src/ike/constants.js';
import { type GroupParams, groupParams } from '../../src/ike/crypto/index.js';
import {
  bigintBytes,
  errorCode,
  fromHex,
  hexToBigint,
  loadVectors,
  providers,
  scriptedRandom,
  seededRandom,
  toHex,
} from './crypto-helpers.js';

interface Exchange {
  name: string;
  keId: KeId;
  privateI: string;
  privateR: string;
  publicI?: string;
  publicR?: string;
  shared: string;
}
const dh = loadVectors<{
  exchanges: Exchange[];
  scalarMult: { name: string; keId: KeId; scalar: string; u: string; output: string }[];
}>('dh.json');
const modpFile = loadVectors<{
  groups: { keId: KeId; bits: number; k: number; generator: number; primeHexPrefix: string; primeHexSuffix: string }[];
}>('modp-rfc3526.json');

/** The Random output that makes the provider derive exactly this private value (see groups.ts). */
function randomFor(keId: KeId, privateHex: string): Uint8Array {
  const g = groupParams(keId)!;
  if (g.kind === 'ecp') return bigintBytes(hexToBigint(privateHex) - 1n, g.length + 8);
  if (g.kind === 'modp') return bigintBytes(hexToBigint(privateHex) - 1n, g.exponentBits / 8 + 8);
  return fromHex(privateHex);
}

function group(id: KeId): GroupParams {
  const g = groupParams(id);
  if (!g) throw new Error(`no group ${id}`);
  return g;
}

describe.each(providers)('key exchange known answers ($name provider)', (provider) => {
  it.each(dh.exchanges)('$name', (v) => {
    const method = provider.keyExchange(v.keId);
    const initiator = method.initiate(scriptedRandom(randomFor(v.keId, v.privateI)));
    if (v.publicI) expect(toHex(initiator.publicValue)).toBe(v.publicI);
    const peerPublic = v.publicI ? fromHex(v.publicI) : initiator.publicValue;
    const responder = method.respond(peerPublic, scriptedRandom(randomFor(v.keId, v.privateR)));
    if (v.publicR) expect(toHex(responder.publicValue)).toBe(v.publicR);
    expect(toHex(responder.sharedSecret)).toBe(v.shared);
    expect(toHex(initiator.complete(responder.publicValue))).toBe(v.shared);
    expect(method.initiatorLength).toBe(initiator.publicValue.length);
    expect(method.responderLength).toBe(responder.publicValue.length);
  });

  it.each(dh.scalarMult)('$name', (v) => {
    const ke = provider.keyExchange(v.keId).initiate(scriptedRandom(fromHex(v.scalar)));
    expect(toHex(ke.complete(fromHex(v.u)))).toBe(v.output);
  });

  it('MODP: g^2 for the exponent derived from r = 1 is 4, left-padded to the prime length', () => {
    for (const id of [KeId.MODP_2048, KeId.MODP_3072, KeId.MODP_4096]) {
      const g = group(id);
      if (g.kind !== 'modp') throw new Error('not modp');
      const r = new Uint8Array(g.exponentBits / 8 + 8);
      r[r.length - 1] = 1;
      const ke = provider.keyExchange(id).initiate(scriptedRandom(r));
      expect(ke.publicValue).toHaveLength(g.length);
      expect(toHex(ke.publicValue)).toBe(`${'00'.repeat(g.length - 1)}04`);
    }
  });
});

describe.each(providers)('public value validation ($name provider)', (provider) => {
  const invalid = (id: KeId, value: Uint8Array) => {
    const method = provider.keyExchange(id);
    const ke = method.initiate(seededRandom(`validation-${id}`));
    const fromComplete = errorCode(() => ke.complete(value));
    // Responding with the same value must fail the same way (the responder never gets to use it).
    const fromRespond = errorCode(() => method.respond(value, seededRandom(`validation-r-${id}`)));
    return [fromComplete, fromRespond];
  };
  const BOTH = ['CRYPTO_INVALID_PUBLIC_VALUE', 'CRYPTO_INVALID_PUBLIC_VALUE'];

  it('X25519 and X448: wrong lengths and low-order points (all-zero shared secret) are rejected', () => {
    expect(invalid(KeId.CURVE25519, new Uint8Array(31))).toEqual(BOTH);
    expect(invalid(KeId.CURVE25519, new Uint8Array(32))).toEqual(BOTH);
    const one = new Uint8Array(32);
    one[0] = 1;
    expect(invalid(KeId.CURVE25519, one)).toEqual(BOTH);
    // A point of order 8 (RFC 7748 §7 mentions the small-order points; this one is well known from libsodium's list).
    expect(
      invalid(KeId.CURVE25519, fromHex('e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800')),
    ).toEqual(BOTH);
    expect(invalid(KeId.CURVE448, new Uint8Array(56))).toEqual(BOTH);
    const one448 = new Uint8Array(56);
    one448[0] = 1;
    expect(invalid(KeId.CURVE448, one448)).toEqual(BOTH);
    expect(invalid(KeId.CURVE448, new Uint8Array(57))).toEqual(BOTH);
  });

  it.each([KeId.ECP_256, KeId.ECP_384, KeId.ECP_521])('ECP group %i: wrong length, off-curve points, x >= p', (id) => {
    const g = group(id);
    if (g.kind !== 'ecp') throw new Error('not ecp');
    const good = provider.keyExchange(id).initiate(seededRandom(`ecp-${id}`)).publicValue;
    expect(invalid(id, good.subarray(1))).toEqual(BOTH);
    expect(invalid(id, Uint8Array.from([4, ...good]))).toEqual(BOTH);
    const offCurve = Uint8Array.from(good);
    offCurve[offCurve.length - 1]! ^= 1;
    expect(invalid(id, offCurve)).toEqual(BOTH);
    expect(invalid(id, new Uint8Array(g.length * 2))).toEqual(BOTH);
    const bigX = Uint8Array.from(good);
    bigX.set(bigintBytes(g.prime, g.length), 0);
    expect(invalid(id, bigX)).toEqual(BOTH);
  });

  it.each([KeId.MODP_2048, KeId.MODP_3072, KeId.MODP_4096])(
    'MODP group %i: values outside [2, p-2] and wrong lengths',
    (id) => {
      const g = group(id);
      if (g.kind !== 'modp') throw new Error('not modp');
      for (const y of [0n, 1n, g.prime - 1n, g.prime, (1n << BigInt(g.length * 8)) - 1n]) {
        expect(invalid(id, bigintBytes(y, g.length))).toEqual(BOTH);
      }
      expect(invalid(id, bigintBytes(2n, g.length - 1))).toEqual(BOTH);
      expect(invalid(id, bigintBytes(2n, g.length + 1))).toEqual(BOTH);
      // The edges of the valid range are accepted.
      const ke = provider.keyExchange(id).initiate(seededRandom(`modp-edge-${id}`));
      expect(ke.complete(bigintBytes(2n, g.length))).toHaveLength(g.length);
      expect(ke.complete(bigintBytes(g.prime - 2n, g.length))).toHaveLength(g.length);
    },
  );

  it.each([KeId.ML_KEM_512, KeId.ML_KEM_768, KeId.ML_KEM_1024])('ML-KEM %i: exchange, lengths, invalid keys', (id) => {
    const method = provider.keyExchange(id);
    const initiator = method.initiate(seededRandom(`kem-i-${id}`));
    expect(initiator.publicValue).toHaveLength(method.initiatorLength);
    const responder = method.respond(initiator.publicValue, seededRandom(`kem-r-${id}`));
    expect(responder.publicValue).toHaveLength(method.responderLength);
    expect(responder.sharedSecret).toHaveLength(32);
    expect(toHex(initiator.complete(responder.publicValue))).toBe(toHex(responder.sharedSecret));
    // Wrong lengths both ways; an encapsulation key with coefficients >= q fails the FIPS 203 §7.2 check.
    expect(errorCode(() => method.respond(initiator.publicValue.subarray(1), seededRandom('x')))).toBe(
      'CRYPTO_INVALID_PUBLIC_VALUE',
    );
    expect(errorCode(() => initiator.complete(responder.publicValue.subarray(1)))).toBe('CRYPTO_INVALID_PUBLIC_VALUE');
    expect(errorCode(() => method.respond(new Uint8Array(method.initiatorLength).fill(0xff), seededRandom('y')))).toBe(
      'CRYPTO_INVALID_PUBLIC_VALUE',
    );
    // A tampered ciphertext gives a different (implicit rejection) key, never the real one.
    const tampered = Uint8Array.from(responder.publicValue);
    tampered[0]! ^= 1;
    expect(toHex(initiator.complete(tampered))).not.toBe(toHex(responder.sharedSecret));
  });

  it('unknown methods are CRYPTO_UNSUPPORTED', () => {
    expect(provider.supportsKeyExchange(KeId.MODP_8192)).toBe(false);
    expect(errorCode(() => provider.keyExchange(KeId.MODP_8192))).toBe('CRYPTO_UNSUPPORTED');
    expect(provider.supportsKeyExchange(KeId.ML_KEM_768)).toBe(true);
  });

  it('a short Random output is refused instead of producing a weak key', () => {
    expect(errorCode(() => provider.keyExchange(KeId.CURVE25519).initiate(() => new Uint8Array(3)))).toBe(
      'CRYPTO_INVALID_KEY',
    );
  });
});

/** pi * 2^bits, truncated, by Machin's formula pi = 16 atan(1/5) - 4 atan(1/239) in fixed point. */
function piScaled(bits: number): bigint {
  const guard = 64n;
  const one = 1n << (BigInt(bits) + guard);
  const atanInv = (x: bigint) => {
    let sum = 0n;
    let power = one / x;
    const x2 = x * x;
    for (let k = 0n; power !== 0n; k++) {
      const term = power / (2n * k + 1n);
      sum += k % 2n === 0n ? term : -term;
      power /= x2;
    }
    return sum;
  };
  return (16n * atanInv(5n) - 4n * atanInv(239n)) >> guard;
}

describe('RFC 3526 MODP primes', () => {
  it.each(modpFile.groups)(
    'group $keId ($bits bits) is 2^n - 2^(n-64) - 1 + 2^64 * ([2^(n-130) pi] + k), generator 2',
    (v) => {
      const g = group(v.keId);
      if (g.kind !== 'modp') throw new Error('not modp');
      const n = BigInt(v.bits);
      const expected = (1n << n) - (1n << (n - 64n)) - 1n + (1n << 64n) * (piScaled(v.bits - 130) + BigInt(v.k));
      expect(g.prime).toBe(expected);
      expect(g.generator).toBe(BigInt(v.generator));
      expect(g.length * 8).toBe(v.bits);
      const hex = g.prime.toString(16).toUpperCase();
      expect(hex.startsWith(v.primeHexPrefix)).toBe(true);
      expect(hex.endsWith(v.primeHexSuffix)).toBe(true);
      // OpenSSL's own copy of the RFC 3526 groups is an independent transcription.
      const openssl = getDiffieHellman(`modp${v.keId}`);
      expect(openssl.getPrime('hex')).toBe(g.prime.toString(16));
      expect(openssl.getGenerator('hex')).toBe('02');
    },
  );

  it('names its source', () => {
    expect(modpFile.source).toMatch(/RFC 3526/);
    expect(dh.source).toMatch(/RFC 7748/);
  });
});
