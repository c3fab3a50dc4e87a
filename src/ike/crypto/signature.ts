/**
 * Public-key AUTH data (RFC 7296 §2.15, §3.8; RFC 7427; RFC 4754): signing our AUTH octets and verifying the
 * peer's, with node:crypto (OpenSSL).
 *
 * RFC 7427 "Digital Signature" (method 14) AUTH data is
 *
 *   | ASN.1 Length (1 octet) | AlgorithmIdentifier (DER) | Signature Value |
 *
 * We never parse ASN.1 here: the AlgorithmIdentifiers we send and accept are the fixed DER strings of RFC 7427
 * Appendix A (A.1 PKCS#1 v1.5, A.3 ECDSA, A.4.3 RSASSA-PSS with SHA-2 — the salt as long as the hash and
 * MGF1 with the same hash, the usual choice of OpenSSL and strongSwan) and RFC 8420 §2 (Ed25519/Ed448 with the
 * "Identity" hash). A test checks each against the signatureAlgorithm OpenSSL writes into certificates.
 * ECDSA signatures in method 14 are DER Ecdsa-Sig-Value (RFC 7427 §3); in methods 9-11 they are r || s (RFC 4754).
 *
 * The classic methods are for peers that do not announce SIGNATURE_HASH_ALGORITHMS: RSA (1) is RSASSA-PKCS1-v1_5
 * with SHA-1 (RFC 7296 §3.8 as implemented by strongSwan and libreswan), ECDSA 9/10/11 use SHA-256/384/512 on
 * P-256/P-384/P-521 (RFC 4754 §3).
 */
import { constants, type KeyObject, sign, verify } from 'node:crypto';
import { AuthMethod, HashAlgorithm } from '../constants.js';
import { IkeError } from '../errors.js';

const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));

type NodeHash = 'sha256' | 'sha384' | 'sha512';

export interface SignatureScheme {
  /** Name for messages and logs. */
  name: string;
  /** The DER AlgorithmIdentifier of RFC 7427 Appendix A / RFC 8420. */
  algId: Uint8Array;
  /** Key type (KeyObject.asymmetricKeyType) the scheme needs. */
  keyType: 'ec' | 'rsa' | 'ed25519' | 'ed448';
  /** The RFC 7427 hash algorithm it uses (what SIGNATURE_HASH_ALGORITHMS negotiates). */
  hash: HashAlgorithm;
  nodeHash: NodeHash | null;
  pss?: boolean;
}

const RSA_PSS_OID = '06092a864886f70d01010a';
/** RFC 7427 A.4.3 layout: hashAlgorithm [0], maskGenAlgorithm [1] (MGF1 with the same hash), saltLength [2]. */
const pss = (hashOidByte: string, saltHex: string) =>
  hex(
    `3041${RSA_PSS_OID}3034` +
      `a00f300d06096086480165030402${hashOidByte}0500` +
      `a11c301a06092a864886f70d010108300d06096086480165030402${hashOidByte}0500` +
      `a2030201${saltHex}`,
  );

/** Every scheme we sign or verify with under method 14. */
export const SIGNATURE_SCHEMES: readonly SignatureScheme[] = [
  // RFC 7427 A.3.2-A.3.4: ecdsa-with-SHA256/384/512
  {
    name: 'ecdsa-with-sha256',
    algId: hex('300a06082a8648ce3d040302'),
    keyType: 'ec',
    hash: HashAlgorithm.SHA2_256,
    nodeHash: 'sha256',
  },
  {
    name: 'ecdsa-with-sha384',
    algId: hex('300a06082a8648ce3d040303'),
    keyType: 'ec',
    hash: HashAlgorithm.SHA2_384,
    nodeHash: 'sha384',
  },
  {
    name: 'ecdsa-with-sha512',
    algId: hex('300a06082a8648ce3d040304'),
    keyType: 'ec',
    hash: HashAlgorithm.SHA2_512,
    nodeHash: 'sha512',
  },
  // RFC 8420 §2: id-Ed25519, id-Ed448 (no parameters)
  { name: 'ed25519', algId: hex('300506032b6570'), keyType: 'ed25519', hash: HashAlgorithm.IDENTITY, nodeHash: null },
  { name: 'ed448', algId: hex('300506032b6571'), keyType: 'ed448', hash: HashAlgorithm.IDENTITY, nodeHash: null },
  // RFC 7427 A.4.3 (and the same for SHA-384/512): RSASSA-PSS, salt length = hash length
  {
    name: 'rsassa-pss-sha256',
    algId: pss('01', '20'),
    keyType: 'rsa',
    hash: HashAlgorithm.SHA2_256,
    nodeHash: 'sha256',
    pss: true,
  },
  {
    name: 'rsassa-pss-sha384',
    algId: pss('02', '30'),
    keyType: 'rsa',
    hash: HashAlgorithm.SHA2_384,
    nodeHash: 'sha384',
    pss: true,
  },
  {
    name: 'rsassa-pss-sha512',
    algId: pss('03', '40'),
    keyType: 'rsa',
    hash: HashAlgorithm.SHA2_512,
    nodeHash: 'sha512',
    pss: true,
  },
  // RFC 7427 A.1.2-A.1.4: sha256/384/512WithRSAEncryption
  {
    name: 'sha256WithRSAEncryption',
    algId: hex('300d06092a864886f70d01010b0500'),
    keyType: 'rsa',
    hash: HashAlgorithm.SHA2_256,
    nodeHash: 'sha256',
  },
  {
    name: 'sha384WithRSAEncryption',
    algId: hex('300d06092a864886f70d01010c0500'),
    keyType: 'rsa',
    hash: HashAlgorithm.SHA2_384,
    nodeHash: 'sha384',
  },
  {
    name: 'sha512WithRSAEncryption',
    algId: hex('300d06092a864886f70d01010d0500'),
    keyType: 'rsa',
    hash: HashAlgorithm.SHA2_512,
    nodeHash: 'sha512',
  },
];

/** The hash algorithms we announce in SIGNATURE_HASH_ALGORITHMS and accept in method 14 (no SHA-1). */
export const SUPPORTED_SIGNATURE_HASHES: readonly HashAlgorithm[] = [
  HashAlgorithm.SHA2_256,
  HashAlgorithm.SHA2_384,
  HashAlgorithm.SHA2_512,
  HashAlgorithm.IDENTITY,
];

/** Why a signature could not be made or checked; every case has its own code. */
export type SignatureErrorCode = 'AUTH_UNSUPPORTED_ALGORITHM' | 'AUTH_METHOD_MISMATCH' | 'AUTH_SIGNATURE_INVALID';

export class SignatureError extends IkeError {
  constructor(code: SignatureErrorCode, message: string) {
    super(code, message);
    this.name = 'SignatureError';
  }
}

/** RSA keys of type 'rsa-pss' are RSA keys restricted to PSS. */
function baseKeyType(key: KeyObject): string {
  const t = key.asymmetricKeyType ?? 'unknown';
  return t === 'rsa-pss' ? 'rsa' : t;
}

const CURVE_HASH: Record<string, { hash: HashAlgorithm; method: AuthMethod; nodeHash: NodeHash }> = {
  prime256v1: { hash: HashAlgorithm.SHA2_256, method: AuthMethod.ECDSA_SHA256_P256, nodeHash: 'sha256' },
  secp384r1: { hash: HashAlgorithm.SHA2_384, method: AuthMethod.ECDSA_SHA384_P384, nodeHash: 'sha384' },
  secp521r1: { hash: HashAlgorithm.SHA2_512, method: AuthMethod.ECDSA_SHA512_P521, nodeHash: 'sha512' },
};

export function describeKey(key: KeyObject): string {
  const t = key.asymmetricKeyType ?? 'unknown';
  const d = key.asymmetricKeyDetails;
  if (t === 'ec') return `ECDSA ${d?.namedCurve ?? '?'}`;
  if (t === 'rsa' || t === 'rsa-pss') return `${t === 'rsa' ? 'RSA' : 'RSA-PSS'} ${d?.modulusLength ?? '?'} bits`;
  return t === 'ed25519' ? 'Ed25519' : t === 'ed448' ? 'Ed448' : t;
}

export const AUTH_METHOD_NAMES: Record<number, string> = {
  [AuthMethod.RSA_SIG]: 'RSA signature (1)',
  [AuthMethod.SHARED_KEY_MIC]: 'pre-shared key (2)',
  [AuthMethod.DSS_SIG]: 'DSS signature (3)',
  [AuthMethod.ECDSA_SHA256_P256]: 'ECDSA P-256 (9)',
  [AuthMethod.ECDSA_SHA384_P384]: 'ECDSA P-384 (10)',
  [AuthMethod.ECDSA_SHA512_P521]: 'ECDSA P-521 (11)',
  [AuthMethod.NULL_AUTH]: 'NULL authentication (13)',
  [AuthMethod.DIGITAL_SIGNATURE]: 'digital signature (14)',
};

export function authMethodName(m: number): string {
  return AUTH_METHOD_NAMES[m] ?? `method ${m}`;
}

export function isSignatureMethod(m: number): boolean {
  return (
    m === AuthMethod.RSA_SIG ||
    m === AuthMethod.ECDSA_SHA256_P256 ||
    m === AuthMethod.ECDSA_SHA384_P384 ||
    m === AuthMethod.ECDSA_SHA512_P521 ||
    m === AuthMethod.DIGITAL_SIGNATURE
  );
}

export interface SignOptions {
  /** Hashes the peer announced (SIGNATURE_HASH_ALGORITHMS); empty: the peer does not do RFC 7427. */
  peerHashes: readonly number[];
  /** For RSA keys under RFC 7427: PSS (default) or PKCS#1 v1.5. */
  rsaPadding?: 'pss' | 'pkcs1';
}

/** Pick the scheme for our key: RFC 7427 with a hash the peer accepts, else the classic method. */
export function chooseScheme(
  key: KeyObject,
  o: SignOptions,
): { method: AuthMethod; scheme?: SignatureScheme; classic?: { nodeHash: NodeHash | 'sha1' } } {
  const type = baseKeyType(key);
  if (o.peerHashes.length > 0) {
    const ok = (s: SignatureScheme) => s.keyType === type && o.peerHashes.includes(s.hash);
    let candidates = SIGNATURE_SCHEMES.filter(ok);
    if (type === 'rsa') {
      const wantPss = o.rsaPadding !== 'pkcs1' || key.asymmetricKeyType === 'rsa-pss';
      candidates = candidates.filter((s) => (s.pss === true) === wantPss);
    }
    if (type === 'ec') {
      // The curve's own hash first (RFC 4754 pairing), then any other the peer takes.
      const own = CURVE_HASH[key.asymmetricKeyDetails?.namedCurve ?? '']?.hash;
      candidates = [...candidates.filter((s) => s.hash === own), ...candidates.filter((s) => s.hash !== own)];
    }
    const scheme = candidates[0];
    if (scheme) return { method: AuthMethod.DIGITAL_SIGNATURE, scheme };
    throw new SignatureError(
      'AUTH_UNSUPPORTED_ALGORITHM',
      `the peer accepts signature hashes ${o.peerHashes.map((h) => HashAlgorithm[h] ?? h).join(', ')}, none of which works with our ${describeKey(key)} key`,
    );
  }
  if (type === 'ec') {
    const c = CURVE_HASH[key.asymmetricKeyDetails?.namedCurve ?? ''];
    if (c) return { method: c.method, classic: { nodeHash: c.nodeHash } };
  }
  if (type === 'rsa' && key.asymmetricKeyType === 'rsa')
    return { method: AuthMethod.RSA_SIG, classic: { nodeHash: 'sha1' } };
  throw new SignatureError(
    'AUTH_UNSUPPORTED_ALGORITHM',
    `the peer did not announce RFC 7427 signature hashes, and a ${describeKey(key)} key has no classic IKEv2 AUTH method`,
  );
}

function rawSign(
  key: KeyObject,
  data: Uint8Array,
  hash: string | null,
  o: { pss?: boolean; p1363?: boolean; saltLength?: number },
) {
  const params: Parameters<typeof sign>[2] = { key };
  if (o.pss) Object.assign(params, { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: o.saltLength });
  else if (baseKeyType(key) === 'rsa') Object.assign(params, { padding: constants.RSA_PKCS1_PADDING });
  if (o.p1363) Object.assign(params, { dsaEncoding: 'ieee-p1363' });
  return new Uint8Array(sign(hash, data, params));
}

function rawVerify(
  key: KeyObject,
  data: Uint8Array,
  signature: Uint8Array,
  hash: string | null,
  o: { pss?: boolean; p1363?: boolean; saltLength?: number },
): boolean {
  const params: Parameters<typeof verify>[2] = { key };
  if (o.pss) Object.assign(params, { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: o.saltLength });
  else if (baseKeyType(key) === 'rsa') Object.assign(params, { padding: constants.RSA_PKCS1_PADDING });
  if (o.p1363) Object.assign(params, { dsaEncoding: 'ieee-p1363' });
  try {
    return verify(hash, data, params, signature);
  } catch {
    return false;
  }
}

const HASH_LENGTH: Record<NodeHash, number> = { sha256: 32, sha384: 48, sha512: 64 };

/** AUTH payload method and data signing `octets` with our private key. */
export function signAuth(key: KeyObject, octets: Uint8Array, o: SignOptions): { method: AuthMethod; data: Uint8Array } {
  const choice = chooseScheme(key, o);
  if (choice.scheme) {
    const s = choice.scheme;
    const sig = rawSign(key, octets, s.nodeHash, s.pss ? { pss: true, saltLength: HASH_LENGTH[s.nodeHash!] } : {});
    const data = new Uint8Array(1 + s.algId.length + sig.length);
    data[0] = s.algId.length;
    data.set(s.algId, 1);
    data.set(sig, 1 + s.algId.length);
    return { method: choice.method, data };
  }
  const nodeHash = choice.classic!.nodeHash;
  return { method: choice.method, data: rawSign(key, octets, nodeHash, { p1363: baseKeyType(key) === 'ec' }) };
}

/**
 * Check the peer's AUTH signature over `octets` with the public key of its (validated) certificate. Throws
 * SignatureError: AUTH_UNSUPPORTED_ALGORITHM (an AlgorithmIdentifier or hash we do not take, or one that does not
 * fit the key), AUTH_METHOD_MISMATCH (a classic method that does not fit the key), AUTH_SIGNATURE_INVALID.
 * Returns the scheme's name.
 */
export function verifyAuth(key: KeyObject, method: number, data: Uint8Array, octets: Uint8Array): string {
  const type = baseKeyType(key);
  if (method === AuthMethod.DIGITAL_SIGNATURE) {
    const len = data[0];
    if (len === undefined || data.length < 1 + len) {
      throw new SignatureError('AUTH_SIGNATURE_INVALID', 'digital signature AUTH data is truncated');
    }
    const algId = data.subarray(1, 1 + len);
    const sig = data.subarray(1 + len);
    const scheme = SIGNATURE_SCHEMES.find(
      (s) => s.algId.length === algId.length && s.algId.every((b, i) => b === algId[i]),
    );
    if (!scheme) {
      throw new SignatureError(
        'AUTH_UNSUPPORTED_ALGORITHM',
        `the peer signed with an AlgorithmIdentifier we do not accept (${Buffer.from(algId).toString('hex').slice(0, 64)}); we take ECDSA, Ed25519/Ed448, RSASSA-PSS and PKCS#1 v1.5 with SHA-2`,
      );
    }
    if (scheme.keyType !== type) {
      throw new SignatureError(
        'AUTH_UNSUPPORTED_ALGORITHM',
        `the peer signed with ${scheme.name}, which does not fit the ${describeKey(key)} key of its certificate`,
      );
    }
    const ok = rawVerify(
      key,
      octets,
      sig,
      scheme.nodeHash,
      scheme.pss ? { pss: true, saltLength: HASH_LENGTH[scheme.nodeHash!] } : {},
    );
    if (!ok) {
      throw new SignatureError(
        'AUTH_SIGNATURE_INVALID',
        `the peer's ${scheme.name} AUTH signature does not verify with the public key of its certificate`,
      );
    }
    return scheme.name;
  }
  let nodeHash: NodeHash | 'sha1';
  if (method === AuthMethod.RSA_SIG && type === 'rsa') nodeHash = 'sha1';
  else if (type === 'ec' && CURVE_HASH[key.asymmetricKeyDetails?.namedCurve ?? '']?.method === method) {
    nodeHash = CURVE_HASH[key.asymmetricKeyDetails!.namedCurve!]!.nodeHash;
  } else {
    throw new SignatureError(
      'AUTH_METHOD_MISMATCH',
      `the peer used AUTH ${authMethodName(method)}, which does not fit the ${describeKey(key)} key of its certificate`,
    );
  }
  if (!rawVerify(key, octets, data, nodeHash, { p1363: type === 'ec' })) {
    throw new SignatureError(
      'AUTH_SIGNATURE_INVALID',
      `the peer's ${authMethodName(method)} AUTH signature does not verify with the public key of its certificate`,
    );
  }
  return authMethodName(method);
}
