/** MtuController (src/agent/mtu-controller.ts): status figures per tunnel from the CHILD SAs, with a fake runner. */
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { MtuController, type MtuInput } from '../../src/agent/mtu-controller.js';
import type { RunResult } from '../../src/agent/mtu-dataplane.js';
import { EncrId } from '../../src/ike/constants.js';

const INPUT: MtuInput = {
  tunnel: 'default/a-b',
  peer: '192.0.2.2',
  shape: { encryption: EncrId.AES_GCM_16, mode: 'tunnel', outerFamily: 4, udpEncapsulation: true },
  remoteSubnets: [{ cidr: '198.18.2.0/24', family: 4 }],
};

function runner(over: (cmd: string, args: string[]) => Partial<RunResult> | undefined) {
  const calls: string[] = [];
  const run = async (cmd: string, args: string[]): Promise<RunResult> => {
    calls.push([cmd, ...args].join(' '));
    return { code: 0, stdout: '', stderr: '', ...(over(cmd, args) ?? {}) };
  };
  return { calls, run };
}

const settings = { enabled: true, clampMss: true, routeMtu: true, backend: 'auto' as const };

describe('MtuController', () => {
  it('underlay MTU from the interface towards the peer; NAT-T counted; nftables and the route applied', async () => {
    const r = runner((cmd, args) => {
      if (cmd !== 'ip') return undefined;
      if (args.includes('get') && args.includes('192.0.2.2')) return { stdout: '[{"dst":"192.0.2.2","dev":"eth0"}]' };
      if (args.includes('link')) return { stdout: '[{"ifname":"eth0","mtu":1400}]' };
      if (args.includes('show')) return { stdout: '[]' };
      if (args.includes('get')) return { stdout: '[{"dst":"198.18.2.0","gateway":"192.0.2.2","dev":"eth0"}]' };
      return undefined;
    });
    const c = new MtuController({ settings, inputs: () => [INPUT], logger: pino({ level: 'silent' }), run: r.run });
    await c.reconcile();
    // 1400-20-8(UDP)-8-8-16 = 1340 (multiple of 4) - 2 = 1338; MSS 1298
    expect(c.view('default/a-b')).toEqual({
      underlayMtu: 1400,
      underlaySource: 'route',
      innerMtu: 1338,
      overhead: 62,
      mss: 1298,
      clamp: 'nftables',
      routeMtu: true,
      remoteSubnets: ['198.18.2.0/24'],
    });
    expect(r.calls).toContain('ip -4 route replace 198.18.2.0/24 via 192.0.2.2 dev eth0 proto 157 mtu lock 1338');
    await c.stop();
    expect(r.calls.at(-1)).toBe('ip -4 route del 198.18.2.0/24 proto 157');
  });

  it('no netfilter tool and an unusable MTU: typed errors in the view, no throw', async () => {
    const r = runner((cmd, args) =>
      cmd !== 'ip' ? { code: 127, stderr: 'ENOENT' } : args.includes('show') ? { stdout: '[]' } : undefined,
    );
    const c = new MtuController({
      settings: { ...settings, underlayMtu: 1300, routeMtu: false },
      inputs: () => [
        INPUT,
        { ...INPUT, tunnel: 'default/tiny', shape: { ...INPUT.shape, encryption: EncrId.AES_CCM_8 } },
      ],
      logger: pino({ level: 'silent' }),
      run: r.run,
    });
    await c.reconcile();
    expect(c.view('default/a-b')).toMatchObject({
      underlaySource: 'setting',
      innerMtu: 1238,
      clamp: 'failed',
      error: { code: 'ERR_MSS_CLAMP_UNAVAILABLE' },
    });
    expect(c.view('default/tiny')).toMatchObject({ innerMtu: 0, error: { code: 'ERR_MTU_INPUT' } });
  });
});
