import { describe, expect, it } from 'vitest';
import type { TunnelView } from '../../src/agent/status.js';
import { buildReport, type DiagnoseInputs, formatReport, type SideConfig } from '../../src/cli/diagnose-report.js';

const now = new Date('2026-01-01T00:00:00Z');
const A: SideConfig = {
  key: 'default/to-b',
  localAddress: '192.0.2.1',
  remoteAddress: '203.0.113.2',
  localSubnets: ['198.18.1.0/24'],
  remoteSubnets: ['198.18.2.0/24'],
  localId: 'site-a.example',
  remoteId: 'site-b.example',
  ikeProposals: ['aes128gcm16-prfsha256-x25519'],
  espProposals: ['aes128gcm16'],
  auth: 'psk',
  pskDigest: 'd1',
};
const B: SideConfig = {
  ...A,
  key: 'default/to-a',
  localAddress: '203.0.113.2',
  remoteAddress: '192.0.2.1',
  localSubnets: ['198.18.2.0/24'],
  remoteSubnets: ['198.18.1.0/24'],
  localId: 'site-b.example',
  remoteId: 'site-a.example',
};
const live = (o: Partial<TunnelView['childSAs'][number]> = {}): TunnelView => ({
  namespace: 'default',
  name: 'to-b',
  local: '192.0.2.1:500',
  remote: '203.0.113.2:500',
  ikeSA: {
    state: 'Established',
    spiI: '0'.repeat(16),
    spiR: '1'.repeat(16),
    initiator: true,
    algorithms: 'aes128gcm16-prfsha256-x25519',
    local: '192.0.2.1:500',
    remote: '203.0.113.2:500',
    natDetected: false,
  },
  childSAs: [
    {
      name: 'to-b',
      state: 'installed',
      spiIn: 'c0000001',
      spiOut: 'c0000002',
      algorithms: 'aes128gcm16',
      localTs: ['198.18.1.0/24'],
      remoteTs: ['198.18.2.0/24'],
      mode: 'tunnel',
      encapsulation: false,
      ...o,
    },
  ],
});
const base = (o: Partial<DiagnoseInputs> = {}): DiagnoseInputs => ({
  tunnel: 'default/to-b',
  now,
  config: A,
  peer: B,
  live: live({ packetsIn: '100', packetsOut: '100', bytesIn: '1', bytesOut: '1' }),
  dataplane: 'netlink',
  probes: { port500: { answered: true, what: '36 bytes' }, port4500: { answered: true, what: '40 bytes' } },
  kernel: { crypto: new Set(['rfc4106(gcm(aes))', 'gcm(aes)']), esp: 'loaded' },
  route: { dev: 'eth0', mtu: 1500 },
  ...o,
});
const get = (r: ReturnType<typeof buildReport>, name: string) => r.checks.find((c) => c.name === name)!;

describe('diagnose report builder', () => {
  it('healthy inputs: every check ok or n/a', () => {
    const r = buildReport(base());
    expect(r.overall).toBe('ok');
    expect(r.checks.filter((c) => c.status !== 'ok').map((c) => c.name)).toEqual(['clock vs certificates']);
  });

  it('outbound ESP rising with nothing inbound is reported as probably blocked, and espBlocked as a warning', () => {
    const r = buildReport(base({ live: live({ packetsIn: '0', packetsOut: '50' }) }));
    expect(get(r, 'ESP passes').status).toBe('fail');
    expect(get(r, 'ESP passes').fix).toContain('IP protocol 50');
    const t = live({ packetsIn: '5', packetsOut: '5', encapsulation: true });
    t.espBlocked = { since: '2026-01-01T00:00:00Z', message: 'no inbound ESP for 10 s' };
    expect(get(buildReport(base({ live: t })), 'ESP passes').status).toBe('warn');
  });

  it('configuration disagreements: proposals, subnets, identities, PSK (never shown)', () => {
    const r = buildReport(
      base({
        peer: {
          ...B,
          ikeProposals: ['aes256-sha256-modp2048'],
          localSubnets: ['198.18.7.0/24'],
          localId: 'site-x.example',
          pskDigest: 'd2',
        },
      }),
    );
    const c = get(r, 'both sides agree');
    expect(c.status).toBe('fail');
    expect(c.detail).toContain('IKE proposals do not intersect');
    expect(c.fix).toContain('add `aes256-prfsha256-sha256-modp2048` to spec.ike.proposals');
    expect(c.detail).toContain('subnets do not mirror');
    expect(c.fix).toContain('set spec.remote.id to site-x.example');
    expect(c.detail).toContain('the pre-shared keys differ');
    expect(formatReport(r)).not.toMatch(/d1|d2/);
  });

  it('unreachable peer, missing ESP in the kernel, small MTU, expired certificate', () => {
    const r = buildReport(
      base({
        live: undefined,
        liveError: 'no agent is running',
        probes: {
          port500: { answered: false, why: 'nothing within 1000 ms' },
          port4500: { answered: false, why: 'x' },
        },
        kernel: { crypto: new Set(), esp: 'missing' },
        route: { dev: 'eth0', mtu: 1000 },
        config: {
          ...A,
          auth: 'certificate',
          certValidity: { notBefore: '2024-01-01T00:00:00Z', notAfter: '2025-01-01T00:00:00Z', subject: 'CN=a' },
        },
        peer: undefined,
      }),
    );
    expect(get(r, 'UDP 500/4500 to the peer').status).toBe('fail');
    expect(get(r, 'UDP 500/4500 to the peer').fix).toContain('spec.remote.address (203.0.113.2)');
    expect(get(r, 'kernel support for the ESP algorithms').status).toBe('fail');
    expect(get(r, 'path MTU to the peer').status).toBe('warn');
    expect(get(r, 'clock vs certificates').detail).toContain('our certificate expired by this clock');
    expect(get(r, 'both sides agree').status).toBe('n/a');
    expect(r.overall).toBe('fail');
  });
});
