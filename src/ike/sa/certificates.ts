/**
 * X.509 for IKE (RFC 7296 §3.6, §3.7; RFC 5280 §6 in the subset IKE peers need; RFC 4945 for identities):
 * parsing our credentials, CERTREQ authorities, validating the peer's chain against our trust anchors at the
 * engine's wall-clock time, and binding the peer's ID payload to its certificate.
 *
 * Everything goes through node:crypto's X509Certificate (OpenSSL); no ASN.1 is parsed here. What OpenSSL checks for
 * us: signatures (`verify`), name chaining plus key identifiers and the issuer's keyCertSign key usage
 * (`checkIssued`, X509_check_issued), basicConstraints CA (`ca`), SAN matching (`checkHost`/`checkIP`/
 * `checkEmail`). What it does not expose and is therefore not checked: the end-entity's digitalSignature key
 * usage bit, name constraints, policies, and revocation (no CRL/OCSP fetching: the engine has no I/O).
 *
 * Errors are CertificateErrors with a stable code and a message naming certificates by subject; never key material.
 */
import { createHash, createPrivateKey, type KeyObject, X509Certificate } from 'node:crypto';
import { formatIp } from '../codec/ip.js';
import { IdType } from '../constants.js';
import { CertificateError } from '../errors.js';
import type { CertificateAuthConfig } from './config.js';

/** Longest chain we follow from the end entity to a trust anchor (certificates, anchor included). */
export const MAX_CHAIN_LENGTH = 8;

/** Extended key usages that allow IKE (RFC 4945 §5.1.3.12; serverAuth/clientAuth as cert-manager issues them). */
const IKE_EKUS = new Set([
  '1.3.6.1.5.5.7.3.17', // id-kp-ipsecIKE (RFC 4945)
  '2.5.29.37.0', // anyExtendedKeyUsage
  '1.3.6.1.5.5.7.3.1', // id-kp-serverAuth
  '1.3.6.1.5.5.7.3.2', // id-kp-clientAuth
  '1.3.6.1.5.5.7.3.5', // id-kp-ipsecEndSystem
  '1.3.6.1.5.5.7.3.6', // id-kp-ipsecTunnel
  '1.3.6.1.5.5.7.3.7', // id-kp-ipsecUser
]);

/** A one-line subject for messages ("CN=site-b.example, O=Example"). */
export function subjectOf(c: X509Certificate): string {
  return c.subject.split('\n').join(', ');
}

export function parseCertificate(der: Uint8Array, what: string): X509Certificate {
  try {
    return new X509Certificate(der);
  } catch {
    throw new CertificateError('CERT_INVALID', `${what} is not a DER X.509 certificate`);
  }
}

/** Our parsed credentials, checked once per configuration object. */
export interface LocalCredentials {
  leaf: X509Certificate;
  chain: Uint8Array[];
  key: KeyObject;
}

const localCache = new WeakMap<CertificateAuthConfig, LocalCredentials>();
const anchorCache = new WeakMap<CertificateAuthConfig, X509Certificate[]>();

/** Parse and check our certificate and key (CERT_INVALID, CERT_KEY_MISMATCH). Cached per config object. */
export function localCredentials(auth: CertificateAuthConfig): LocalCredentials {
  const have = localCache.get(auth);
  if (have) return have;
  if (auth.certChain.length === 0) throw new CertificateError('CERT_INVALID', 'no local certificate configured');
  const leaf = parseCertificate(auth.certChain[0]!, 'the local certificate');
  auth.certChain.slice(1).forEach((c, i) => void parseCertificate(c, `local chain certificate ${i + 2}`));
  let key: KeyObject;
  try {
    key = typeof auth.privateKey === 'string' ? createPrivateKey(auth.privateKey) : auth.privateKey;
  } catch {
    throw new CertificateError('CERT_KEY_MISMATCH', 'the local private key is not a readable PEM private key');
  }
  if (key.type !== 'private' || !leaf.checkPrivateKey(key)) {
    throw new CertificateError(
      'CERT_KEY_MISMATCH',
      `the local private key does not belong to the local certificate ${subjectOf(leaf)}`,
    );
  }
  const out = { leaf, chain: auth.certChain, key };
  localCache.set(auth, out);
  return out;
}

export function trustAnchors(auth: CertificateAuthConfig): X509Certificate[] {
  const have = anchorCache.get(auth);
  if (have) return have;
  const out = auth.trustAnchors.map((d, i) => parseCertificate(d, `trusted CA certificate ${i + 1}`));
  anchorCache.set(auth, out);
  return out;
}

/** SHA-1 of a certificate's SubjectPublicKeyInfo: the CERTREQ "Certification Authority" entry (RFC 7296 §3.7). */
export function keyHash(c: X509Certificate): Uint8Array {
  const spki = c.publicKey.export({ type: 'spki', format: 'der' });
  return new Uint8Array(createHash('sha1').update(spki).digest());
}

/** CERTREQ data for a set of trust anchors (de-duplicated concatenation of their key hashes). */
export function certReqData(anchors: readonly X509Certificate[]): Uint8Array {
  const seen = new Set<string>();
  const parts: Uint8Array[] = [];
  for (const a of anchors) {
    const h = keyHash(a);
    const k = Buffer.from(h).toString('hex');
    if (seen.has(k)) continue;
    seen.add(k);
    parts.push(h);
  }
  return Uint8Array.from(Buffer.concat(parts));
}

function checkValidity(c: X509Certificate, nowMs: number, role: string): void {
  const from = Date.parse(c.validFrom);
  const to = Date.parse(c.validTo);
  const when = new Date(nowMs).toISOString();
  if (!(from <= nowMs)) {
    throw new CertificateError(
      'CERT_NOT_YET_VALID',
      `${role} ${subjectOf(c)} is not valid before ${new Date(from).toISOString()} (now ${when})`,
    );
  }
  if (!(nowMs <= to)) {
    throw new CertificateError(
      'CERT_EXPIRED',
      `${role} ${subjectOf(c)} expired at ${new Date(to).toISOString()} (now ${when})`,
    );
  }
}

/**
 * Validate the peer's chain (`certs[0]` the end entity, the rest untrusted intermediates in any order) against
 * `anchors` at wall-clock `nowMs`. Returns the end-entity certificate. Throws CertificateError.
 */
export function validateChain(
  certs: readonly Uint8Array[],
  anchors: readonly X509Certificate[],
  nowMs: number,
): X509Certificate {
  if (certs.length === 0) {
    throw new CertificateError(
      'CERT_MISSING',
      'the peer sent no certificate (strongSwan: set send_cert = always, or make sure it receives our CERTREQ)',
    );
  }
  const leaf = parseCertificate(certs[0]!, "the peer's certificate");
  const pool = certs.slice(1).map((d, i) => parseCertificate(d, `the peer's chain certificate ${i + 2}`));
  const eku = leaf.keyUsage;
  if (Array.isArray(eku) && eku.length > 0 && !eku.some((o) => IKE_EKUS.has(o))) {
    throw new CertificateError(
      'CERT_KEY_USAGE',
      `the peer's certificate ${subjectOf(leaf)} has extended key usages ${eku.join(', ')}, none of which allows IKE (ipsecIKE, serverAuth, clientAuth, anyExtendedKeyUsage)`,
    );
  }
  let current = leaf;
  let role = "the peer's certificate";
  for (let depth = 1; depth <= MAX_CHAIN_LENGTH; depth++) {
    checkValidity(current, nowMs, role);
    // Candidates by name: trust anchors first, then the intermediates the peer sent.
    const byName = [...anchors.map((c) => ({ c, anchor: true })), ...pool.map((c) => ({ c, anchor: false }))].filter(
      (x) => x.c.subject === current.issuer && x.c !== current,
    );
    if (byName.length === 0) {
      throw new CertificateError(
        'CERT_UNTRUSTED',
        `${role} ${subjectOf(current)} was issued by ${current.issuer.split('\n').join(', ')}, which is not a trusted CA of this tunnel (nor a certificate the peer sent)`,
      );
    }
    const signer = byName.find((x) => current.verify(x.c.publicKey));
    if (!signer) {
      throw new CertificateError(
        'CERT_BAD_SIGNATURE',
        `the signature of ${role} ${subjectOf(current)} does not verify with the key of ${byName[0]!.c.subject.split('\n').join(', ')}`,
      );
    }
    const issuer = signer.c;
    const issuerRole = signer.anchor ? 'trusted CA' : 'intermediate CA';
    // OpenSSL's X509_check_issued (checkIssued) fails on a keyUsage without keyCertSign (names and signature
    // already match here); its X509_check_ca (ca) fails on that too and on a missing basicConstraints CA:TRUE.
    if (!current.checkIssued(issuer)) {
      throw new CertificateError(
        'CERT_KEY_USAGE',
        `${issuerRole} ${subjectOf(issuer)} may not sign certificates (keyUsage without keyCertSign, or its key identifier does not match)`,
      );
    }
    if (!issuer.ca) {
      throw new CertificateError(
        'CERT_ISSUER_NOT_CA',
        `${issuerRole} ${subjectOf(issuer)} signed ${subjectOf(current)} but is not a CA (basicConstraints CA:TRUE missing)`,
      );
    }
    if (signer.anchor) {
      checkValidity(issuer, nowMs, issuerRole);
      return leaf;
    }
    current = issuer;
    role = issuerRole;
  }
  throw new CertificateError(
    'CERT_CHAIN_TOO_LONG',
    `no trusted CA within ${MAX_CHAIN_LENGTH} certificates of ${subjectOf(leaf)}`,
  );
}

function indexOf(hay: Uint8Array, needle: Uint8Array): number {
  return Buffer.from(hay.buffer, hay.byteOffset, hay.byteLength).indexOf(
    Buffer.from(needle.buffer, needle.byteOffset, needle.byteLength),
  );
}

/**
 * Whether `name` (DER) is the certificate's subject: the subject Name is the field right before the
 * SubjectPublicKeyInfo in the TBSCertificate (RFC 5280 §4.1), so the DER of the certificate contains
 * name || spki exactly when it is. (The issuer is followed by the validity, never by the key.)
 */
export function isSubjectDer(c: X509Certificate, name: Uint8Array): boolean {
  if (name.length < 2 || name[0] !== 0x30) return false;
  const spki = new Uint8Array(c.publicKey.export({ type: 'spki', format: 'der' }));
  const joined = new Uint8Array(name.length + spki.length);
  joined.set(name);
  joined.set(spki, name.length);
  return indexOf(new Uint8Array(c.raw), joined) >= 0;
}

/** Normalize a DN string: "CN=a, O=b" or Node's "CN=a\nO=b" -> "cn=a,o=b" (no escapes, no multi-valued RDNs). */
export function normalizeDn(s: string): string {
  return s
    .split(/[\n,]/)
    .map((p) => p.trim())
    .filter((p) => p !== '')
    .map((p) => {
      const eq = p.indexOf('=');
      return eq < 0
        ? p.toLowerCase()
        : `${p.slice(0, eq).trim().toLowerCase()}=${p
            .slice(eq + 1)
            .trim()
            .toLowerCase()}`;
    })
    .join(',');
}

/**
 * Check that the identity of an ID payload is in the certificate: ID_IPV4/IPV6_ADDR in a SAN iPAddress,
 * ID_FQDN in a SAN dNSName (exact, no wildcards), ID_RFC822_ADDR in a SAN rfc822Name, ID_DER_ASN1_DN equal to
 * the subject. The subject CN is never used for FQDN/email. Throws CERT_IDENTITY_MISMATCH.
 */
export function checkIdentity(c: X509Certificate, idType: number, data: Uint8Array): void {
  const text = () => new TextDecoder().decode(data);
  let ok = false;
  let shown: string;
  switch (idType) {
    case IdType.ID_IPV4_ADDR:
    case IdType.ID_IPV6_ADDR:
      shown = `IP address ${formatIpSafe(data)}`;
      ok = data.length === (idType === IdType.ID_IPV4_ADDR ? 4 : 16) && c.checkIP(formatIp(data)) !== undefined;
      break;
    case IdType.ID_FQDN:
      shown = `FQDN ${text()}`;
      ok = c.checkHost(text(), { subject: 'never', wildcards: false }) !== undefined;
      break;
    case IdType.ID_RFC822_ADDR:
      shown = `email ${text()}`;
      ok = c.checkEmail(text(), { subject: 'never' }) !== undefined;
      break;
    case IdType.ID_DER_ASN1_DN:
      shown = 'distinguished name';
      ok = isSubjectDer(c, data);
      break;
    default:
      shown = `ID type ${idType}`;
  }
  if (!ok) {
    throw new CertificateError(
      'CERT_IDENTITY_MISMATCH',
      `the peer claims ${shown}, which its certificate ${subjectOf(c)} does not contain (subjectAltName: ${c.subjectAltName ?? 'none'})`,
    );
  }
}

function formatIpSafe(b: Uint8Array): string {
  try {
    return formatIp(b);
  } catch {
    return '(malformed)';
  }
}
