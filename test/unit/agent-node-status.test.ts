/** The agent's tunnel status as it goes into the IPsecNodeConfig (src/agent/kube-source.ts). */
import { describe, expect, it } from 'vitest';
import { nodeTunnelStatus } from '../../src/agent/kube-source.js';
import type { ChildSaView, TunnelView } from '../../src/agent/status.js';

const child: ChildSaView = {
  name: 't',
  state: 'installed',
  spiIn: 'c0000001',
  spiOut: 'c0000002',
  algorithms: 'aes128gcm16',
  localTs: ['198.18.1.0/24'],
  remoteTs: ['198.18.2.0/24'],
  mode: 'tunnel',
  encapsulation: false,
};

function view(state: TunnelView['ikeSA']['state'], children: ChildSaView[]): TunnelView {
  return {
    namespace: 'mesh',
    name: 'corp-b',
    ikeSA: {
      state,
      spiI: '0123456789abcdef',
      spiR: 'fedcba9876543210',
      initiator: true,
      algorithms: 'aes128gcm16-prfsha256-x25519',
      local: '192.0.2.10',
      remote: '192.0.2.21',
      natDetected: false,
      lastError: { code: 'NO_PROPOSAL_CHOSEN', message: 'earlier failure', at: '2026-11-23T23:00:00.000Z' },
    },
    childSAs: children,
  } as unknown as TunnelView;
}

describe('node status of a tunnel', () => {
  it('reports the last negotiation error while the tunnel is not up', () => {
    expect(nodeTunnelStatus(view('Connecting', []), 1).error).toEqual({
      reason: 'NoProposalChosen',
      message: 'earlier failure',
    });
  });

  it('does not hold a tunnel that is up again at an earlier error', () => {
    expect(nodeTunnelStatus(view('Established', [child]), 1).error).toBeUndefined();
    expect(nodeTunnelStatus(view('Established', []), 1).error?.reason).toBe('NoProposalChosen');
  });
});
