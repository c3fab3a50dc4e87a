/**
 * Test PKI made with the `openssl` CLI in a temporary directory: CAs, intermediates and end-entity certificates
 * with chosen key types, SANs and extensions. Nothing here is committed key material: every key is generated when
 * a test runs and removed with the directory.
 */
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export type KeyType = 'p256' | 'p384' | 'p521' | 'ed25519' | 'rsa' | 'rsa-pss';

export interface Issued {
  name: string;
  /** PEM files. */
  certFile: string;
  keyFile: string;
  certPem: string;
  keyPem: string;
  der: Uint8Array;
  keyType: KeyType;
}

export interface IssueOptions {
  keyType?: KeyType;
  /** Subject (OpenSSL -subj syntax), default /CN=<name>. */
  subject?: string;
  /** subjectAltName value, e.g. "DNS:site-a.example, IP:192.0.2.1". */
  san?: string;
  /** Extra extension lines (e.g. "extendedKeyUsage = codeSigning"). */
  ext?: string[];
  /** Issue as a CA (basicConstraints CA:TRUE, keyUsage keyCertSign, cRLSign). */
  ca?: boolean;
  days?: number;
  /** Signature options of the issuer (e.g. ['-sigopt', 'rsa_padding_mode:pss']). */
  sigopts?: string[];
}

function openssl(args: string[], cwd: string): string {
  return execFileSync('openssl', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

const GENKEY: Record<KeyType, string[]> = {
  p256: ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'],
  p384: ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-384'],
  p521: ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-521'],
  ed25519: ['-algorithm', 'ED25519'],
  rsa: ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048'],
  'rsa-pss': ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048'],
};

/** Digest options for signing with a key of this type (none for Ed25519; PSS padding for rsa-pss issuers). */
function signOpts(t: KeyType): string[] {
  if (t === 'ed25519') return [];
  if (t === 'rsa-pss') return ['-sha256', '-sigopt', 'rsa_padding_mode:pss', '-sigopt', 'rsa_pss_saltlen:digest'];
  if (t === 'p384') return ['-sha384'];
  return ['-sha256'];
}

export class TestPki {
  readonly dir: string;
  private serial = 1;

  constructor() {
    this.dir = mkdtempSync(join(tmpdir(), 'ipsec-mesh-pki-'));
  }

  cleanup(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }

  private key(name: string, t: KeyType): string {
    const file = join(this.dir, `${name}.key`);
    openssl(['genpkey', ...GENKEY[t], '-out', file], this.dir);
    return file;
  }

  private extFile(name: string, o: IssueOptions): string {
    const lines = ['[req]', 'distinguished_name = dn', '[dn]', '[v3]', 'subjectKeyIdentifier = hash'];
    const own = (k: string) => (o.ext ?? []).some((l) => l.startsWith(k));
    if (!own('basicConstraints'))
      lines.push(o.ca ? 'basicConstraints = critical, CA:TRUE' : 'basicConstraints = CA:FALSE');
    if (o.ca && !own('keyUsage')) lines.push('keyUsage = critical, keyCertSign, cRLSign');
    if (o.san) lines.push(`subjectAltName = ${o.san}`);
    lines.push(...(o.ext ?? []));
    const file = join(this.dir, `${name}.ext`);
    writeFileSync(file, `${lines.join('\n')}\n`);
    return file;
  }

  private load(name: string, certFile: string, keyFile: string, keyType: KeyType): Issued {
    const certPem = readFileSync(certFile, 'utf8');
    return {
      name,
      certFile,
      keyFile,
      certPem,
      keyPem: readFileSync(keyFile, 'utf8'),
      der: new Uint8Array(new X509Certificate(certPem).raw),
      keyType,
    };
  }

  /** A self-signed root CA. */
  root(name: string, o: IssueOptions = {}): Issued {
    const t = o.keyType ?? 'p256';
    const keyFile = this.key(name, t);
    const certFile = join(this.dir, `${name}.crt`);
    const ext = this.extFile(name, { ca: true, ...o });
    openssl(
      [
        'req',
        '-x509',
        '-new',
        '-key',
        keyFile,
        '-subj',
        o.subject ?? `/O=ipsec-mesh tests/CN=${name}`,
        '-days',
        String(o.days ?? 30),
        '-config',
        ext,
        '-extensions',
        'v3',
        ...signOpts(t),
        ...(o.sigopts ?? []),
        '-out',
        certFile,
      ].filter((x) => x !== ''),
      this.dir,
    );
    return this.load(name, certFile, keyFile, t);
  }

  /** A certificate for `name` issued by `issuer`. */
  issue(issuer: Issued, name: string, o: IssueOptions = {}): Issued {
    const t = o.keyType ?? 'p256';
    const keyFile = this.key(name, t);
    const csr = join(this.dir, `${name}.csr`);
    openssl(
      ['req', '-new', '-key', keyFile, '-subj', o.subject ?? `/O=ipsec-mesh tests/CN=${name}`, '-out', csr],
      this.dir,
    );
    const certFile = join(this.dir, `${name}.crt`);
    const ext = this.extFile(name, o);
    openssl(
      [
        'x509',
        '-req',
        '-in',
        csr,
        '-CA',
        issuer.certFile,
        '-CAkey',
        issuer.keyFile,
        '-set_serial',
        String(this.serial++),
        '-days',
        String(o.days ?? 30),
        '-extfile',
        ext,
        '-extensions',
        'v3',
        ...signOpts(issuer.keyType),
        ...(o.sigopts ?? []),
        '-out',
        certFile,
      ],
      this.dir,
    );
    return this.load(name, certFile, keyFile, t);
  }
}

/** DER certificates of a PEM bundle. */
export function pemToDers(pem: string): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const m of pem.matchAll(/-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/g)) {
    out.push(Uint8Array.from(Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64')));
  }
  return out;
}
