/**
 * Route MTU and MSS clamping commands (src/agent/mtu-dataplane.ts) against a fake command runner: what is run,
 * the nftables -> iptables-legacy fallback, typed errors when no tool works, routes restored when a tunnel goes.
 */
import { describe, expect, it } from 'vitest';
import {
  IPT_CHAIN,
  iptablesRestore,
  MssClampUnavailableError,
  MtuDataplane,
  type MtuEntry,
  nftRuleset,
  type RunResult,
} from '../../src/agent/mtu-dataplane.js';

const E1: MtuEntry = { tunnel: 'default/a-b', subnet: '198.18.2.0/24', family: 4, innerMtu: 1246, mss: 1206 };

interface Call {
  cmd: string;
  args: string[];
  input?: string;
}

function fakeRunner(answer: (c: Call) => Partial<RunResult> | undefined) {
  const calls: Call[] = [];
  const run = async (cmd: string, args: string[], input?: string): Promise<RunResult> => {
    const c: Call = { cmd, args, ...(input !== undefined ? { input } : {}) };
    calls.push(c);
    return { code: 0, stdout: '', stderr: '', ...(answer(c) ?? {}) };
  };
  return { calls, run };
}

const routeShowEmpty = (c: Call) => (c.cmd === 'ip' && c.args.includes('show') ? { stdout: '[]' } : undefined);

describe('rulesets', () => {
  it('nftables: one inet table replaced atomically, both directions, only SYNs with a larger MSS', () => {
    expect(nftRuleset([E1])).toBe(
      [
        'table inet ipsec_mesh_mss',
        'delete table inet ipsec_mesh_mss',
        'table inet ipsec_mesh_mss {',
        '  chain forward {',
        '    type filter hook forward priority mangle; policy accept;',
        '    ip daddr 198.18.2.0/24 tcp flags & (syn|rst) == syn tcp option maxseg size > 1206 tcp option maxseg size set 1206 comment "default/a-b"',
        '    ip saddr 198.18.2.0/24 tcp flags & (syn|rst) == syn tcp option maxseg size > 1206 tcp option maxseg size set 1206 comment "default/a-b"',
        '  }',
        '}',
        '',
      ].join('\n'),
    );
    expect(nftRuleset([])).toBe('table inet ipsec_mesh_mss\ndelete table inet ipsec_mesh_mss\n');
  });

  it('iptables-legacy: our chain in mangle, TCPMSS only above the target', () => {
    expect(iptablesRestore([E1])).toBe(
      [
        '*mangle',
        `:${IPT_CHAIN} - [0:0]`,
        `-A ${IPT_CHAIN} -d 198.18.2.0/24 -p tcp -m tcp --tcp-flags SYN,RST SYN -m tcpmss --mss 1207:65535 -j TCPMSS --set-mss 1206`,
        `-A ${IPT_CHAIN} -s 198.18.2.0/24 -p tcp -m tcp --tcp-flags SYN,RST SYN -m tcpmss --mss 1207:65535 -j TCPMSS --set-mss 1206`,
        'COMMIT',
        '',
      ].join('\n'),
    );
  });
});

describe('MtuDataplane', () => {
  it('prefers nftables and sets the route MTU on a new route via the current next hop', async () => {
    const f = fakeRunner((c) => {
      if (c.cmd === 'ip' && c.args.includes('show')) return { stdout: '[]' };
      if (c.cmd === 'ip' && c.args.includes('get'))
        return { stdout: '[{"dst":"198.18.2.0","gateway":"192.0.2.2","dev":"eth0"}]' };
      return undefined;
    });
    const d = new MtuDataplane({ run: f.run });
    const r = await d.apply([E1]);
    expect(r).toEqual({ backend: 'nftables', routeErrors: [] });
    expect(f.calls.map((c) => [c.cmd, ...c.args].join(' '))).toEqual([
      'nft -f -',
      'ip -4 -j route show exact 198.18.2.0/24',
      'ip -4 -j route get 198.18.2.0',
      'ip -4 route replace 198.18.2.0/24 via 192.0.2.2 dev eth0 proto 157 mtu lock 1246',
    ]);
    // Unchanged: nothing runs again.
    f.calls.length = 0;
    await d.apply([E1]);
    expect(f.calls).toEqual([]);
    // Tunnel gone: the table is emptied and our route deleted.
    await d.apply([]);
    expect(f.calls.map((c) => [c.cmd, ...c.args].join(' '))).toEqual([
      'nft -f -',
      'ip -4 route del 198.18.2.0/24 proto 157',
    ]);
    expect(f.calls[0]!.input).toBe(nftRuleset([]));
  });

  it('an existing route is replaced with the MTU and restored as it was', async () => {
    const f = fakeRunner((c) =>
      c.cmd === 'ip' && c.args.includes('show')
        ? { stdout: '[{"dst":"198.18.2.0/24","gateway":"192.0.2.2","dev":"p1","metric":5,"flags":[]}]' }
        : undefined,
    );
    const d = new MtuDataplane({ run: f.run, clampMss: false });
    await d.apply([E1]);
    await d.apply([]);
    expect(f.calls.map((c) => [c.cmd, ...c.args].join(' '))).toEqual([
      'ip -4 -j route show exact 198.18.2.0/24',
      'ip -4 route replace 198.18.2.0/24 via 192.0.2.2 dev p1 metric 5 proto 157 mtu lock 1246',
      'ip -4 route replace 198.18.2.0/24 via 192.0.2.2 dev p1 metric 5',
    ]);
  });

  it('falls back to iptables-legacy when nft fails, and says why', async () => {
    const f = fakeRunner((c) => {
      if (c.cmd === 'nft') return { code: 1, stderr: 'Error: Could not process rule: Operation not supported\n' };
      if (c.cmd === 'iptables-legacy' && c.args.includes('-C')) return { code: 1 };
      return routeShowEmpty(c);
    });
    const d = new MtuDataplane({ run: f.run, routeMtu: false });
    const r = await d.apply([E1]);
    expect(r.backend).toBe('iptables-legacy');
    expect(r.fallbackReason).toBe('nft -f failed: Error: Could not process rule: Operation not supported');
    const cmds = f.calls.map((c) => [c.cmd, ...c.args].join(' '));
    expect(cmds).toContain('iptables-legacy-restore -w --noflush');
    expect(cmds).toContain(`iptables-legacy -w -t mangle -I FORWARD 1 -j ${IPT_CHAIN}`);
    expect(f.calls.find((c) => c.cmd === 'iptables-legacy-restore')!.input).toBe(iptablesRestore([E1]));
  });

  it('no netfilter tool: a typed error in the result, routes still set, no throw', async () => {
    const f = fakeRunner((c) => {
      if (c.cmd !== 'ip') return { code: 127, stderr: `${c.cmd}: spawn ${c.cmd} ENOENT` };
      if (c.args.includes('show')) return { stdout: '[]' };
      if (c.args.includes('get')) return { stdout: '[{"dst":"198.18.2.0","gateway":"192.0.2.2","dev":"eth0"}]' };
      return undefined;
    });
    const r = await new MtuDataplane({ run: f.run }).apply([E1]);
    expect(r.clampError).toBeInstanceOf(MssClampUnavailableError);
    expect(r.clampError?.code).toBe('ERR_MSS_CLAMP_UNAVAILABLE');
    expect(r.clampError?.message).toBe(
      'cannot clamp TCP MSS: nft is not installed; iptables-legacy: iptables-legacy-restore is not installed',
    );
    expect(r.routeErrors).toEqual([]);
  });

  it('backend nftables chosen: no fallback', async () => {
    const f = fakeRunner((c) => (c.cmd === 'nft' ? { code: 1, stderr: 'no' } : routeShowEmpty(c)));
    const r = await new MtuDataplane({ run: f.run, backend: 'nftables', routeMtu: false }).apply([E1]);
    expect(r.clampError?.message).toBe('cannot clamp TCP MSS with nftables: nft -f failed: no');
    expect(f.calls.some((c) => c.cmd.startsWith('iptables'))).toBe(false);
  });

  it('a route that cannot be set is a typed error, not a throw', async () => {
    const f = fakeRunner((c) => {
      if (c.args.includes('show')) return { stdout: '[]' };
      if (c.args.includes('get')) return { code: 2, stderr: 'RTNETLINK answers: Network is unreachable' };
      return undefined;
    });
    const r = await new MtuDataplane({ run: f.run, clampMss: false }).apply([E1]);
    expect(r.routeErrors.map((e) => [e.code, e.message])).toEqual([
      ['ERR_ROUTE_MTU', 'no route towards 198.18.2.0/24 to put its MTU on: RTNETLINK answers: Network is unreachable'],
    ]);
  });
});
