/** `ipsec-mesh swanctl`: a plain strongSwan site's configuration from the IPsecMesh the clusters apply. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readMesh, readPsk, renderSwanctl, SwanctlExportError } from '../../src/cli/swanctl.js';

const REPO = resolve(import.meta.dirname, '../..');
const example = readFileSync(join(REPO, 'examples/cluster/mesh.yaml'), 'utf8');
const dir = mkdtempSync(join(tmpdir(), 'ipsec-mesh-swanctl-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('swanctl export of a mesh site', () => {
  const mesh = readMesh(example, 'mesh.yaml');
  const conf = renderSwanctl(mesh, 'c', 'the pre-shared key of the example');

  it('has one connection per other site, named like the operators name the IPsecTunnels', () => {
    expect([...conf.matchAll(/^ {2}(\S+) \{$/gm)].map((m) => m[1])).toEqual([
      'corp-a',
      'corp-b',
      'ike-corp-a',
      'ike-corp-b',
    ]);
  });

  it('carries addresses, identities, subnets, proposals, lifetimes and DPD from the mesh', () => {
    const a = conf.slice(conf.indexOf('  corp-a {'), conf.indexOf('  corp-b {'));
    expect(a).toContain('local_addrs = 203.0.113.10');
    expect(a).toContain('remote_addrs = 192.0.2.10');
    expect(a).toMatch(/local \{\n\s+auth = psk\n\s+id = site-c.example/);
    expect(a).toMatch(/remote \{\n\s+auth = psk\n\s+id = site-a.example/);
    expect(a).toContain('local_ts = 198.18.3.0/24');
    expect(a).toContain('remote_ts = 198.18.1.0/24');
    expect(a).toContain('proposals = aes256gcm16-prfsha384-x25519');
    expect(a).toContain('esp_proposals = aes256gcm16-x25519');
    expect(a).toContain('rekey_time = 14400s');
    expect(a).toContain('rekey_time = 3600s');
    expect(a).toContain('dpd_delay = 10s');
    expect(a).toContain('dpd_action = restart');
    expect(a).toContain('start_action = start');
  });

  it('puts the PSK only into the secrets section, quoted', () => {
    expect(conf.match(/the pre-shared key of the example/g)).toHaveLength(2);
    expect(conf).toContain('secret = "the pre-shared key of the example"');
  });

  it('reads the PSK from the Secret manifest (stringData or data)', () => {
    expect(readPsk(example, 'mesh.yaml', 'psk')).toBe('replace-me-with-32-random-bytes-from-openssl-rand');
    const b64 = Buffer.from('from data').toString('base64');
    expect(readPsk(`kind: Secret\ndata:\n  psk: ${b64}\n`, 's.yaml', 'psk')).toBe('from data');
    expect(() => readPsk('kind: Secret\n', 's.yaml', 'psk')).toThrow(/no Secret with key "psk"/);
  });

  it('names a missing site, a missing mesh and an invalid mesh with typed errors', () => {
    const err = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return e instanceof SwanctlExportError ? `${e.reason}: ${e.message}` : `untyped ${e}`;
      }
      return 'no error';
    };
    expect(err(() => renderSwanctl(mesh, 'z'))).toBe('SiteNotFound: site "z" is not among spec.sites (a, b, c)');
    expect(err(() => readMesh('kind: Secret\n', 'x.yaml'))).toBe('NoMesh: x.yaml: no IPsecMesh document');
    expect(err(() => readMesh('kind: IPsecMesh\nspec: { sites: [] }\n', 'x.yaml'))).toMatch(
      /^InvalidMesh: x.yaml: spec.sites: /,
    );
  });

  it('writes the file with mode 0600 from the command line (charon loads it in test/e2e)', () => {
    const meshFile = join(dir, 'mesh.yaml');
    const out = join(dir, 'swanctl.conf');
    writeFileSync(meshFile, example);
    execFileSync(
      process.execPath,
      [
        '--import',
        'tsx',
        join(REPO, 'src/cli/main.ts'),
        'swanctl',
        '--mesh',
        meshFile,
        '--site',
        'c',
        '--secret',
        meshFile,
        '--out',
        out,
      ],
      { cwd: REPO },
    );
    expect(statSync(out).mode & 0o777).toBe(0o600);
    const text = readFileSync(out, 'utf8');
    expect(text).toContain('secret = replace-me-with-32-random-bytes-from-openssl-rand');
  });
});
