/** The files in examples/ stay valid: they parse with the same loader and schemas the agent and operator use. */
import { cpSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { loadConfigDir } from '../../src/agent/config-dir.js';
import { IPsecMesh, safeParseWith } from '../../src/api/resources.js';

const EXAMPLES = join(import.meta.dirname, '../../examples');

describe('examples', () => {
  it('the standalone example loads without problems', () => {
    const d = mkdtempSync(join(tmpdir(), 'ipsec-mesh-example-'));
    cpSync(join(EXAMPLES, 'standalone-site-a'), d, { recursive: true });
    const state = loadConfigDir(d);
    expect(state.problems).toEqual([]);
    expect(state.tunnels.map((t) => t.name)).toEqual(['to-site-b']);
  });

  it('the mesh example is a valid IPsecMesh', () => {
    const docs = parseAllDocuments(readFileSync(join(EXAMPLES, 'cluster/mesh.yaml'), 'utf8')).map((d) => d.toJS());
    const r = safeParseWith(IPsecMesh, docs[0], 'IPsecMesh');
    expect(r.ok ? [] : r.error.errors).toEqual([]);
  });
});
