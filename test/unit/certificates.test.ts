/**
 * Certificate authentication pieces: chain validation (every failure has its own code), identity binding,
 * CERTREQ hashes, and RFC 7427 / classic signatures. Certificates are made with the openssl CLI per run.
 */
import { createHash, createPrivateKey, X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseIp } from '../../src/ike/codec/ip.js';
import { AuthMethod, HashAlgorithm, IdType } from '../../src/ike/constants.js';
import { SIGNATURE_SCHEMES, signAuth, verifyAuth } from '../../src/ike/crypto/signature.js';
import { CertificateError, IkeError } from '../../src/ike/errors.js';
import {
  certReqData,
  checkIdentity,
  isSubjectDer,
  localCredentials,
  normalizeDn,
  validateChain,
} from '../../src/ike/sa/certificates.js';
import { type Issued, type KeyType, TestPki } from '../support/certs.js';

const utf8 = (s: string) => new TextEncoder().encode(s);
const x509 = (i: Issued) => new X509Certificate(i.der);
const DAY = 86_400_000;

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof IkeError) return e.code;
    throw e;
  }
  return 'OK';
}

let pki: TestPki;
let root: Issued;
let other: Issued;
let inter: Issued;
let leaf: Issued;
let viaInter: Issued;
let now: number;

beforeAll(() => {
  pki = new TestPki();
  root = pki.root('root');
  other = pki.root('other-root');
  inter = pki.issue(root, 'intermediate', { ca: true });
  leaf = pki.issue(root, 'site-b', {
    san: 'DNS:site-b.example, IP:203.0.113.2, IP:2001:db8::2, email:gw@site-b.example',
    ext: ['extendedKeyUsage = serverAuth, clientAuth'],
  });
  viaInter = pki.issue(inter, 'site-c', { san: 'DNS:site-c.example' });
  now = Date.parse(x509(leaf).validFrom) + 60_000;
});

afterAll(() => pki?.cleanup());

describe('chain validation', () => {
  it('accepts a leaf issued by a trusted root, and one through an intermediate the peer sends', () => {
    expect(validateChain([leaf.der], [x509(root)], now).subject).toContain('CN=site-b');
    expect(validateChain([viaInter.der, inter.der], [x509(root)], now).subject).toContain('CN=site-c');
    // an intermediate as the trust anchor (cert-manager's ca.crt may be the issuing CA)
    expect(validateChain([viaInter.der], [x509(inter)], now).subject).toContain('CN=site-c');
  });

  it('CERT_EXPIRED after notAfter, CERT_NOT_YET_VALID before notBefore (the engine clock decides)', () => {
    const c = x509(leaf);
    expect(codeOf(() => validateChain([leaf.der], [x509(root)], Date.parse(c.validTo) + DAY))).toBe('CERT_EXPIRED');
    expect(codeOf(() => validateChain([leaf.der], [x509(root)], Date.parse(c.validFrom) - DAY))).toBe(
      'CERT_NOT_YET_VALID',
    );
  });

  it('CERT_EXPIRED when an intermediate or the anchor has expired', () => {
    const shortInter = pki.issue(root, 'short-inter', { ca: true, days: 1 });
    const under = pki.issue(shortInter, 'under-short', { days: 30 });
    expect(codeOf(() => validateChain([under.der, shortInter.der], [x509(root)], now + 2 * DAY))).toBe('CERT_EXPIRED');
    expect(codeOf(() => validateChain([under.der], [x509(shortInter)], now + 2 * DAY))).toBe('CERT_EXPIRED');
  });

  it('CERT_UNTRUSTED for a certificate of another CA, and for a missing intermediate', () => {
    expect(codeOf(() => validateChain([leaf.der], [x509(other)], now))).toBe('CERT_UNTRUSTED');
    expect(codeOf(() => validateChain([viaInter.der], [x509(root)], now))).toBe('CERT_UNTRUSTED');
  });

  it('CERT_UNTRUSTED also for a CA with the same name but another key (no signature match is a bad signature)', () => {
    const impostor = pki.root('impostor', { subject: '/O=ipsec-mesh tests/CN=root' });
    expect(codeOf(() => validateChain([leaf.der], [x509(impostor)], now))).toBe('CERT_BAD_SIGNATURE');
  });

  it('CERT_BAD_SIGNATURE for a tampered certificate signature', () => {
    const bad = leaf.der.slice();
    bad[bad.length - 1]! ^= 0x01;
    expect(codeOf(() => validateChain([bad], [x509(root)], now))).toBe('CERT_BAD_SIGNATURE');
  });

  it('CERT_ISSUER_NOT_CA when an end-entity certificate signs another', () => {
    const notCa = pki.issue(root, 'not-a-ca', {});
    const below = pki.issue(notCa, 'below-not-ca', {});
    expect(codeOf(() => validateChain([below.der, notCa.der], [x509(root)], now))).toBe('CERT_ISSUER_NOT_CA');
  });

  it('CERT_KEY_USAGE for an issuer without keyCertSign and for an end entity without an IKE purpose', () => {
    const noSign = pki.issue(root, 'ca-no-certsign', {
      ext: ['basicConstraints = critical, CA:TRUE', 'keyUsage = critical, digitalSignature, cRLSign'],
    });
    const below = pki.issue(noSign, 'below-no-certsign', {});
    expect(codeOf(() => validateChain([below.der, noSign.der], [x509(root)], now))).toBe('CERT_KEY_USAGE');
    const codeSigning = pki.issue(root, 'code-signing', { ext: ['extendedKeyUsage = codeSigning'] });
    expect(codeOf(() => validateChain([codeSigning.der], [x509(root)], now))).toBe('CERT_KEY_USAGE');
    const ike = pki.issue(root, 'ipsec-ike', { ext: ['extendedKeyUsage = 1.3.6.1.5.5.7.3.17'] });
    expect(codeOf(() => validateChain([ike.der], [x509(root)], now))).toBe('OK');
  });

  it('CERT_MISSING without certificates, CERT_INVALID for garbage, never an untyped error', () => {
    expect(codeOf(() => validateChain([], [x509(root)], now))).toBe('CERT_MISSING');
    expect(codeOf(() => validateChain([new Uint8Array([0x30, 0x03, 1, 2, 3])], [x509(root)], now))).toBe(
      'CERT_INVALID',
    );
    expect(codeOf(() => validateChain([leaf.der, new Uint8Array(10)], [x509(root)], now))).toBe('CERT_INVALID');
  });

  it('CERT_CHAIN_TOO_LONG past eight certificates', () => {
    let issuer = root;
    const chain: Issued[] = [];
    for (let i = 0; i < 8; i++) {
      issuer = pki.issue(issuer, `deep-${i}`, { ca: true });
      chain.push(issuer);
    }
    const end = pki.issue(issuer, 'deep-leaf', {});
    const ders = [end.der, ...chain.map((c) => c.der)];
    expect(codeOf(() => validateChain(ders, [x509(root)], now))).toBe('CERT_CHAIN_TOO_LONG');
    // eight certificates (end entity, six intermediates, the anchor) are fine
    expect(codeOf(() => validateChain([end.der, ...chain.slice(2).map((c) => c.der)], [x509(chain[1]!)], now))).toBe(
      'OK',
    );
  });

  it('error messages name certificates by subject and carry no key material', () => {
    try {
      validateChain([leaf.der], [x509(other)], now);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(CertificateError);
      const m = (e as Error).message;
      expect(m).toContain('CN=site-b');
      expect(m).not.toContain('BEGIN');
      expect(m).not.toMatch(/[0-9a-f]{40}/);
    }
  });
});

describe('identity binding', () => {
  it('matches FQDN, IPv4, IPv6 and email against subjectAltName, never the CN', () => {
    const c = x509(leaf);
    expect(codeOf(() => checkIdentity(c, IdType.ID_FQDN, utf8('site-b.example')))).toBe('OK');
    expect(codeOf(() => checkIdentity(c, IdType.ID_FQDN, utf8('SITE-B.example')))).toBe('OK');
    expect(codeOf(() => checkIdentity(c, IdType.ID_IPV4_ADDR, parseIp('203.0.113.2')))).toBe('OK');
    expect(codeOf(() => checkIdentity(c, IdType.ID_IPV6_ADDR, parseIp('2001:db8::2')))).toBe('OK');
    expect(codeOf(() => checkIdentity(c, IdType.ID_RFC822_ADDR, utf8('gw@site-b.example')))).toBe('OK');
    for (const [t, d] of [
      [IdType.ID_FQDN, utf8('site-x.example')],
      [IdType.ID_FQDN, utf8('site-b')], // the CN
      [IdType.ID_IPV4_ADDR, parseIp('203.0.113.3')],
      [IdType.ID_IPV4_ADDR, new Uint8Array(3)],
      [IdType.ID_RFC822_ADDR, utf8('other@site-b.example')],
      [IdType.ID_KEY_ID, utf8('anything')],
    ] as const) {
      expect(codeOf(() => checkIdentity(c, t, d))).toBe('CERT_IDENTITY_MISMATCH');
    }
  });

  it('matches ID_DER_ASN1_DN against the subject, not the issuer', () => {
    const c = x509(leaf);
    const rootDer = new Uint8Array(x509(root).raw);
    // The root is self-signed: its subject DER is its issuer DER, found in the leaf as the leaf's issuer.
    const subjectOfRoot = findSubjectDer(x509(root), rootDer);
    expect(subjectOfRoot).toBeDefined();
    expect(isSubjectDer(c, subjectOfRoot!)).toBe(false);
    expect(codeOf(() => checkIdentity(c, IdType.ID_DER_ASN1_DN, subjectOfRoot!))).toBe('CERT_IDENTITY_MISMATCH');
    const own = findSubjectDer(c, leaf.der)!;
    expect(codeOf(() => checkIdentity(c, IdType.ID_DER_ASN1_DN, own))).toBe('OK');
    expect(normalizeDn(c.subject)).toBe(normalizeDn('O=ipsec-mesh tests, CN=site-b'));
  });
});

/** Test helper: try every 0x30 position before the SPKI as the start of the subject (isSubjectDer decides). */
function findSubjectDer(c: X509Certificate, der: Uint8Array): Uint8Array | undefined {
  const spki = new Uint8Array(c.publicKey.export({ type: 'spki', format: 'der' }));
  const at = Buffer.from(der).indexOf(Buffer.from(spki));
  for (let start = 0; start < at; start++) {
    if (der[start] !== 0x30) continue;
    const len = der[start + 1]! < 0x80 ? der[start + 1]! + 2 : der[start + 2]! + 3;
    if (start + len === at && der[start + 1]! < 0x82) return der.slice(start, at);
  }
  return undefined;
}

describe('CERTREQ and local credentials', () => {
  it('names each trust anchor by the SHA-1 of its SubjectPublicKeyInfo (RFC 7296 §3.7), without duplicates', () => {
    const spki = x509(root).publicKey.export({ type: 'spki', format: 'der' });
    const h = createHash('sha1').update(spki).digest();
    expect(Buffer.from(certReqData([x509(root), x509(root)]))).toEqual(h);
    expect(certReqData([x509(root), x509(other)])).toHaveLength(40);
  });

  it('refuses a private key that does not belong to the certificate (CERT_KEY_MISMATCH)', () => {
    const base = { method: 'certificate' as const, certChain: [leaf.der], trustAnchors: [root.der] };
    expect(codeOf(() => localCredentials({ ...base, privateKey: leaf.keyPem }))).toBe('OK');
    expect(codeOf(() => localCredentials({ ...base, privateKey: root.keyPem }))).toBe('CERT_KEY_MISMATCH');
    expect(codeOf(() => localCredentials({ ...base, privateKey: 'not a key' }))).toBe('CERT_KEY_MISMATCH');
    expect(codeOf(() => localCredentials({ ...base, certChain: [new Uint8Array(4)], privateKey: leaf.keyPem }))).toBe(
      'CERT_INVALID',
    );
  });
});

describe('signatures (RFC 7427, RFC 4754, RFC 7296 §3.8)', () => {
  const octets = utf8('InitiatorSignedOctets for a test');
  const keys = new Map<KeyType, Issued>();
  beforeAll(() => {
    for (const t of ['p256', 'p384', 'p521', 'ed25519', 'rsa', 'rsa-pss'] as const)
      keys.set(t, pki.issue(root, `sig-${t}`, { keyType: t }));
  });

  it('the fixed AlgorithmIdentifiers are those OpenSSL writes into certificates', () => {
    // signatureAlgorithm of a certificate signed with the scheme appears verbatim in the certificate's DER
    const ca = (t: KeyType, extra: string[] = []) =>
      pki.root(`algid-${t}-${extra.join('')}`, { keyType: t, sigopts: extra });
    const checks: Array<[string, Issued]> = [
      ['ecdsa-with-sha256', ca('p256')],
      ['ecdsa-with-sha384', ca('p384')],
      ['ed25519', ca('ed25519')],
      ['sha256WithRSAEncryption', ca('rsa')],
      ['rsassa-pss-sha256', ca('rsa-pss')],
    ];
    for (const [name, cert] of checks) {
      const s = SIGNATURE_SCHEMES.find((x) => x.name === name)!;
      expect(Buffer.from(cert.der).includes(Buffer.from(s.algId)), name).toBe(true);
    }
    const pss384 = pki.root('algid-pss384', {
      keyType: 'rsa',
      sigopts: ['-sha384', '-sigopt', 'rsa_padding_mode:pss', '-sigopt', 'rsa_pss_saltlen:digest'],
    });
    const s384 = SIGNATURE_SCHEMES.find((x) => x.name === 'rsassa-pss-sha384')!;
    expect(Buffer.from(pss384.der).includes(Buffer.from(s384.algId))).toBe(true);
  });

  const all = [HashAlgorithm.SHA2_256, HashAlgorithm.SHA2_384, HashAlgorithm.SHA2_512, HashAlgorithm.IDENTITY];
  for (const [t, scheme] of [
    ['p256', 'ecdsa-with-sha256'],
    ['p384', 'ecdsa-with-sha384'],
    ['p521', 'ecdsa-with-sha512'],
    ['ed25519', 'ed25519'],
    ['rsa', 'rsassa-pss-sha256'],
    ['rsa-pss', 'rsassa-pss-sha256'],
  ] as const) {
    it(`${t}: method 14 with ${scheme} round-trips; a flipped bit or another key fails with AUTH_SIGNATURE_INVALID`, () => {
      const i = keys.get(t)!;
      const key = createPrivateKey(i.keyPem);
      const pub = x509(i).publicKey;
      const a = signAuth(key, octets, { peerHashes: all });
      expect(a.method).toBe(AuthMethod.DIGITAL_SIGNATURE);
      expect(verifyAuth(pub, a.method, a.data, octets)).toBe(scheme);
      const bad = a.data.slice();
      bad[bad.length - 2]! ^= 0x10;
      expect(codeOf(() => verifyAuth(pub, a.method, bad, octets))).toBe('AUTH_SIGNATURE_INVALID');
      expect(codeOf(() => verifyAuth(pub, a.method, a.data, utf8('other octets')))).toBe('AUTH_SIGNATURE_INVALID');
    });
  }

  it('RSA with PKCS#1 v1.5 when configured; the hash follows what the peer announced', () => {
    const i = keys.get('rsa')!;
    const key = createPrivateKey(i.keyPem);
    const a = signAuth(key, octets, { peerHashes: [HashAlgorithm.SHA2_512], rsaPadding: 'pkcs1' });
    expect(verifyAuth(x509(i).publicKey, a.method, a.data, octets)).toBe('sha512WithRSAEncryption');
    const e = keys.get('p256')!;
    const b = signAuth(createPrivateKey(e.keyPem), octets, { peerHashes: [HashAlgorithm.SHA2_384] });
    expect(verifyAuth(x509(e).publicKey, b.method, b.data, octets)).toBe('ecdsa-with-sha384');
  });

  it('classic methods for peers without SIGNATURE_HASH_ALGORITHMS: RSA (1), ECDSA (9, 10, 11)', () => {
    for (const [t, m] of [
      ['rsa', AuthMethod.RSA_SIG],
      ['p256', AuthMethod.ECDSA_SHA256_P256],
      ['p384', AuthMethod.ECDSA_SHA384_P384],
      ['p521', AuthMethod.ECDSA_SHA512_P521],
    ] as const) {
      const i = keys.get(t)!;
      const a = signAuth(createPrivateKey(i.keyPem), octets, { peerHashes: [] });
      expect(a.method).toBe(m);
      expect(codeOf(() => verifyAuth(x509(i).publicKey, a.method, a.data, octets))).toBe('OK');
      const bad = a.data.slice();
      bad[0]! ^= 1;
      expect(codeOf(() => verifyAuth(x509(i).publicKey, a.method, bad, octets))).toBe('AUTH_SIGNATURE_INVALID');
    }
    // ECDSA P-256 AUTH method 9 with a P-384 key is a mismatch, not a crash
    const p384 = keys.get('p384')!;
    expect(
      codeOf(() => verifyAuth(x509(p384).publicKey, AuthMethod.ECDSA_SHA256_P256, new Uint8Array(96), octets)),
    ).toBe('AUTH_METHOD_MISMATCH');
    // Ed25519 has no classic method
    expect(codeOf(() => signAuth(createPrivateKey(keys.get('ed25519')!.keyPem), octets, { peerHashes: [] }))).toBe(
      'AUTH_UNSUPPORTED_ALGORITHM',
    );
  });

  it('refuses SHA-1 AlgorithmIdentifiers, schemes that do not fit the key, and truncated data', () => {
    const e = keys.get('p256')!;
    const pub = x509(e).publicKey;
    const sha1 = Uint8Array.from(Buffer.from('0a300906072a8648ce3d0401', 'hex')); // ecdsa-with-SHA1 (RFC 7427 A.3.1)
    expect(
      codeOf(() => verifyAuth(pub, AuthMethod.DIGITAL_SIGNATURE, Buffer.concat([sha1, new Uint8Array(70)]), octets)),
    ).toBe('AUTH_UNSUPPORTED_ALGORITHM');
    const rsaSig = signAuth(createPrivateKey(keys.get('rsa')!.keyPem), octets, { peerHashes: all });
    expect(codeOf(() => verifyAuth(pub, rsaSig.method, rsaSig.data, octets))).toBe('AUTH_UNSUPPORTED_ALGORITHM');
    expect(codeOf(() => verifyAuth(pub, AuthMethod.DIGITAL_SIGNATURE, new Uint8Array([40, 1, 2]), octets))).toBe(
      'AUTH_SIGNATURE_INVALID',
    );
    expect(codeOf(() => verifyAuth(pub, AuthMethod.DIGITAL_SIGNATURE, new Uint8Array(0), octets))).toBe(
      'AUTH_SIGNATURE_INVALID',
    );
    // the peer takes only SHA-1: no scheme for our key
    expect(codeOf(() => signAuth(createPrivateKey(e.keyPem), octets, { peerHashes: [HashAlgorithm.SHA1] }))).toBe(
      'AUTH_UNSUPPORTED_ALGORITHM',
    );
  });
});
