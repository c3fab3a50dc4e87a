/** Floating gateway addresses over rtnetlink in a fresh namespace (src/agent/floating.ts). */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupStale, deleteNamespace, requireRoot, sh } from '../support/netns.js';

const REPO = join(import.meta.dirname, '../..');
const ns = `imfl${process.pid % 100000}`;
let result: { claimed: string[]; released: string[]; noInterface: string };

beforeAll(() => {
  requireRoot();
  cleanupStale('imfl');
  sh('ip', ['netns', 'add', ns]);
  sh('ip', ['-n', ns, 'link', 'add', 'ul0', 'type', 'veth', 'peer', 'name', 'ul1']);
  sh('ip', ['-n', ns, 'link', 'set', 'ul1', 'up']);
  sh('ip', ['-n', ns, 'link', 'set', 'ul0', 'up']);
  sh('ip', ['-n', ns, 'addr', 'add', '192.0.2.11/24', 'dev', 'ul0']);
  sh('ip', ['-n', ns, 'addr', 'add', '2001:db8:5::11/64', 'dev', 'ul0', 'nodad']);
  const text = execFileSync(
    'ip',
    ['netns', 'exec', ns, process.execPath, '--import', 'tsx', join(REPO, 'test/netns/floating-script.ts')],
    { encoding: 'utf8', cwd: REPO },
  );
  result = JSON.parse(text.trim().split('\n').pop()!);
}, 60_000);

afterAll(() => deleteNamespace(ns));

describe('floating addresses', () => {
  it('are added as host addresses on the interface of the node address, once, for IPv4 and IPv6', () => {
    expect(result.claimed.filter((a) => a === '192.0.2.10/32')).toHaveLength(1);
    expect(result.claimed).toContain('2001:db8:5::10/128');
    expect(result.claimed).toContain('192.0.2.11/24');
  });

  it('are removed again, and a second release is a no-op', () => {
    expect(result.released).not.toContain('192.0.2.10/32');
    expect(result.released).not.toContain('2001:db8:5::10/128');
    expect(result.released).toContain('192.0.2.11/24');
  });

  it('refuse with a typed error when no interface carries the node address', () => {
    expect(result.noInterface).toBe('NoInterface: no interface carries the node address 198.18.99.1');
  });
});
