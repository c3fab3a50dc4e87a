import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { selectorText } from '../../src/agent/agent.js';
import { loadConfigDir } from '../../src/agent/config-dir.js';
import { parseIdentity, peerConfig, TunnelConfigError } from '../../src/agent/peers.js';
import { kernelSelector, rangePrefix } from '../../src/agent/xfrm-kernel.js';
import { selectorFromCidr } from '../../src/ike/codec/payloads/ts.js';

function dir(files: Record<string, string>): string {
  const d = mkdtempSync(join(tmpdir(), 'ipsec-mesh-cfg-'));
  for (const [f, text] of Object.entries(files)) writeFileSync(join(d, f), text);
  return d;
}

const SETTINGS = `apiVersion: ipsecmesh.io/v1alpha1
kind: AgentSettings
nodeName: gw-a
addresses: [192.0.2.1]
site: a
`;

const TUNNEL = `apiVersion: ipsecmesh.io/v1alpha1
kind: IPsecTunnel
metadata: { name: to-b, namespace: sites }
spec:
  local: { address: 192.0.2.1, subnets: [198.18.1.0/24], id: site-a.example }
  remote: { address: 192.0.2.2, subnets: [198.18.2.0/24], id: site-b.example }
  auth: { psk: { secretRef: { name: psk-a-b } } }
---
apiVersion: v1
kind: Secret
metadata: { name: psk-a-b, namespace: sites }
data: { psk: ${Buffer.from('sixteen bytes or more').toString('base64')} }
`;

describe('standalone config directory', () => {
  it('reads settings, tunnels and their secrets', () => {
    const d = loadConfigDir(dir({ 'agent.yaml': SETTINGS, 'tunnel.yaml': TUNNEL }));
    expect(d.problems).toEqual([]);
    expect(d.settings?.nodeName).toBe('gw-a');
    expect(d.settings?.ikePort).toBe(500);
    expect(d.tunnels).toHaveLength(1);
    const t = d.tunnels[0]!;
    expect(t).toMatchObject({ namespace: 'sites', name: 'to-b', local: { address: '192.0.2.1' } });
    expect(new TextDecoder().decode(d.secrets.get(t.auth.psk!.key))).toBe('sixteen bytes or more');
    // Defaults from the schema are applied.
    expect(t.ike.proposals).toEqual(['aes256gcm16-prfsha384-x25519']);
    expect(t.failClosed).toBe(true);
  });

  it('names the file, the document and the field of every problem, and keeps the valid objects', () => {
    const d = loadConfigDir(
      dir({
        'agent.yaml': SETTINGS,
        'good.yaml': TUNNEL,
        'bad.yaml': `apiVersion: ipsecmesh.io/v1alpha1
kind: IPsecTunnel
metadata: { name: broken }
spec:
  local: { address: 192.0.2.1, subnets: [198.18.300.0/24] }
  remote: { address: 192.0.2.2, subnets: [198.18.2.0/24] }
  auth: { psk: { secretRef: { name: x } } }
  ike: { proposals: ['AES!'] }
`,
        'nosecret.yaml': TUNNEL.split('---')[0]!.replace('to-b', 'lonely').replace('psk-a-b', 'nowhere'),
        'garbage.yaml': 'key: [unclosed',
        'other.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: x }\n',
      }),
    );
    // 'lonely' is kept (its status will show the missing key); 'broken' is not a valid object at all.
    expect(d.tunnels.map((t) => t.name).sort()).toEqual(['lonely', 'to-b']);
    const bad = d.problems.filter((p) => p.file === 'bad.yaml');
    expect(bad.map((p) => p.path)).toEqual(expect.arrayContaining(['spec.local.subnets[0]', 'spec.ike.proposals[0]']));
    expect(bad[0]!.where).toContain('IPsecTunnel broken');
    expect(d.problems.find((p) => p.file === 'nosecret.yaml')?.message).toContain('Secret sites/nowhere not found');
    expect(d.problems.find((p) => p.file === 'garbage.yaml')?.message).toMatch(/^YAML/);
    expect(d.problems.find((p) => p.file === 'other.yaml')?.path).toBe('kind');
  });

  it('expands an IPsecMesh into tunnels to every other site', () => {
    const d = loadConfigDir(
      dir({
        'agent.yaml': SETTINGS,
        'mesh.yaml': `apiVersion: ipsecmesh.io/v1alpha1
kind: IPsecMesh
metadata: { name: m, namespace: sites }
spec:
  auth: { psk: { secretRef: { name: mesh-psk } } }
  sites:
    - { name: a, gateway: { address: 192.0.2.1 }, subnets: [198.18.1.0/24] }
    - { name: b, gateway: { address: 192.0.2.2 }, subnets: [198.18.2.0/24] }
    - { name: c, gateway: { address: 192.0.2.3 }, subnets: [198.18.3.0/24] }
---
apiVersion: v1
kind: Secret
metadata: { name: mesh-psk, namespace: sites }
stringData: { psk: a shared mesh key of some length }
`,
      }),
    );
    expect(d.problems).toEqual([]);
    expect(d.tunnels.map((t) => `${t.name}:${t.remote.address}`).sort()).toEqual(['m-b:192.0.2.2', 'm-c:192.0.2.3']);
    expect(d.tunnels.every((t) => t.local.address === '192.0.2.1')).toBe(true);
  });

  it('reports a missing AgentSettings and an unreadable directory', () => {
    expect(loadConfigDir(dir({})).problems[0]!.message).toContain('no AgentSettings');
    expect(loadConfigDir('/nonexistent/dir').problems[0]!.message).toContain('cannot read directory');
  });
});

describe('tunnel -> engine configuration', () => {
  const d = loadConfigDir(dir({ 'agent.yaml': SETTINGS, 'tunnel.yaml': TUNNEL }));
  const t = d.tunnels[0]!;

  it('builds a PeerConfig with parsed proposals, identities, lifetimes and selectors', () => {
    const c = peerConfig(t, (k) => d.secrets.get(k), { ikePort: 500 });
    expect(c.name).toBe('sites/to-b');
    expect(c.localId).toEqual({ type: 'fqdn', value: 'site-a.example' });
    expect(c.ikeLifetime.rekeyMs).toBe(4 * 3_600_000);
    expect(c.children[0]!.reqid).toBe(t.reqid);
    expect(c.children[0]!.localTs).toHaveLength(1);
  });

  it('refuses a missing or short key, unresolvable addresses and DN identities with typed reasons', () => {
    const reason = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return e instanceof TunnelConfigError ? e.reason : String(e);
      }
      return 'ok';
    };
    expect(reason(() => peerConfig(t, () => undefined, { ikePort: 500 }))).toBe('SecretNotFound');
    expect(reason(() => peerConfig(t, () => new Uint8Array(4), { ikePort: 500 }))).toBe('WeakPsk');
    const dns = { ...t, remote: { ...t.remote, address: 'gw.example.org' } };
    expect(reason(() => peerConfig(dns, (k) => d.secrets.get(k), { ikePort: 500 }))).toBe('UnresolvedAddress');
    expect(reason(() => parseIdentity('C=CH, O=example, CN=gw', 'spec.local.id'))).toBe('UnsupportedIdentity');
    expect(parseIdentity('ops@example.org', 'x')).toEqual({ type: 'rfc822', value: 'ops@example.org' });
    expect(parseIdentity('2001:db8::1', 'x')).toEqual({ type: 'ipv6', value: '2001:db8::1' });
  });
});

describe('selectors for status and the kernel', () => {
  it('prints CIDRs, ranges and protocol/port restrictions', () => {
    expect(selectorText(selectorFromCidr('198.18.1.0/24'))).toBe('198.18.1.0/24');
    expect(selectorText(selectorFromCidr('2001:db8:1::/48'))).toBe('2001:db8:1::/48');
    expect(selectorText(selectorFromCidr('198.18.1.7'))).toBe('198.18.1.7/32');
    expect(selectorText(selectorFromCidr('198.18.1.0/24', { ipProtocol: 17, startPort: 53, endPort: 53 }))).toBe(
      '198.18.1.0/24[17/53]',
    );
    const range = { ...selectorFromCidr('198.18.1.0/24'), endAddress: Uint8Array.of(198, 18, 1, 9) };
    expect(selectorText(range)).toBe('198.18.1.0-198.18.1.9');
  });

  it('turns address ranges into kernel prefixes and refuses what is not one prefix', () => {
    expect(rangePrefix('198.18.0.0', '198.18.255.255')).toBe(16);
    expect(rangePrefix('2001:db8::', '2001:db8::ffff')).toBe(112);
    expect(rangePrefix('198.18.1.0', '198.18.1.9')).toBeUndefined();
    const any = { family: 4 as const, protocol: 0, startPort: 0, endPort: 0xffff };
    const s = kernelSelector(
      { ...any, startAddress: '198.18.1.0', endAddress: '198.18.1.255' },
      { ...any, startAddress: '198.18.2.0', endAddress: '198.18.2.255', protocol: 6, startPort: 443, endPort: 443 },
    );
    expect(s).toMatchObject({ prefixlenS: 24, prefixlenD: 24, proto: 6, dport: 443, dportMask: 0xffff, sportMask: 0 });
    expect(() =>
      kernelSelector(
        { ...any, startAddress: '198.18.1.0', endAddress: '198.18.1.9' },
        { ...any, startAddress: '198.18.2.0', endAddress: '198.18.2.255' },
      ),
    ).toThrow(/not a pair of prefixes/);
  });
});
