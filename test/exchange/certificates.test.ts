/**
 * Certificate authentication between two engines on the simulated network: every key type, CERT/CERTREQ and
 * SIGNATURE_HASH_ALGORITHMS, fragmentation of the large IKE_AUTH messages, and the failures each side reports.
 * Certificates are made with the openssl CLI for this run (test/support/certs.ts).
 */
import { X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExchangeType, PayloadType } from '../../src/ike/constants.js';
import type { PeerConfig } from '../../src/ike/sa/config.js';
import { verifyPairing } from '../sim/kernel.js';
import { type Issued, type KeyType, TestPki } from '../support/certs.js';
import { dropNext, established, headerOf, pair, SITE_A, SITE_B, steady } from './fixtures.js';

let pki: TestPki;
let root: Issued;
let otherRoot: Issued;
let epochMs: number;
const creds = new Map<string, Issued>();

function cert(site: 'a' | 'b', t: KeyType, o: { san?: string; issuer?: Issued } = {}): Issued {
  const key = `${site}-${t}-${o.san ?? ''}-${o.issuer?.name ?? 'root'}`;
  let c = creds.get(key);
  if (!c) {
    const address = site === 'a' ? SITE_A.address : SITE_B.address;
    c = pki.issue(o.issuer ?? root, `site-${site}-${t}-${creds.size}`, {
      keyType: t,
      san: o.san ?? `DNS:site-${site}.example, IP:${address}`,
    });
    creds.set(key, c);
  }
  return c;
}

function auth(
  c: Issued,
  anchors: Issued[] = [root],
  extra: Partial<Extract<PeerConfig['auth'], { method: 'certificate' }>> = {},
): PeerConfig['auth'] {
  return {
    method: 'certificate',
    certChain: [c.der],
    privateKey: c.keyPem,
    trustAnchors: anchors.map((a) => a.der),
    ...extra,
  };
}

type Failure = { type: string; failure: { code: string; message: string } };
const failures = (events: { type: string }[]) => events.filter((e) => e.type === 'ike-failed') as Failure[];

beforeAll(() => {
  pki = new TestPki();
  root = pki.root('test-root');
  otherRoot = pki.root('other-root');
  epochMs = Date.parse(new X509Certificate(root.der).validFrom) + 3_600_000;
});
afterAll(() => pki?.cleanup());

describe('certificate authentication', () => {
  for (const [t, rsaPadding] of [
    ['p256', undefined],
    ['p384', undefined],
    ['p521', undefined],
    ['ed25519', undefined],
    ['rsa', 'pss'],
    ['rsa', 'pkcs1'],
  ] as const) {
    it(`establishes with ${t}${rsaPadding ? ` (${rsaPadding})` : ''} certificates on both sides`, async () => {
      const extra = rsaPadding ? { rsaPadding } : {};
      const { sim, a, b, configA } = pair(`cert-${t}-${rsaPadding}`, {
        auth: auth(cert('a', t), [root], extra),
        b: { auth: auth(cert('b', t), [root], extra) },
        sim: { epochMs },
      });
      a.engine.initiate(configA);
      expect(await sim.until(() => steady(a, b), 10_000), sim.world.report()).toBe(true);
      expect(verifyPairing(a.host.kernel, b.host.kernel)).toEqual([]);
      // RFC 7427 was negotiated both ways in IKE_SA_INIT
      expect(established(a)[0]!.peerSignatureHashes).toEqual([2, 3, 4, 5]);
      expect(established(b)[0]!.peerSignatureHashes).toEqual([2, 3, 4, 5]);
      expect(failures(a.events)).toEqual([]);
    });
  }

  it('mixes key types and CAs: each side trusts the CA of the other', async () => {
    const bCert = cert('b', 'p384', { issuer: otherRoot });
    const { sim, a, b, configA } = pair('cert-mixed', {
      auth: auth(cert('a', 'ed25519'), [otherRoot]),
      b: { auth: auth(bCert, [root]) },
      sim: { epochMs },
    });
    a.engine.initiate(configA);
    expect(await sim.until(() => steady(a, b), 10_000), sim.world.report()).toBe(true);
  });

  it('identifies by IP address SAN as well as by FQDN', async () => {
    const { sim, a, b, configA } = pair('cert-ip-id', {
      localId: { type: 'ipv4', value: SITE_A.address },
      remoteId: { type: 'ipv4', value: SITE_B.address },
      auth: auth(cert('a', 'p256')),
      b: {
        localId: { type: 'ipv4', value: SITE_B.address },
        remoteId: { type: 'ipv4', value: SITE_A.address },
        auth: auth(cert('b', 'p256')),
      },
      sim: { epochMs },
    });
    a.engine.initiate(configA);
    expect(await sim.until(() => steady(a, b), 10_000), sim.world.report()).toBe(true);
  });

  it('fragments the certificate-bearing IKE_AUTH both ways (RFC 7383) and survives a lost fragment', async () => {
    const { sim, a, b, configA } = pair('cert-frag', {
      fragmentSize: 500,
      auth: auth(cert('a', 'rsa')),
      b: { auth: auth(cert('b', 'rsa')) },
      sim: { epochMs },
    });
    const drop = dropNext(sim, { from: SITE_A.address, exchange: ExchangeType.IKE_AUTH, response: false });
    a.engine.initiate(configA);
    expect(await sim.until(() => steady(a, b), 20_000), sim.world.report()).toBe(true);
    expect(drop.dropped()).toBe(1);
    const auth_ = sim.world.network.captured().filter((p) => headerOf(p.bytes).exchange === ExchangeType.IKE_AUTH);
    const skfFrom = (addr: string) =>
      auth_.filter((p) => p.from.address === addr && headerOf(p.bytes).firstPayload === PayloadType.SKF);
    // RSA-2048 certificate (~950 bytes) plus a 256-byte signature: at least three fragments each way
    expect(skfFrom(SITE_A.address).length).toBeGreaterThanOrEqual(3);
    expect(skfFrom(SITE_B.address).length).toBeGreaterThanOrEqual(3);
    expect(Math.max(...auth_.map((p) => p.bytes.length))).toBeLessThanOrEqual(500);
    expect(established(a)[0]!.tm.stats.retransmits).toBe(1);
  });
});

describe('certificates over constrained paths', () => {
  it('a 576-byte path MTU drops the unfragmented RSA IKE_AUTH; with 500-byte fragments it establishes', async () => {
    const o = (fragmentation: boolean) => ({
      fragmentation,
      fragmentSize: 500,
      retransmit: { tries: 2 },
      auth: auth(cert('a', 'rsa')),
      b: { auth: auth(cert('b', 'rsa')) },
      sim: { epochMs, conditions: { mtu: 576 } },
    });
    const off = pair('cert-mtu-off', o(false));
    off.a.engine.initiate(off.configA);
    await off.sim.until(() => failures(off.a.events).length > 0, 60_000);
    expect(failures(off.a.events).map((f) => f.failure.code)).toEqual(['RETRANSMITS_EXHAUSTED']);
    const on = pair('cert-mtu-on', o(true));
    on.a.engine.initiate(on.configA);
    expect(await on.sim.until(() => steady(on.a, on.b), 20_000), on.sim.world.report()).toBe(true);
  });

  for (const seed of [1, 2, 3, 4, 5]) {
    it(`reassembles reordered, duplicated and lost fragments (seed ${seed})`, async () => {
      const { sim, a, b, configA } = pair(`cert-frag-chaos-${seed}`, {
        fragmentSize: 300,
        auth: auth(cert('a', 'rsa')),
        b: { auth: auth(cert('b', 'rsa')) },
        sim: { epochMs, conditions: { reorder: 0.4, reorderDelayMs: 30, duplicate: 0.2, loss: 0.1, delayMs: 5 } },
      });
      a.engine.initiate(configA);
      expect(await sim.until(() => steady(a, b), 120_000), sim.world.report()).toBe(true);
      expect(verifyPairing(a.host.kernel, b.host.kernel)).toEqual([]);
    });
  }
});

describe('certificate authentication failures', () => {
  async function failing(seed: string, o: Parameters<typeof pair>[1]) {
    const { sim, a, b, configA } = pair(seed, { sim: { epochMs }, ...o });
    a.engine.initiate(configA);
    await sim.until(() => failures(a.events).length > 0 && a.engine.ikeSas().length === 0, 30_000);
    return { a: failures(a.events), b: failures(b.events), sa: established(a).length + established(b).length };
  }

  it('responder refuses an expired initiator certificate (CERT_EXPIRED); the initiator hears AUTHENTICATION_FAILED', async () => {
    const short = pki.issue(root, 'site-a-short', { days: 1, san: 'DNS:site-a.example' });
    const r = await failing('cert-expired', {
      auth: auth(short),
      b: { auth: auth(cert('b', 'p256')) },
      sim: { epochMs: epochMs + 3 * 86_400_000 },
    });
    expect(r.b.map((f) => f.failure.code)).toEqual(['CERT_EXPIRED']);
    expect(r.b[0]!.failure.message).toMatch(/site-a-short.*expired/);
    expect(r.a.map((f) => f.failure.code)).toEqual(['AUTHENTICATION_FAILED']);
    expect(r.sa).toBe(0);
  });

  it('a certificate not valid yet by the engine clock (CERT_NOT_YET_VALID)', async () => {
    const r = await failing('cert-early', {
      auth: auth(cert('a', 'p256')),
      b: { auth: auth(cert('b', 'p256')) },
      sim: { epochMs: epochMs - 2 * 86_400_000 },
    });
    expect(r.b.map((f) => f.failure.code)).toEqual(['CERT_NOT_YET_VALID']);
  });

  it('responder refuses a certificate of another CA (CERT_UNTRUSTED)', async () => {
    const r = await failing('cert-wrong-ca', {
      auth: auth(cert('a', 'p256', { issuer: otherRoot })),
      b: { auth: auth(cert('b', 'p256')) },
    });
    expect(r.b.map((f) => f.failure.code)).toEqual(['CERT_UNTRUSTED']);
  });

  it('initiator refuses the responder certificate of another CA (CERT_UNTRUSTED) and installs nothing', async () => {
    const { sim, a, b, configA } = pair('cert-wrong-ca-r', {
      auth: auth(cert('a', 'p256')),
      b: { auth: auth(cert('b', 'p256', { issuer: otherRoot })) },
      sim: { epochMs },
    });
    a.engine.initiate(configA);
    await sim.until(() => failures(a.events).length > 0, 30_000);
    expect(failures(a.events).map((f) => f.failure.code)).toEqual(['CERT_UNTRUSTED']);
    await sim.run(5_000);
    expect(a.host.kernel.sas().filter((s) => s.direction === 'out')).toEqual([]);
    void b;
  });

  it('refuses an identity the certificate does not carry (CERT_IDENTITY_MISMATCH)', async () => {
    const r = await failing('cert-wrong-san', {
      auth: auth(cert('a', 'p256', { san: 'DNS:site-x.example' })),
      b: { auth: auth(cert('b', 'p256')) },
    });
    expect(r.b.map((f) => f.failure.code)).toEqual(['CERT_IDENTITY_MISMATCH']);
    expect(r.b[0]!.failure.message).toContain('FQDN site-a.example');
  });

  it('a PSK tunnel refuses signature AUTH, a certificate tunnel refuses PSK (AUTH_METHOD_MISMATCH)', async () => {
    const r1 = await failing('cert-vs-psk', {
      auth: auth(cert('a', 'p256')),
      b: { auth: { method: 'psk', psk: new Uint8Array(32).fill(7) } },
    });
    expect(r1.b.map((f) => f.failure.code)).toEqual(['AUTH_METHOD_MISMATCH']);
    expect(r1.b[0]!.failure.message).toMatch(/ECDSA P-256 \(9\).*pre-shared key/);
    const r2 = await failing('psk-vs-cert', {
      auth: { method: 'psk', psk: new Uint8Array(32).fill(7) },
      b: { auth: auth(cert('b', 'p256')) },
    });
    expect(r2.b.map((f) => f.failure.code)).toEqual(['AUTH_METHOD_MISMATCH']);
    expect(r2.b[0]!.failure.message).toMatch(/pre-shared key \(2\).*certificates/);
  });

  it('a local private key that does not match the certificate fails locally with CERT_KEY_MISMATCH', async () => {
    const mine = cert('a', 'p256');
    const r = await failing('cert-key-mismatch', {
      auth: { ...(auth(mine) as object), privateKey: cert('b', 'p256').keyPem } as PeerConfig['auth'],
      b: { auth: auth(cert('b', 'p256')) },
    });
    expect(r.a.map((f) => f.failure.code)).toEqual(['CERT_KEY_MISMATCH']);
    expect(r.a[0]!.failure.message).not.toContain('PRIVATE KEY');
  });
});

describe('certificate renewal: reauthentication at the IKE rekey (RFC 7296 §2.8.3)', () => {
  function installedOut(n: { host: { kernel: { sas(): { direction: string }[] } } }): number {
    return n.host.kernel.sas().filter((s) => s.direction === 'out').length;
  }

  it('reauthenticates instead of rekeying once the credentials changed, make-before-break', async () => {
    const newRoot = pki.root('renewal-root', { keyType: 'ed25519' });
    const renewedA = pki.issue(newRoot, 'site-a-renewed', { keyType: 'ed25519', san: 'DNS:site-a.example' });
    const { sim, a, b, configA, configB } = pair('cert-renewal', {
      ikeRekeyMs: 600_000,
      auth: auth(cert('a', 'p256')),
      b: { auth: auth(cert('b', 'p256')) },
      sim: { epochMs },
    });
    a.engine.initiate(configA);
    expect(await sim.until(() => steady(a, b), 10_000), sim.world.report()).toBe(true);
    const first = established(a)[0]!;
    // Renewal on both sides, as the agent does it: the configuration objects get new credentials. B now trusts
    // only the new CA, so only the renewed certificate of A can authenticate from here on.
    configA.auth = auth(renewedA, [root]);
    configB.auth = auth(cert('b', 'p256'), [newRoot]);
    // Both sides keep an outbound SA at every step (no teardown).
    let gap = false;
    const ok = await sim.until(() => {
      if (installedOut(a) === 0 || installedOut(b) === 0) gap = true;
      return first.state === 'destroyed' && steady(a, b);
    }, 700_000);
    expect(ok, sim.world.report()).toBe(true);
    expect(gap).toBe(false);
    const now = established(a)[0]!;
    expect(now.uid).not.toBe(first.uid);
    expect(now.rekeyOf).toBeUndefined(); // a new IKE_AUTH, not a CREATE_CHILD_SA rekey
    expect(now.authUsed).toBe(configA.auth);
    expect(failures(a.events)).toEqual([]);
    expect(failures(b.events)).toEqual([]);
    // Later rekeys with unchanged credentials are ordinary IKE rekeys again.
    expect(await sim.until(() => established(a)[0]?.rekeyOf === now.uid && steady(a, b), 700_000)).toBe(true);
  });

  it('rekeys as usual when the credentials did not change', async () => {
    const { sim, a, b, configA } = pair('cert-rekey', {
      ikeRekeyMs: 600_000,
      auth: auth(cert('a', 'p256')),
      b: { auth: auth(cert('b', 'p256')) },
      sim: { epochMs },
    });
    a.engine.initiate(configA);
    expect(await sim.until(() => steady(a, b), 10_000)).toBe(true);
    const first = established(a)[0]!;
    expect(await sim.until(() => established(a)[0]?.rekeyOf === first.uid && steady(a, b), 700_000)).toBe(true);
  });

  it('keeps the tunnel when the reauthentication fails: the old IKE SA is rekeyed instead', async () => {
    const stranger = pki.root('stranger-root');
    const strangeA = pki.issue(stranger, 'site-a-strange', { san: 'DNS:site-a.example' });
    const { sim, a, b, configA } = pair('cert-renewal-fails', {
      ikeRekeyMs: 600_000,
      auth: auth(cert('a', 'p256')),
      b: { auth: auth(cert('b', 'p256')) },
      sim: { epochMs },
    });
    a.engine.initiate(configA);
    expect(await sim.until(() => steady(a, b), 10_000)).toBe(true);
    const first = established(a)[0]!;
    configA.auth = auth(strangeA, [root]); // B does not trust this CA
    let gap = false;
    const ok = await sim.until(() => {
      if (installedOut(a) === 0) gap = true;
      return established(a).some((s) => s.rekeyOf === first.uid) && steady(a, b);
    }, 700_000);
    expect(ok, sim.world.report()).toBe(true);
    expect(gap).toBe(false);
    expect(failures(b.events).map((f) => f.failure.code)).toContain('CERT_UNTRUSTED');
  });
});
