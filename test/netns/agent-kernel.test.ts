/** The agent's XFRM port against the host kernel in a fresh namespace (policies only: the host kernel has no ESP). */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupStale, deleteNamespace, requireRoot, sh } from '../support/netns.js';

const REPO = join(import.meta.dirname, '../..');

describe('agent XFRM port: bypass, fail-closed and trap policies, atomic swaps', () => {
  const ns = `imak${process.pid % 100000}`;
  type Pol = { dir: string; src: string; dst: string; action: string; tmpl: boolean; proto?: string };
  let result: {
    bypass: Pol[];
    block: Pol[];
    tunnel: Pol[];
    tunnelKept: Pol[];
    backToBlock: Pol[];
    trap: Pol[];
    cleared: Pol[];
    adoptedKept: Pol[];
    released: number;
    adoptedReleased: Pol[];
    owned: { sas: number; policies: number };
  };

  beforeAll(() => {
    requireRoot();
    cleanupStale('imak');
    sh('ip', ['netns', 'add', ns]);
    const text = execFileSync(
      'ip',
      ['netns', 'exec', ns, process.execPath, '--import', 'tsx', join(REPO, 'test/netns/agent-kernel-script.ts')],
      { encoding: 'utf8', cwd: REPO },
    );
    result = JSON.parse(text.trim().split('\n').pop()!);
  }, 60_000);

  afterAll(() => deleteNamespace(ns));

  it('installs IKE bypass policies for UDP 500 and 4500, both families, both directions', () => {
    expect(result.bypass.filter((p) => p.action === 'allow' && !p.tmpl)).toHaveLength(8);
  });

  it('installs block policies for a fail-closed subnet pair (out, in, fwd)', () => {
    const blocks = result.block.filter((p) => p.action === 'block');
    expect(blocks.map((p) => p.dir).sort()).toEqual(['fwd', 'in', 'out']);
    expect(blocks.find((p) => p.dir === 'out')).toMatchObject({ src: '198.18.1.0/24', dst: '198.18.2.0/24' });
  });

  it('replaces the block policies by the tunnel policies in place, and back when the CHILD SA goes', () => {
    const pair = (list: Pol[]) => list.filter((p) => p.src?.startsWith('198.18') || p.dst?.startsWith('198.18'));
    expect(pair(result.tunnel).every((p) => p.action === 'allow' && p.tmpl)).toBe(true);
    expect(pair(result.tunnel)).toHaveLength(3);
    expect(pair(result.tunnelKept)).toEqual(pair(result.tunnel));
    expect(pair(result.backToBlock).every((p) => p.action === 'block')).toBe(true);
    expect(pair(result.backToBlock)).toHaveLength(3);
  });

  it('sees its own policies as owned', () => {
    expect(result.owned.policies).toBe(8 + 3);
    expect(result.owned.sas).toBe(0);
  });

  it('uses a trap (templated, no SA) as the resting policy for trap tunnels, and removes resting policies on request', () => {
    const trap = result.trap.filter((p) => p.src === '198.18.1.0/24');
    expect(trap).toHaveLength(1);
    expect(trap[0]).toMatchObject({ dir: 'out', tmpl: true });
    expect(result.cleared.filter((p) => p.src?.startsWith('198.18') || p.dst?.startsWith('198.18'))).toHaveLength(0);
  });

  it('after a restart keeps the adopted tunnel policies under a new resting policy, until they are released', () => {
    const pair = (list: Pol[]) => list.filter((p) => p.src?.startsWith('198.18') || p.dst?.startsWith('198.18'));
    expect(pair(result.adoptedKept)).toHaveLength(3);
    expect(pair(result.adoptedKept).every((p) => p.action === 'allow' && p.tmpl)).toBe(true);
    expect(result.released).toBe(3);
    expect(pair(result.adoptedReleased)).toHaveLength(3);
    expect(pair(result.adoptedReleased).every((p) => p.action === 'block')).toBe(true);
  });
});
