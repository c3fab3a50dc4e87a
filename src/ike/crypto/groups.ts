/**
 * Group parameters and private-key derivation shared by both providers, so that the same `Random` output gives the
 * same private value (and therefore the same public value) in node:crypto and in @noble.
 *
 * Private values:
 *  - MODP (RFC 3526): x = 1 + (r mod (2^N - 1)) with r of N + 64 random bits, i.e. x in [1, 2^N - 1] as NIST
 *    SP 800-56A Rev. 3 §5.6.1.1.4 allows for safe-prime groups. N is 384 / 512 / 512 bits for groups 14 / 15 / 16:
 *    well above twice the security strength (SP 800-56A Rev. 3 Appendix D; the RFC 3526 §8 table asks for
 *    220-320 / 260-420 / 300-480 bits) and the same exponent lengths strongSwan uses, so its MODP test vectors apply.
 *  - ECP (RFC 5903): d = 1 + (r mod (n - 1)) with r of len(n) + 8 random bytes (FIPS 186-5 A.2.1 "extra random bits").
 *  - Curve25519 / Curve448 (RFC 7748 §5): 32 / 56 random bytes, clamped by the X25519/X448 functions themselves.
 *  - ML-KEM (FIPS 203): the 64-byte key-generation seed (d || z) and the 32-byte encapsulation message m.
 * The Random port is the only source of randomness; nothing here touches a global generator.
 */
import { p256, p384, p521 } from '@noble/curves/nist.js';
import { KeId } from '../constants.js';
import { CryptoError } from '../errors.js';
import type { Random } from './provider.js';

/** RFC 3526 §3: the 2048-bit MODP group (group 14), generator 2. */
const MODP_2048_HEX =
  'FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74' +
  '020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437' +
  '4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED' +
  'EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05' +
  '98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB' +
  '9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B' +
  'E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718' +
  '3995497CEA956AE515D2261898FA051015728E5A8AACAA68FFFFFFFFFFFFFFFF';
/** RFC 3526 §4: the 3072-bit MODP group (group 15), generator 2. */
const MODP_3072_HEX =
  'FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74' +
  '020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437' +
  '4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED' +
  'EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05' +
  '98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB' +
  '9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B' +
  'E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718' +
  '3995497CEA956AE515D2261898FA051015728E5A8AAAC42DAD33170D04507A33' +
  'A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7' +
  'ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864' +
  'D87602733EC86A64521F2B18177B200CBBE117577A615D6C770988C0BAD946E2' +
  '08E24FA074E5AB3143DB5BFCE0FD108E4B82D120A93AD2CAFFFFFFFFFFFFFFFF';
/** RFC 3526 §5: the 4096-bit MODP group (group 16), generator 2. */
const MODP_4096_HEX =
  'FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74' +
  '020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437' +
  '4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED' +
  'EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05' +
  '98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB' +
  '9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B' +
  'E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718' +
  '3995497CEA956AE515D2261898FA051015728E5A8AAAC42DAD33170D04507A33' +
  'A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7' +
  'ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864' +
  'D87602733EC86A64521F2B18177B200CBBE117577A615D6C770988C0BAD946E2' +
  '08E24FA074E5AB3143DB5BFCE0FD108E4B82D120A92108011A723C12A787E6D7' +
  '88719A10BDBA5B2699C327186AF4E23C1A946834B6150BDA2583E9CA2AD44CE8' +
  'DBBBC2DB04DE8EF92E8EFC141FBECAA6287C59474E6BC05D99B2964FA090C3A2' +
  '233BA186515BE7ED1F612970CEE2D7AFB81BDD762170481CD0069127D5B05AA9' +
  '93B4EA988D8FDDC186FFB7DC90A6C08F4DF435C934063199FFFFFFFFFFFFFFFF';

export interface ModpGroup {
  readonly kind: 'modp';
  readonly id: KeId;
  readonly prime: bigint;
  readonly generator: bigint;
  /** Prime length in bytes: the length of KE data and of the shared secret (RFC 7296 §3.4 / §2.14: left-padded). */
  readonly length: number;
  /** Bits of the private exponent. */
  readonly exponentBits: number;
}

export interface EcpGroup {
  readonly kind: 'ecp';
  readonly id: KeId;
  /** Field element length in bytes; KE data is x || y (2 * length, RFC 5903 §7), the shared secret is x. */
  readonly length: number;
  /** Order of the base point. */
  readonly order: bigint;
  readonly prime: bigint;
}

export interface MontgomeryGroup {
  readonly kind: 'montgomery';
  readonly id: KeId;
  /** Public value, private value and shared secret length in bytes (RFC 7748 §5, RFC 8031 §2). */
  readonly length: number;
}

export interface KemGroup {
  readonly kind: 'mlkem';
  readonly id: KeId;
  /** Encapsulation key length (initiator's KE data). */
  readonly initiatorLength: number;
  /** Ciphertext length (responder's KE data). */
  readonly responderLength: number;
}

export type GroupParams = ModpGroup | EcpGroup | MontgomeryGroup | KemGroup;

function modp(id: KeId, hex: string, exponentBits: number): ModpGroup {
  return { kind: 'modp', id, prime: BigInt(`0x${hex}`), generator: 2n, length: hex.length / 2, exponentBits };
}

function ecp(id: KeId, curve: typeof p256): EcpGroup {
  const c = curve.Point.CURVE();
  return { kind: 'ecp', id, length: curve.Point.Fp.BYTES, order: c.n, prime: c.p };
}

const GROUPS: ReadonlyMap<KeId, GroupParams> = new Map<KeId, GroupParams>([
  // Security strengths 112 / 128 / 152 bits (SP 800-56A Rev. 3 Appendix D): exponents of 384 / 512 / 512 bits.
  [KeId.MODP_2048, modp(KeId.MODP_2048, MODP_2048_HEX, 384)],
  [KeId.MODP_3072, modp(KeId.MODP_3072, MODP_3072_HEX, 512)],
  [KeId.MODP_4096, modp(KeId.MODP_4096, MODP_4096_HEX, 512)],
  [KeId.ECP_256, ecp(KeId.ECP_256, p256)],
  [KeId.ECP_384, ecp(KeId.ECP_384, p384)],
  [KeId.ECP_521, ecp(KeId.ECP_521, p521)],
  [KeId.CURVE25519, { kind: 'montgomery', id: KeId.CURVE25519, length: 32 }],
  [KeId.CURVE448, { kind: 'montgomery', id: KeId.CURVE448, length: 56 }],
  // FIPS 203 Table 3: encapsulation key / ciphertext sizes.
  [KeId.ML_KEM_512, { kind: 'mlkem', id: KeId.ML_KEM_512, initiatorLength: 800, responderLength: 768 }],
  [KeId.ML_KEM_768, { kind: 'mlkem', id: KeId.ML_KEM_768, initiatorLength: 1184, responderLength: 1088 }],
  [KeId.ML_KEM_1024, { kind: 'mlkem', id: KeId.ML_KEM_1024, initiatorLength: 1568, responderLength: 1568 }],
]);

/** Parameters of a key exchange method known to this module, or undefined. */
export function groupParams(id: KeId): GroupParams | undefined {
  return GROUPS.get(id);
}

export function knownGroupIds(): KeId[] {
  return [...GROUPS.keys()];
}

export function bytesToBigint(bytes: Uint8Array): bigint {
  let hex = '';
  for (const b of bytes) hex += b.toString(16).padStart(2, '0');
  return hex.length === 0 ? 0n : BigInt(`0x${hex}`);
}

/** Big-endian encoding of `value` left-padded with zeros to exactly `length` bytes. */
export function bigintToBytes(value: bigint, length: number): Uint8Array {
  if (value < 0n) throw new CryptoError('CRYPTO_INVALID_KEY', 'negative integer cannot be encoded');
  const hex = value.toString(16);
  if (hex.length > length * 2) throw new CryptoError('CRYPTO_INVALID_KEY', 'integer too large for its encoding');
  const out = new Uint8Array(length);
  const padded = hex.padStart(length * 2, '0');
  for (let i = 0; i < length; i++) out[i] = Number.parseInt(padded.slice(i * 2, i * 2 + 2), 16);
  return out;
}

function take(random: Random, length: number): Uint8Array {
  const bytes = random(length);
  if (!(bytes instanceof Uint8Array) || bytes.length !== length) {
    throw new CryptoError(
      'CRYPTO_INVALID_KEY',
      `random source returned ${bytes?.length ?? 'no'} bytes, wanted ${length}`,
    );
  }
  return bytes;
}

/** MODP private exponent, big-endian, `ceil(exponentBits / 8)` bytes. */
export function modpPrivateExponent(group: ModpGroup, random: Random): Uint8Array {
  const r = bytesToBigint(take(random, group.exponentBits / 8 + 8));
  const x = 1n + (r % ((1n << BigInt(group.exponentBits)) - 1n));
  return bigintToBytes(x, group.exponentBits / 8);
}

/** ECP private scalar in [1, n-1], big-endian, `group.length` bytes. */
export function ecpPrivateScalar(group: EcpGroup, random: Random): Uint8Array {
  const r = bytesToBigint(take(random, group.length + 8));
  const d = 1n + (r % (group.order - 1n));
  return bigintToBytes(d, group.length);
}

/** X25519 / X448 private key: raw random bytes (clamping is part of the scalar multiplication, RFC 7748 §5). */
export function montgomeryPrivateKey(group: MontgomeryGroup, random: Random): Uint8Array {
  return Uint8Array.from(take(random, group.length));
}

/** ML-KEM key generation seed (d || z, 64 bytes, FIPS 203 Algorithm 19). */
export function mlkemKeygenSeed(random: Random): Uint8Array {
  return Uint8Array.from(take(random, 64));
}

/** ML-KEM encapsulation randomness m (32 bytes, FIPS 203 Algorithm 20). */
export function mlkemEncapsulationMessage(random: Random): Uint8Array {
  return Uint8Array.from(take(random, 32));
}

export function invalidPublic(message: string): CryptoError {
  return new CryptoError('CRYPTO_INVALID_PUBLIC_VALUE', message);
}

/** RFC 7296 §3.4 / SP 800-56A Rev. 3 §5.6.2.3.1: a MODP public value has the prime's length and 2 <= y <= p - 2. */
export function checkModpPublic(group: ModpGroup, value: Uint8Array): bigint {
  if (value.length !== group.length) {
    throw invalidPublic(`KE data for group ${group.id} must be ${group.length} bytes, got ${value.length}`);
  }
  const y = bytesToBigint(value);
  // For a safe prime the only small subgroups are {1} and {1, p-1}; excluding 0, 1 and p-1 (and >= p) is the full
  // validation (the order-q check y^q = 1 would only tell the two large subgroups apart, which needs no defence).
  if (y < 2n || y > group.prime - 2n) throw invalidPublic(`KE data for group ${group.id} is outside [2, p-2]`);
  return y;
}

/** RFC 5903 §7: ECP KE data is x || y, each exactly the field length. Coordinates must be < p (SEC 1 §3.2.2.1). */
export function checkEcpLength(group: EcpGroup, value: Uint8Array): void {
  if (value.length !== group.length * 2) {
    throw invalidPublic(`KE data for group ${group.id} must be ${group.length * 2} bytes, got ${value.length}`);
  }
  const x = bytesToBigint(value.subarray(0, group.length));
  const y = bytesToBigint(value.subarray(group.length));
  if (x >= group.prime || y >= group.prime) throw invalidPublic(`KE data for group ${group.id}: coordinate >= p`);
}

export function checkLength(id: KeId, expected: number, value: Uint8Array): void {
  if (value.length !== expected) {
    throw invalidPublic(`KE data for method ${id} must be ${expected} bytes, got ${value.length}`);
  }
}

/** RFC 7748 §6 / RFC 8031 §2.3: an all-zero X25519/X448 output means a low-order peer value and MUST be rejected. */
export function checkNotAllZero(id: KeId, secret: Uint8Array): void {
  let acc = 0;
  for (const b of secret) acc |= b;
  if (acc === 0) throw invalidPublic(`KE data for method ${id} gives an all-zero shared secret`);
}

/** Prefix `04` for SEC 1 uncompressed point encoding. */
export function withUncompressedPrefix(value: Uint8Array): Uint8Array {
  const out = new Uint8Array(value.length + 1);
  out[0] = 4;
  out.set(value, 1);
  return out;
}
