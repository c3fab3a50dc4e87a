import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { CRD_DIRS, generateCrds } from '../../src/api/crdgen.js';
import {
  ApiValidationError,
  cidrsOverlap,
  isCanonicalCidr,
  parseDuration,
  parseIPsecTunnel,
  parseManifests,
  parseTunnelSpec,
} from '../../src/api/index.js';

const root = fileURLToPath(new URL('../../', import.meta.url));

const tunnel = {
  apiVersion: 'ipsecmesh.io/v1alpha1',
  kind: 'IPsecTunnel',
  metadata: { name: 'a-b', namespace: 'default' },
  spec: {
    local: { subnets: ['198.18.1.0/24'], id: 'site-a.example' },
    remote: { address: '203.0.113.2', subnets: ['198.18.2.0/24'], id: 'site-b.example' },
    auth: { psk: { secretRef: { name: 'psk-a-b' } } },
  },
};

describe('api schemas', () => {
  it('parses a minimal tunnel and fills defaults', () => {
    const t = parseIPsecTunnel(tunnel);
    expect(t.spec.auth.psk?.secretRef.key).toBe('psk');
    expect(t.spec.ike.proposals).toEqual(['aes256gcm16-prfsha384-x25519']);
    expect(t.spec.ike.dpd).toEqual({ interval: '30s', action: 'restart' });
    expect(t.spec.esp.lifetime).toBe('1h');
    expect(t.spec.natt).toBe('auto');
    expect(t.spec.startAction).toBe('start');
    expect(t.spec.failClosed).toBe(true);
    expect(t.spec.remote.port).toBe(500);
    expect(t.spec.local.nodeSelector).toEqual({});
  });

  it('names the field path of every error', () => {
    const bad = structuredClone(tunnel) as Record<string, any>;
    bad.spec.remote.subnets = ['198.18.2.0/24', '198.18.3.1/24', 'nope'];
    bad.spec.auth = { psk: { secretRef: { name: 'x' } }, certificate: { secretRef: { name: 'y' } } };
    bad.spec.ike = { proposals: ['AES-256'], lifetime: '4 hours', dpd: { action: 'explode' } };
    const r = parseTunnelSpec(bad.spec);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    const paths = r.error.errors.map((e) => e.path);
    expect(paths).toEqual(
      expect.arrayContaining([
        'spec.remote.subnets[1]',
        'spec.remote.subnets[2]',
        'spec.auth',
        'spec.ike.proposals[0]',
        'spec.ike.lifetime',
        'spec.ike.dpd.action',
      ]),
    );
    expect(r.error.message).toContain('spec.auth: exactly one of psk or certificate must be set');
    expect(r.error).toBeInstanceOf(ApiValidationError);
    expect(r.error.code).toBe('ERR_IPSEC_MESH_INVALID_RESOURCE');
  });

  it('reads multi-document YAML manifests for the standalone agent', () => {
    const text = `apiVersion: ipsecmesh.io/v1alpha1
kind: IPsecTunnel
metadata: {name: t1, namespace: default}
spec:
  local: {subnets: [198.18.1.0/24]}
  remote: {address: 203.0.113.2, subnets: ['2001:db8:2::/48']}
  auth: {certificate: {secretRef: {name: tls-a}}}
---
apiVersion: ipsecmesh.io/v1alpha1
kind: IPsecMesh
metadata: {name: m, namespace: default}
spec:
  sites:
    - {name: a, gateway: {address: 192.0.2.1}, subnets: [198.18.1.0/24]}
    - {name: b, gateway: {address: gw-b.example}, subnets: [198.18.2.0/24]}
  auth: {psk: {secretRef: {name: mesh-psk}}}
`;
    const objs = parseManifests(text, 'sites.yaml');
    expect(objs.map((o) => o.kind)).toEqual(['IPsecTunnel', 'IPsecMesh']);
    expect(() => parseManifests(text.replace('gw-b.example', 'gw_b!'), 'sites.yaml')).toThrow(
      /IPsecMesh \(sites.yaml document 2\).*spec.sites\[1\].gateway.address: must be an IP address or a DNS name/,
    );
    expect(() =>
      parseManifests(text.replace('{name: b,', '{name: a,').replace('gw-b.example', '192.0.2.2'), 'x'),
    ).toThrow(/spec.sites: site names must be unique/);
  });

  it('checks CIDRs, overlaps and durations', () => {
    expect(isCanonicalCidr('198.18.1.0/24')).toBe(true);
    expect(isCanonicalCidr('198.18.1.1/24')).toBe(false);
    expect(isCanonicalCidr('2001:db8::/32')).toBe(true);
    expect(isCanonicalCidr('2001:db8::1/64')).toBe(false);
    expect(isCanonicalCidr('198.18.1.0/33')).toBe(false);
    expect(cidrsOverlap('198.18.0.0/16', '198.18.5.0/24')).toBe(true);
    expect(cidrsOverlap('198.18.1.0/24', '198.18.2.0/24')).toBe(false);
    expect(cidrsOverlap('198.18.1.0/24', '2001:db8::/32')).toBe(false);
    expect(parseDuration('1h30m')).toBe(5_400_000);
    expect(parseDuration('500ms')).toBe(500);
    expect(parseDuration('4 hours')).toBeUndefined();
  });
});

describe('generated CRDs', () => {
  it('crds/ and the chart copy match the generator output (run `npm run gen:crds`)', () => {
    for (const dir of CRD_DIRS) {
      for (const [name, text] of generateCrds()) {
        expect(readFileSync(`${root}${dir}/${name}`, 'utf8'), `${dir}/${name}`).toBe(text);
      }
    }
  });

  it('reads back the same under YAML 1.1 (the API server would turn a bare off into false)', () => {
    const text = [...generateCrds().values()].find((t) => t.includes('kind: IPsecTunnel\n'))!;
    const crd = parse(text, { version: '1.1' });
    expect(crd.spec.versions[0].schema.openAPIV3Schema.properties.spec.properties.natt.enum).toEqual([
      'auto',
      'force',
      'off',
    ]);
  });

  it('has a description on every field, status subresource, printer columns and short names', () => {
    for (const [name, text] of generateCrds()) {
      const crd = parse(text.replace(/^#.*\n/, ''));
      const v = crd.spec.versions[0];
      expect(v.subresources).toEqual({ status: {} });
      expect(crd.spec.names.shortNames.length).toBeGreaterThan(0);
      const missing: string[] = [];
      const walk = (node: any, path: string) => {
        if (!node || typeof node !== 'object') return;
        if (path.split('.').length > 2 && !['metadata'].includes(path.split('.').pop()!) && !node.description) {
          missing.push(path);
        }
        for (const [k, p] of Object.entries(node.properties ?? {})) walk(p, `${path}.${k}`);
        if (node.items) walk(node.items, `${path}[]`);
      };
      walk(v.schema.openAPIV3Schema.properties.spec, `${name}.spec`);
      walk(v.schema.openAPIV3Schema.properties.status, `${name}.status`);
      expect(missing, `fields without description in ${name}`).toEqual([]);
    }
    const tunnel = parse(
      [...generateCrds().values()].find((t) => t.includes('kind: IPsecTunnel\n'))!.replace(/^#.*\n/, ''),
    );
    expect(tunnel.spec.versions[0].additionalPrinterColumns.map((c: { name: string }) => c.name)).toEqual([
      'Ready',
      'Gateway',
      'Remote',
      'IKE',
      'Children',
      'Age',
    ]);
  });
});
