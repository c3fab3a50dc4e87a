/**
 * Certificate tunnels in the agent: kubernetes.io/tls Secrets in the standalone config directory (as cert-manager
 * writes them) -> node-secret keys -> the engine's certificate configuration, the typed configuration errors, and
 * certificate renewal: two agents over an in-memory transport keep their tunnel when the Secrets change, and the
 * next IKE_AUTH uses the new certificate.
 */
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../../src/agent/agent.js';
import { loadConfigDir } from '../../src/agent/config-dir.js';
import { MemoryKernel } from '../../src/agent/memory-kernel.js';
import { parseIdentity, peerConfig, TunnelConfigError } from '../../src/agent/peers.js';
import { SystemClock, systemRandom } from '../../src/agent/runtime.js';
import type { UdpTransport } from '../../src/agent/transport.js';
import type { Endpoint } from '../../src/ike/ports.js';
import { agentDir, LoopTransport, tunnel, waitFor } from '../agent/helpers.js';
import { type Issued, TestPki } from '../support/certs.js';

let pki: TestPki;
let ca1: Issued;
let ca2: Issued;
let a1: Issued;
let a2: Issued;
let b1: Issued;

beforeAll(() => {
  pki = new TestPki();
  ca1 = pki.root('agent-ca-1');
  ca2 = pki.root('agent-ca-2', { keyType: 'ed25519' });
  a1 = pki.issue(ca1, 'site-a-1', { san: 'DNS:site-a.example, IP:192.0.2.1' });
  a2 = pki.issue(ca2, 'site-a-2', { keyType: 'ed25519', san: 'DNS:site-a.example' });
  b1 = pki.issue(ca1, 'site-b-1', { keyType: 'p384', san: 'DNS:site-b.example' });
});
afterAll(() => pki?.cleanup());

function tlsSecret(name: string, leaf: Issued, ca: string) {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'kubernetes.io/tls',
    metadata: { name, namespace: 'default' },
    stringData: { 'tls.crt': leaf.certPem, 'tls.key': leaf.keyPem, 'ca.crt': ca },
  };
}

function certTunnel(
  o: Parameters<typeof tunnel>[1] & { certSecret: string; remoteCA?: { name: string; key: string } },
): ReturnType<typeof tunnel> {
  const t = tunnel('t', o);
  (t.spec as { auth: unknown }).auth = {
    certificate: { secretRef: { name: o.certSecret }, ...(o.remoteCA ? { remoteCA: { secretRef: o.remoteCA } } : {}) },
  };
  return t;
}

const reason = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    return e instanceof TunnelConfigError ? e.reason : String(e);
  }
  return 'ok';
};

describe('certificate tunnels: configuration', () => {
  const base = {
    localAddress: '192.0.2.1',
    remoteAddress: '192.0.2.2',
    localSubnets: ['198.18.1.0/24'],
    remoteSubnets: ['198.18.2.0/24'],
    localId: 'site-a.example',
    remoteId: 'site-b.example',
    certSecret: 'site-a-tls',
  };

  function load(objects: unknown[]) {
    const d = agentDir('certcfg', { addresses: ['192.0.2.1'] });
    d.write('t.yaml', objects);
    return loadConfigDir(d.dir);
  }

  it('reads a kubernetes.io/tls Secret from the config directory into the engine configuration', () => {
    const s = load([certTunnel(base), tlsSecret('site-a-tls', a1, ca1.certPem + ca2.certPem)]);
    expect(s.problems).toEqual([]);
    expect([...s.secrets.keys()].sort()).toEqual(['default.t.ca.crt', 'default.t.tls.crt', 'default.t.tls.key']);
    const c = peerConfig(s.tunnels[0]!, (k) => s.secrets.get(k), { ikePort: 500 });
    expect(c.auth.method).toBe('certificate');
    if (c.auth.method !== 'certificate') return;
    expect(c.auth.certChain).toEqual([a1.der]);
    expect(c.auth.trustAnchors).toEqual([ca1.der, ca2.der]);
  });

  it('takes the remote CA from another Secret when spec.auth.certificate.remoteCA says so', () => {
    const s = load([
      certTunnel({ ...base, remoteCA: { name: 'their-ca', key: 'ca.crt' } }),
      tlsSecret('site-a-tls', a1, ca1.certPem),
      {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'their-ca', namespace: 'default' },
        stringData: { 'ca.crt': ca2.certPem },
      },
    ]);
    expect(s.problems).toEqual([]);
    const c = peerConfig(s.tunnels[0]!, (k) => s.secrets.get(k), { ikePort: 500 });
    expect(c.auth.method === 'certificate' && c.auth.trustAnchors).toEqual([ca2.der]);
  });

  it('reports a missing Secret or key with its field', () => {
    const s = load([certTunnel(base)]);
    expect(s.problems.map((p) => p.path)).toContain('spec.auth.certificate.secretRef');
    const noCa = tlsSecret('site-a-tls', a1, '');
    delete (noCa.stringData as Record<string, string>)['ca.crt'];
    const s2 = load([certTunnel(base), noCa]);
    expect(s2.problems.map((p) => p.message)).toEqual(["Secret default/site-a-tls has no key 'ca.crt'"]);
  });

  it('refuses unusable material with typed reasons and never echoes it', () => {
    const make = (leaf: Issued, key: string, ca: string, localId = 'site-a.example') => {
      const s = load([
        certTunnel({ ...base, localId }),
        { ...tlsSecret('site-a-tls', leaf, ca), stringData: { 'tls.crt': leaf.certPem, 'tls.key': key, 'ca.crt': ca } },
      ]);
      return () => peerConfig(s.tunnels[0]!, (k) => s.secrets.get(k), { ikePort: 500 });
    };
    expect(reason(make(a1, a1.keyPem, ca1.certPem))).toBe('ok');
    expect(reason(make(a1, 'garbage', ca1.certPem))).toBe('InvalidPrivateKey');
    expect(reason(make(a1, b1.keyPem, ca1.certPem))).toBe('InvalidCertificate');
    expect(reason(make(a1, a1.keyPem, 'no pem here'))).toBe('InvalidCertificate');
    expect(reason(make(a1, a1.keyPem, ca1.certPem, 'site-x.example'))).toBe('CertificateIdentityMismatch');
    try {
      make(a1, b1.keyPem, ca1.certPem)();
    } catch (e) {
      expect((e as Error).message).not.toContain('PRIVATE KEY');
      expect((e as Error).message).toContain('CERT_KEY_MISMATCH');
    }
  });

  it('accepts a DN as the remote identity of a certificate tunnel only', () => {
    expect(parseIdentity('O=Example, CN=site-b', 'spec.remote.id', 'remote')).toEqual({
      type: 'dn',
      value: 'O=Example, CN=site-b',
    });
    expect(reason(() => parseIdentity('O=Example, CN=site-a', 'spec.local.id'))).toBe('UnsupportedIdentity');
    const s = load([
      certTunnel({ ...base, remoteId: 'O=ipsec-mesh tests, CN=site-b-1' }),
      tlsSecret('site-a-tls', a1, ca1.certPem),
    ]);
    expect(peerConfig(s.tunnels[0]!, (k) => s.secrets.get(k), { ikePort: 500 }).remoteId).toEqual({
      type: 'dn',
      value: 'O=ipsec-mesh tests, CN=site-b-1',
    });
  });
});

// ---- two agents -------------------------------------------------------------------------------------------------

const running: Agent[] = [];
afterEach(async () => {
  for (const a of running.splice(0)) await a.stop();
});

describe('certificate tunnels between two agents', () => {
  it('a renewed certificate takes effect at the next IKE_AUTH without tearing the tunnel down', async () => {
    const mk = (name: string, address: string, peer: string, local: string, remote: string, ids: [string, string]) => {
      const d = agentDir(name, { addresses: [address] });
      const t = certTunnel({
        localAddress: address,
        remoteAddress: peer,
        localSubnets: [local],
        remoteSubnets: [remote],
        localId: ids[0],
        remoteId: ids[1],
        certSecret: 'tls',
        startAction: name.endsWith('a') ? 'start' : 'none',
      });
      const transport = new LoopTransport();
      const logs: string[] = [];
      const agent = new Agent({
        settings: loadConfigDir(d.dir).settings!,
        kernel: new MemoryKernel(systemRandom),
        dataplane: 'none',
        logger: pino({ level: 'info' }, { write: (l: string) => void logs.push(l) }),
        clock: new SystemClock(),
        random: systemRandom,
        transport: transport as unknown as UdpTransport,
      });
      const apply = (leaf: Issued, ca: string) => {
        d.write('t.yaml', [t, tlsSecret('tls', leaf, ca)]);
        const s = loadConfigDir(d.dir);
        expect(s.problems).toEqual([]);
        agent.apply({ tunnels: s.tunnels, secrets: s.secrets });
      };
      return { agent, transport, apply, logs };
    };
    const a = mk('renew-a', '192.0.2.1', '192.0.2.2', '198.18.1.0/24', '198.18.2.0/24', [
      'site-a.example',
      'site-b.example',
    ]);
    const b = mk('renew-b', '192.0.2.2', '192.0.2.1', '198.18.2.0/24', '198.18.1.0/24', [
      'site-b.example',
      'site-a.example',
    ]);
    a.transport.peer = b.transport;
    b.transport.peer = a.transport;
    for (const x of [a, b]) {
      await x.agent.start();
      running.push(x.agent);
    }
    b.apply(b1, ca1.certPem);
    a.apply(a1, ca1.certPem);
    const first = await waitFor('tunnel up', async () => {
      const t = (await a.agent.status()).tunnels[0]!;
      return t.ikeSA.state === 'Established' && t.childSAs.some((c) => c.state === 'installed') ? t : undefined;
    });
    // Renewal: A gets a certificate of another CA (and key type); B now trusts only that CA.
    a.apply(a2, ca1.certPem);
    b.apply(b1, ca2.certPem);
    const after = (await a.agent.status()).tunnels[0]!;
    expect(after.ikeSA.state).toBe('Established');
    expect([after.ikeSA.spiI, after.ikeSA.spiR]).toEqual([first.ikeSA.spiI, first.ikeSA.spiR]);
    expect(a.logs.join('\n')).toContain('credentials-renewed');
    expect(a.logs.join('\n')).not.toContain('tunnel-changed');
    expect(b.logs.join('\n')).not.toContain('tunnel-changed');
    // The next IKE_AUTH (here: a new IKE SA next to the old one) proves the new certificate: B would refuse the
    // old one (CERT_UNTRUSTED), as it no longer trusts CA 1.
    const config = a.agent.engine.ikeSas()[0]!.config;
    expect(config.auth.method === 'certificate' && config.auth.certChain).toEqual([a2.der]);
    const configB = b.agent.engine.ikeSas()[0]!.config;
    expect(configB.auth.method === 'certificate' && configB.auth.trustAnchors).toEqual([ca2.der]);
    const fresh = a.agent.engine.initiate(config);
    await waitFor('second IKE SA', async () => (fresh.state === 'established' ? true : undefined));
    expect(b.agent.engine.ikeSas().filter((s) => s.state === 'established')).toHaveLength(2);
  });
});
