/**
 * NodeTunnel (what the operator renders for a node, or what standalone mode derives from the config directory)
 * plus its key material -> the engine's PeerConfig. Errors name the field and never contain key material.
 */
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';
import { parseDuration } from '../api/common.js';
import type { NodeTunnel } from '../api/nodeconfig.js';
import { selectorFromCidr } from '../ike/codec/payloads/ts.js';
import { PayloadType } from '../ike/constants.js';
import { parseProposals } from '../ike/crypto/proposals.js';
import { CertificateError, ProposalError } from '../ike/errors.js';
import type { ConfiguredIdentity } from '../ike/ports.js';
import { checkIdentity, localCredentials, subjectOf, trustAnchors } from '../ike/sa/certificates.js';
import {
  type AuthConfig,
  type CertificateAuthConfig,
  DEFAULT_RETRANSMIT,
  type PeerConfig,
  type RetransmitConfig,
} from '../ike/sa/config.js';
import { idPayload } from '../ike/tasks/ike-auth.js';

export class TunnelConfigError extends Error {
  constructor(
    readonly reason: string,
    message: string,
  ) {
    super(message);
    this.name = 'TunnelConfigError';
  }
}

/**
 * An identity string from a resource: IP address, email address, DN or FQDN. A DN ("CN=site-b, O=Example") is
 * only accepted as the remote identity of a certificate tunnel (`dn: 'remote'`): it is matched against the subject
 * of the peer's certificate; we cannot send one ourselves.
 */
export function parseIdentity(s: string, field: string, dn: 'remote' | 'no' = 'no'): ConfiguredIdentity {
  const ip = isIP(s);
  if (ip === 4) return { type: 'ipv4', value: s };
  if (ip === 6) return { type: 'ipv6', value: s };
  if (/^[A-Za-z]+=/.test(s)) {
    if (dn === 'remote') return { type: 'dn', value: s };
    throw new TunnelConfigError(
      'UnsupportedIdentity',
      `${field}: a distinguished name can only be the remote identity of a certificate tunnel; use an FQDN, IP address or email address that is in the certificate's subjectAltName`,
    );
  }
  if (s.includes('@')) return { type: 'rfc822', value: s };
  return { type: 'fqdn', value: s };
}

const pemCerts = (pem: string): Uint8Array[] =>
  [...pem.matchAll(/-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]*?)-----END CERTIFICATE-----/g)].map((m) =>
    Uint8Array.from(Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64')),
  );

/**
 * Certificate credentials from the node Secret (PEM as in a kubernetes.io/tls Secret): tls.crt (ours first, then
 * intermediates), tls.key, ca.crt (one or more CAs the peer's certificate must chain to). Errors name the item,
 * never its content.
 */
export function certificateAuth(
  t: NodeTunnel,
  secret: (key: string) => Uint8Array | undefined,
  localId: ConfiguredIdentity,
): CertificateAuthConfig {
  const c = t.auth.certificate!;
  const text = (key: string | undefined, what: string): string => {
    const v = key ? secret(key) : undefined;
    if (!v) throw new TunnelConfigError('SecretNotFound', `spec.auth.certificate: the ${what} is missing`);
    return new TextDecoder().decode(v);
  };
  const chain = pemCerts(text(c.certKey, 'certificate (tls.crt)'));
  if (chain.length === 0) {
    throw new TunnelConfigError('InvalidCertificate', 'spec.auth.certificate: tls.crt holds no PEM certificate');
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(text(c.privateKeyKey, 'private key (tls.key)'));
  } catch (e) {
    if (e instanceof TunnelConfigError) throw e;
    throw new TunnelConfigError(
      'InvalidPrivateKey',
      'spec.auth.certificate: tls.key is not a readable PEM private key',
    );
  }
  const anchors = pemCerts(text(c.caKey, 'CA certificate (ca.crt or spec.auth.certificate.remoteCA)'));
  if (anchors.length === 0) {
    throw new TunnelConfigError('InvalidCertificate', 'spec.auth.certificate: the CA bundle holds no PEM certificate');
  }
  const auth: CertificateAuthConfig = {
    method: 'certificate',
    certChain: chain,
    privateKey: key,
    trustAnchors: anchors,
  };
  try {
    const { leaf } = localCredentials(auth);
    trustAnchors(auth);
    // Our own identity must be in our certificate, or every peer will refuse us: say so now.
    const id = idPayload(PayloadType.IDi, localId);
    try {
      checkIdentity(leaf, id.idType, id.data);
    } catch {
      throw new TunnelConfigError(
        'CertificateIdentityMismatch',
        `spec.local.id: our identity is not in our certificate ${subjectOf(leaf)} (subjectAltName: ${leaf.subjectAltName ?? 'none'}); set spec.local.id to one of its subjectAltNames`,
      );
    }
  } catch (e) {
    if (e instanceof CertificateError) {
      throw new TunnelConfigError('InvalidCertificate', `spec.auth.certificate: ${e.message} (${e.code})`);
    }
    throw e;
  }
  return auth;
}

export function tunnelKey(t: Pick<NodeTunnel, 'namespace' | 'name'>): string {
  return `${t.namespace}/${t.name}`;
}

export interface PeerOptions {
  ikePort: number;
  /** IKE fragment size in bytes (AgentSettings.ikeFragmentSize; default 1280). */
  fragmentSize?: number;
  retransmit?: RetransmitConfig;
}

function duration(s: string, field: string): number {
  const ms = parseDuration(s);
  if (ms === undefined) throw new TunnelConfigError('InvalidDuration', `${field}: '${s}' is not a duration`);
  return ms;
}

function proposals(list: string[], kind: 'ike' | 'esp', field: string) {
  try {
    return parseProposals(list, kind).proposals;
  } catch (e) {
    if (e instanceof ProposalError) throw new TunnelConfigError('InvalidProposal', `${field}: ${e.message}`);
    throw e;
  }
}

/**
 * Build the engine configuration of a tunnel. `secret(key)` returns the bytes of an item of the node Secret (or
 * the standalone Secret) and undefined when it is missing.
 */
export function peerConfig(t: NodeTunnel, secret: (key: string) => Uint8Array | undefined, o: PeerOptions): PeerConfig {
  if (!t.auth.psk && !t.auth.certificate) {
    throw new TunnelConfigError('UnsupportedAuth', 'spec.auth: set psk or certificate');
  }
  let psk: Uint8Array | undefined;
  if (t.auth.psk) {
    psk = secret(t.auth.psk.key);
    if (!psk)
      throw new TunnelConfigError('SecretNotFound', `spec.auth.psk: the pre-shared key (${t.auth.psk.key}) is missing`);
    if (psk.length < 16)
      throw new TunnelConfigError('WeakPsk', 'spec.auth.psk: the pre-shared key must be at least 16 bytes');
  }
  if (isIP(t.local.address) === 0) {
    throw new TunnelConfigError('InvalidAddress', `spec.local.address: '${t.local.address}' is not an IP address`);
  }
  if (isIP(t.remote.address) === 0) {
    throw new TunnelConfigError(
      'UnresolvedAddress',
      `spec.remote.address: '${t.remote.address}' is not an IP address (DNS names are not resolved yet)`,
    );
  }
  if (isIP(t.local.address) !== isIP(t.remote.address)) {
    throw new TunnelConfigError(
      'AddressFamilyMismatch',
      'spec.local.address and spec.remote.address are of different IP families',
    );
  }
  const ikeLife = duration(t.ike.lifetime, 'spec.ike.lifetime');
  const espLife = duration(t.esp.lifetime, 'spec.esp.lifetime');
  // Hard lifetime: 10 % past the rekey time, but at least 30 s, so a rekey slowed by retransmissions is not
  // overtaken by the kernel removing the SA.
  const life = (ms: number) => ({
    rekeyMs: ms,
    jitterMs: Math.round(ms / 10),
    overMs: Math.max(Math.round(ms / 10), 30_000),
  });
  const ts = (cidrs: string[]) => cidrs.map((c) => selectorFromCidr(c));
  const localId: ConfiguredIdentity = t.local.id
    ? parseIdentity(t.local.id, 'spec.local.id')
    : { type: isIP(t.local.address) === 6 ? 'ipv6' : 'ipv4', value: t.local.address };
  const auth: AuthConfig = psk ? { method: 'psk', psk } : certificateAuth(t, secret, localId);
  return {
    name: tunnelKey(t),
    local: { address: t.local.address, port: o.ikePort },
    remote: { address: t.remote.address, port: t.remote.port },
    localId,
    remoteId: t.remote.id
      ? parseIdentity(t.remote.id, 'spec.remote.id', auth.method === 'certificate' ? 'remote' : 'no')
      : { type: isIP(t.remote.address) === 6 ? 'ipv6' : 'ipv4', value: t.remote.address },
    auth,
    ikeProposals: proposals(t.ike.proposals, 'ike', 'spec.ike.proposals'),
    ikeLifetime: life(ikeLife),
    dpdIntervalMs: duration(t.ike.dpd.interval, 'spec.ike.dpd.interval'),
    dpdAction: t.ike.dpd.action,
    natt: t.natt,
    childless: 'never',
    fragmentation: true,
    fragmentSize: o.fragmentSize ?? 1280,
    windowSize: 1,
    retransmit: o.retransmit ?? DEFAULT_RETRANSMIT,
    halfOpenTimeoutMs: 30_000,
    children: [
      {
        name: t.name,
        proposals: proposals(t.esp.proposals, 'esp', 'spec.esp.proposals'),
        localTs: ts(t.local.subnets),
        remoteTs: ts(t.remote.subnets),
        mode: 'tunnel',
        lifetime: life(espLife),
        replayWindow: 32,
        startAction: t.startAction,
        reqid: t.reqid,
      },
    ],
  };
}
