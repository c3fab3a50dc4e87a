/** The operator turns the agent's proof of encryption into the tunnel's `Encrypted` condition (src/operator/plan.ts). */
import { describe, expect, it } from 'vitest';
import type { NodeTunnelStatus } from '../../src/api/nodeconfig.js';
import { tunnelStatus } from '../../src/operator/plan.js';

const agent = (encrypted?: NodeTunnelStatus['encrypted']): NodeTunnelStatus => ({
  namespace: 'ns',
  name: 't',
  generation: 2,
  ikeSA: { state: 'Established', natDetected: false },
  childSAs: [
    {
      state: 'Installed',
      spis: { in: 'c0000001', out: 'c0000002' },
      bytesIn: 1,
      bytesOut: 2,
      packetsIn: 1,
      packetsOut: 1,
    },
  ],
  ...(encrypted ? { encrypted } : {}),
});
const base = {
  generation: 2,
  configured: true,
  now: '2026-01-01T00:00:00Z',
  acceptance: { ok: true } as const,
  election: { node: 'n1' },
};
const view = (status: 'True' | 'False', reason: string, message: string) => ({
  status,
  reason,
  message,
  lastTransitionTime: '2026-01-01T00:00:00Z',
  checkedAt: '2026-01-01T00:00:00Z',
  restored: status === 'False' ? 1 : 0,
});

describe('Encrypted condition', () => {
  it('True from the agent: Encrypted=True, not degraded', () => {
    const st = tunnelStatus({ ...base, agent: agent(view('True', 'PoliciesInPlace', '3 policies')) });
    expect(st.conditions?.find((c) => c.type === 'Encrypted')).toMatchObject({
      status: 'True',
      reason: 'PoliciesInPlace',
    });
    expect(st.conditions?.find((c) => c.type === 'Degraded')?.status).toBe('False');
  });

  it('False from the agent: Encrypted=False with its reason, and Degraded=True', () => {
    const st = tunnelStatus({
      ...base,
      agent: agent(view('False', 'PolicyMissing', 'no out policy; restored 1 of 1')),
    });
    expect(st.conditions?.find((c) => c.type === 'Encrypted')).toMatchObject({
      status: 'False',
      reason: 'PolicyMissing',
      message: 'no out policy; restored 1 of 1',
    });
    expect(st.conditions?.find((c) => c.type === 'Degraded')).toMatchObject({
      status: 'True',
      reason: 'PolicyMissing',
    });
  });

  it('an agent that does not report it: no Encrypted condition', () => {
    const st = tunnelStatus({ ...base, agent: agent() });
    expect(st.conditions?.some((c) => c.type === 'Encrypted')).toBe(false);
  });

  it('ESP found blocked by the agent: Ready stays True, Degraded=True EspBlocked says the tunnel runs in UDP 4500', () => {
    const st = tunnelStatus({
      ...base,
      agent: {
        ...agent(view('True', 'PoliciesInPlace', '3 policies')),
        espBlocked: { since: '2026-01-01T00:00:05Z', message: 'the peer confirms over IKE that none reached it' },
      },
    });
    expect(st.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');
    expect(st.conditions?.find((c) => c.type === 'Degraded')).toMatchObject({
      status: 'True',
      reason: 'EspBlocked',
      message:
        'ESP (IP protocol 50) is blocked on the path; UDP encapsulation (port 4500) since 2026-01-01T00:00:05Z: the peer confirms over IKE that none reached it',
    });
  });
});
