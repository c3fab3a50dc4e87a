/**
 * The reference provider: @noble/hashes, @noble/ciphers, @noble/curves and @noble/post-quantum (audited pure
 * JavaScript). Slower than node:crypto; used as the oracle in differential tests and where OpenSSL is unavailable.
 *
 * AES-GCM with 8- or 12-byte tags: @noble/ciphers only produces 16-byte tags. A truncated GCM tag is the prefix of the
 * full tag (NIST SP 800-38D §7.1 MSB_t), so sealing truncates; opening decrypts with AES-CTR from inc32(J0)
 * (SP 800-38D §7.2), recomputes the full tag by sealing the candidate plaintext again, and compares the prefix in
 * constant time. The candidate plaintext is wiped and never returned when the tag does not match.
 */
import { cbc, ctr, gcm } from '@noble/ciphers/aes.js';
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import { x448 } from '@noble/curves/ed448.js';
import { x25519 } from '@noble/curves/ed25519.js';
import { p256, p384, p521 } from '@noble/curves/nist.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha1 } from '@noble/hashes/legacy.js';
import { sha256, sha384, sha512 } from '@noble/hashes/sha2.js';
import { KeId } from '../constants.js';
import { CryptoError } from '../errors.js';
import { checkAead, checkCbc, checkHash, checkSealed, equalBytes } from './checks.js';
import {
  bigintToBytes,
  bytesToBigint,
  checkEcpLength,
  checkLength,
  checkModpPublic,
  checkNotAllZero,
  type EcpGroup,
  ecpPrivateScalar,
  groupParams,
  invalidPublic,
  type ModpGroup,
  type MontgomeryGroup,
  modpPrivateExponent,
  montgomeryPrivateKey,
  withUncompressedPrefix,
} from './groups.js';
import { mlkemMethod } from './mlkem.js';
import type { AeadName, CryptoProvider, HashName, KeyExchange, KeyExchangeMethod, Random } from './provider.js';

const HASHES = { sha1, sha256, sha384, sha512 } as const;

// --- AEAD ---------------------------------------------------------------------------------------------------------

function gcmSeal(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, plaintext: Uint8Array, tagLength: number) {
  const full = gcm(key, nonce, aad).encrypt(plaintext);
  return tagLength === 16 ? full : full.slice(0, plaintext.length + tagLength);
}

function gcmOpen(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, sealed: Uint8Array, tagLength: number) {
  const ctLength = sealed.length - tagLength;
  if (tagLength === 16) return gcm(key, nonce, aad).decrypt(sealed);
  // Counter block inc32(J0) = nonce || 0x00000002 for a 96-bit nonce.
  const counter = new Uint8Array(16);
  counter.set(nonce);
  counter[15] = 2;
  const candidate = ctr(key, counter).decrypt(sealed.subarray(0, ctLength));
  const resealed = gcm(key, nonce, aad).encrypt(candidate);
  if (!equalBytes(resealed.subarray(ctLength, ctLength + tagLength), sealed.subarray(ctLength))) {
    candidate.fill(0);
    throw new Error('tag mismatch');
  }
  return candidate;
}

function aeadSeal(
  alg: AeadName,
  key: Uint8Array,
  nonce: Uint8Array,
  aad: Uint8Array,
  pt: Uint8Array,
  tagLength: number,
) {
  if (alg === 'aes-gcm') return gcmSeal(key, nonce, aad, pt, tagLength);
  return chacha20poly1305(key, nonce, aad).encrypt(pt);
}

// --- key exchange -------------------------------------------------------------------------------------------------

/**
 * Left-to-right square-and-multiply on bigints. Not constant time (JavaScript bigints are not): acceptable for the
 * reference provider, which is why node:crypto is the default.
 */
function modPow(base: bigint, exponent: bigint, modulus: bigint): bigint {
  let result = 1n;
  base %= modulus;
  for (let bit = BigInt(exponent.toString(2).length - 1); bit >= 0n; bit--) {
    result = (result * result) % modulus;
    if ((exponent >> bit) & 1n) result = (result * base) % modulus;
  }
  return result;
}

function modpMethod(group: ModpGroup): KeyExchangeMethod {
  const start = (random: Random) => {
    const x = bytesToBigint(modpPrivateExponent(group, random));
    const publicValue = bigintToBytes(modPow(group.generator, x, group.prime), group.length);
    const complete = (peer: Uint8Array): Uint8Array => {
      const y = checkModpPublic(group, peer);
      return bigintToBytes(modPow(y, x, group.prime), group.length);
    };
    return { publicValue, complete };
  };
  return dhMethod(group.id, group.length, start);
}

const EC_CURVES: Partial<Record<KeId, typeof p256>> = {
  [KeId.ECP_256]: p256,
  [KeId.ECP_384]: p384,
  [KeId.ECP_521]: p521,
};

function ecpMethod(group: EcpGroup): KeyExchangeMethod {
  const curve = EC_CURVES[group.id]!;
  const start = (random: Random) => {
    const d = ecpPrivateScalar(group, random);
    const publicValue = curve.getPublicKey(d, false).slice(1);
    const complete = (peer: Uint8Array): Uint8Array => {
      checkEcpLength(group, peer);
      let shared: Uint8Array;
      try {
        // fromBytes checks that the point is on the curve (SEC 1 §3.2.2.1; cofactor 1, so no subgroup check).
        curve.Point.fromBytes(withUncompressedPrefix(peer)).assertValidity();
        shared = curve.getSharedSecret(d, withUncompressedPrefix(peer), true);
      } catch {
        throw invalidPublic(`KE data for group ${group.id} is not a point on the curve`);
      }
      // Compressed encoding is prefix || x: the x coordinate is the shared secret (RFC 5903 §7).
      return shared.slice(1);
    };
    return { publicValue, complete };
  };
  return dhMethod(group.id, group.length * 2, start);
}

function montgomeryMethod(group: MontgomeryGroup): KeyExchangeMethod {
  const fn = group.id === KeId.CURVE25519 ? x25519 : x448;
  const start = (random: Random) => {
    const sk = montgomeryPrivateKey(group, random);
    const publicValue = fn.getPublicKey(sk);
    const complete = (peer: Uint8Array): Uint8Array => {
      checkLength(group.id, group.length, peer);
      let secret: Uint8Array;
      try {
        secret = fn.getSharedSecret(sk, peer);
      } catch {
        // @noble rejects an all-zero output itself.
        throw invalidPublic(`KE data for method ${group.id} gives an all-zero shared secret`);
      }
      checkNotAllZero(group.id, secret);
      return secret;
    };
    return { publicValue, complete };
  };
  return dhMethod(group.id, group.length, start);
}

function dhMethod(
  id: KeId,
  length: number,
  start: (random: Random) => { publicValue: Uint8Array; complete(peer: Uint8Array): Uint8Array },
): KeyExchangeMethod {
  return {
    id,
    initiatorLength: length,
    responderLength: length,
    initiate(random: Random): KeyExchange {
      const { publicValue, complete } = start(random);
      return { id, publicValue, complete };
    },
    respond(peerValue: Uint8Array, random: Random) {
      if (peerValue.length !== length) {
        throw invalidPublic(`KE data for method ${id} must be ${length} bytes, got ${peerValue.length}`);
      }
      const { publicValue, complete } = start(random);
      return { publicValue, sharedSecret: complete(peerValue) };
    },
  };
}

function createKeyExchange(id: KeId): KeyExchangeMethod | undefined {
  const g = groupParams(id);
  switch (g?.kind) {
    case 'modp':
      return modpMethod(g);
    case 'ecp':
      return ecpMethod(g);
    case 'montgomery':
      return montgomeryMethod(g);
    case 'mlkem':
      return mlkemMethod(g);
    default:
      return undefined;
  }
}

export function createNobleProvider(): CryptoProvider {
  const methods = new Map<KeId, KeyExchangeMethod>();
  return {
    name: 'noble',
    hash(alg: HashName, data: Uint8Array): Uint8Array {
      checkHash(alg);
      return HASHES[alg](data);
    },
    hmac(alg: HashName, key: Uint8Array, data: Uint8Array): Uint8Array {
      checkHash(alg);
      return hmac(HASHES[alg], key, data);
    },
    aeadSeal(alg, key, nonce, aad, plaintext, tagLength) {
      checkAead(alg, key, nonce, tagLength);
      return aeadSeal(alg, key, nonce, aad, plaintext, tagLength);
    },
    aeadOpen(alg, key, nonce, aad, sealed, tagLength) {
      checkAead(alg, key, nonce, tagLength);
      checkSealed(sealed, tagLength);
      try {
        if (alg === 'aes-gcm') return gcmOpen(key, nonce, aad, sealed, tagLength);
        return chacha20poly1305(key, nonce, aad).decrypt(sealed);
      } catch {
        throw new CryptoError('CRYPTO_AUTH_FAILED', `${alg} authentication failed`);
      }
    },
    aesCbcEncrypt(key, iv, data) {
      checkCbc(key, iv, data);
      return cbc(key, iv, { disablePadding: true }).encrypt(data);
    },
    aesCbcDecrypt(key, iv, data) {
      checkCbc(key, iv, data);
      return cbc(key, iv, { disablePadding: true }).decrypt(data);
    },
    keyExchange(id: KeId): KeyExchangeMethod {
      let m = methods.get(id);
      if (!m) {
        m = createKeyExchange(id);
        if (!m) throw new CryptoError('CRYPTO_UNSUPPORTED', `key exchange method ${id} is not supported`);
        methods.set(id, m);
      }
      return m;
    },
    supportsKeyExchange(id: KeId): boolean {
      return groupParams(id) !== undefined;
    },
  };
}
