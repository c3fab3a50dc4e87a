/**
 * The default provider: node:crypto (OpenSSL). Fast; the noble provider is its reference in differential tests.
 *
 * Key exchange: MODP 14/15/16 (createDiffieHellman with the RFC 3526 prime), ECP 19/20/21 (createECDH), Curve25519
 * and Curve448 (X25519/X448 KeyObjects from raw keys). Node 20 has no ML-KEM: for ML-KEM 512/768/1024 this provider
 * delegates to the @noble/post-quantum implementation (the same code the noble provider runs), so the default
 * provider supports every method the engine offers; `supportsKeyExchange` reports them as supported.
 */
import {
  type CipherGCM,
  type CipherGCMTypes,
  createCipheriv,
  createDecipheriv,
  createDiffieHellman,
  createECDH,
  createHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  type DecipherGCM,
  diffieHellman,
  type KeyObject,
} from 'node:crypto';
import { KeId } from '../constants.js';
import { CryptoError } from '../errors.js';
import { checkAead, checkCbc, checkHash, checkSealed } from './checks.js';
import {
  bigintToBytes,
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

/** A Uint8Array view of a Buffer (no copy), so both providers return the same type. */
function u8(buf: Buffer): Uint8Array {
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.length);
}

function gcmName(keyLength: number): CipherGCMTypes {
  return keyLength === 16 ? 'aes-128-gcm' : keyLength === 24 ? 'aes-192-gcm' : 'aes-256-gcm';
}

/** AEAD cipher objects; both kinds have the same setAAD/getAuthTag/setAuthTag shape. */
function aeadCipher(alg: AeadName, key: Uint8Array, nonce: Uint8Array, tagLength: number): CipherGCM {
  const options = { authTagLength: tagLength };
  return alg === 'chacha20-poly1305'
    ? (createCipheriv('chacha20-poly1305', key, nonce, options) as unknown as CipherGCM)
    : createCipheriv(gcmName(key.length), key, nonce, options);
}

function aeadDecipher(alg: AeadName, key: Uint8Array, nonce: Uint8Array, tagLength: number): DecipherGCM {
  const options = { authTagLength: tagLength };
  return alg === 'chacha20-poly1305'
    ? (createDecipheriv('chacha20-poly1305', key, nonce, options) as unknown as DecipherGCM)
    : createDecipheriv(gcmName(key.length), key, nonce, options);
}

function cbcName(keyLength: number): string {
  return `aes-${keyLength * 8}-cbc`;
}

// --- key exchange -------------------------------------------------------------------------------------------------

function modpMethod(group: ModpGroup): KeyExchangeMethod {
  const primeBytes = Buffer.from(bigintToBytes(group.prime, group.length));
  const start = (random: Random) => {
    const dh = createDiffieHellman(primeBytes, 2);
    dh.setPrivateKey(Buffer.from(modpPrivateExponent(group, random)));
    const publicValue = bigintToBytes(BigInt(`0x${dh.generateKeys('hex') || '0'}`), group.length);
    const complete = (peer: Uint8Array): Uint8Array => {
      checkModpPublic(group, peer);
      const secret = dh.computeSecret(Buffer.from(peer));
      // Left-pad to the prime length (RFC 7296 §2.14: g^ir is the same length as the prime).
      const out = new Uint8Array(group.length);
      out.set(secret, group.length - secret.length);
      return out;
    };
    return { publicValue, complete };
  };
  return dhMethod(group.id, group.length, start);
}

const EC_CURVE_NAMES: Partial<Record<KeId, string>> = {
  [KeId.ECP_256]: 'prime256v1',
  [KeId.ECP_384]: 'secp384r1',
  [KeId.ECP_521]: 'secp521r1',
};

function ecpMethod(group: EcpGroup): KeyExchangeMethod {
  const curve = EC_CURVE_NAMES[group.id]!;
  const start = (random: Random) => {
    const ecdh = createECDH(curve);
    ecdh.setPrivateKey(Buffer.from(ecpPrivateScalar(group, random)));
    // RFC 5903 §7: KE data is x || y without the SEC 1 0x04 prefix.
    const publicValue = u8(ecdh.getPublicKey()).slice(1);
    const complete = (peer: Uint8Array): Uint8Array => {
      checkEcpLength(group, peer);
      let secret: Buffer;
      try {
        secret = ecdh.computeSecret(Buffer.from(withUncompressedPrefix(peer)));
      } catch {
        throw invalidPublic(`KE data for group ${group.id} is not a point on the curve`);
      }
      // ECDH output is the x coordinate, already padded to the field length (RFC 5903 §7).
      return u8(secret);
    };
    return { publicValue, complete };
  };
  return dhMethod(group.id, group.length * 2, start);
}

// DER prefixes of PKCS #8 private keys and SubjectPublicKeyInfo for X25519 (OID 1.3.101.110) and X448 (1.3.101.111),
// RFC 8410 §7 / §4: fixed headers followed by the raw key.
const MONTGOMERY_DER: Partial<Record<KeId, { pkcs8: string; spki: string; crv: 'X25519' | 'X448' }>> = {
  [KeId.CURVE25519]: { pkcs8: '302e020100300506032b656e04220420', spki: '302a300506032b656e032100', crv: 'X25519' },
  [KeId.CURVE448]: { pkcs8: '3046020100300506032b656f043a0438', spki: '3042300506032b656f033900', crv: 'X448' },
};

/**
 * Raw X25519/X448 keys into KeyObjects. JWK import is about ten times faster than DER in Node 20 (OpenSSL 3 decoder
 * lookup), but a private JWK needs an `x` member that Node does not use (it derives the public key from `d`). A
 * self-test at first use checks that the JWK path gives the same public key as the PKCS #8 path; if it ever differs
 * or throws (a Node that validates `x`), the DER path is used.
 */
function montgomeryKeys(id: KeId, length: number) {
  const der = MONTGOMERY_DER[id]!;
  const pkcs8 = Buffer.from(der.pkcs8, 'hex');
  const spki = Buffer.from(der.spki, 'hex');
  const placeholderX = Buffer.alloc(length).toString('base64url');
  const viaDer = (raw: Uint8Array) =>
    createPrivateKey({ key: Buffer.concat([pkcs8, raw]), format: 'der', type: 'pkcs8' });
  const viaJwk = (raw: Uint8Array) =>
    createPrivateKey({
      key: { kty: 'OKP', crv: der.crv, d: Buffer.from(raw).toString('base64url'), x: placeholderX },
      format: 'jwk',
    });
  const publicOf = (key: KeyObject) => u8(Buffer.from(createPublicKey(key).export({ format: 'jwk' }).x!, 'base64url'));
  let jwkWorks: boolean | undefined;
  const selfTest = () => {
    const probe = new Uint8Array(length).fill(0x5a);
    try {
      return Buffer.from(publicOf(viaJwk(probe))).equals(Buffer.from(publicOf(viaDer(probe))));
    } catch {
      return false;
    }
  };
  return {
    privateKey(raw: Uint8Array): KeyObject {
      jwkWorks ??= selfTest();
      return jwkWorks ? viaJwk(raw) : viaDer(raw);
    },
    publicOf,
    peerKey(raw: Uint8Array): KeyObject {
      if (jwkWorks)
        return createPublicKey({
          key: { kty: 'OKP', crv: der.crv, x: Buffer.from(raw).toString('base64url') },
          format: 'jwk',
        });
      return createPublicKey({ key: Buffer.concat([spki, raw]), format: 'der', type: 'spki' });
    },
  };
}

function montgomeryMethod(group: MontgomeryGroup): KeyExchangeMethod {
  const keys = montgomeryKeys(group.id, group.length);
  const start = (random: Random) => {
    const privateKey = keys.privateKey(montgomeryPrivateKey(group, random));
    const publicValue = keys.publicOf(privateKey);
    const complete = (peer: Uint8Array): Uint8Array => {
      checkLength(group.id, group.length, peer);
      let secret: Buffer;
      try {
        secret = diffieHellman({ privateKey, publicKey: keys.peerKey(peer) });
      } catch {
        // OpenSSL refuses to derive an all-zero X25519/X448 output (a low-order peer point).
        throw invalidPublic(`KE data for method ${group.id} gives an all-zero shared secret`);
      }
      const out = u8(secret);
      checkNotAllZero(group.id, out);
      return out;
    };
    return { publicValue, complete };
  };
  return dhMethod(group.id, group.length, start);
}

/** A Diffie-Hellman method from a key-pair starter: responding is initiating then completing. */
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
      // Validate before spending a key generation on garbage.
      if (peerValue.length !== length) {
        throw new CryptoError(
          'CRYPTO_INVALID_PUBLIC_VALUE',
          `KE data for method ${id} must be ${length} bytes, got ${peerValue.length}`,
        );
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

export function createNodeProvider(): CryptoProvider {
  const methods = new Map<KeId, KeyExchangeMethod>();
  return {
    name: 'node',
    hash(alg: HashName, data: Uint8Array): Uint8Array {
      checkHash(alg);
      return u8(createHash(alg).update(data).digest());
    },
    hmac(alg: HashName, key: Uint8Array, data: Uint8Array): Uint8Array {
      checkHash(alg);
      return u8(createHmac(alg, key).update(data).digest());
    },
    aeadSeal(alg, key, nonce, aad, plaintext, tagLength) {
      checkAead(alg, key, nonce, tagLength);
      const c = aeadCipher(alg, key, nonce, tagLength);
      c.setAAD(aad, { plaintextLength: plaintext.length });
      const head = c.update(plaintext);
      const tail = c.final();
      return u8(Buffer.concat([head, tail, c.getAuthTag()]));
    },
    aeadOpen(alg, key, nonce, aad, sealed, tagLength) {
      checkAead(alg, key, nonce, tagLength);
      checkSealed(sealed, tagLength);
      const ctLength = sealed.length - tagLength;
      const d = aeadDecipher(alg, key, nonce, tagLength);
      d.setAuthTag(sealed.subarray(ctLength));
      d.setAAD(aad, { plaintextLength: ctLength });
      const head = d.update(sealed.subarray(0, ctLength));
      try {
        const tail = d.final();
        return u8(tail.length === 0 ? head : Buffer.concat([head, tail]));
      } catch {
        head.fill(0);
        throw new CryptoError('CRYPTO_AUTH_FAILED', `${alg} authentication failed`);
      }
    },
    aesCbcEncrypt(key, iv, data) {
      checkCbc(key, iv, data);
      const c = createCipheriv(cbcName(key.length), key, iv).setAutoPadding(false);
      return u8(Buffer.concat([c.update(data), c.final()]));
    },
    aesCbcDecrypt(key, iv, data) {
      checkCbc(key, iv, data);
      const d = createDecipheriv(cbcName(key.length), key, iv).setAutoPadding(false);
      return u8(Buffer.concat([d.update(data), d.final()]));
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
