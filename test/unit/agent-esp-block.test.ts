/** The ESP-blocked decision (src/agent/esp-block.ts judge): suspect, probe the peer, then declare. */
import { describe, expect, it } from 'vitest';
import { type EspSample, judge, type Suspicion } from '../../src/agent/esp-block.js';

const P = { windowMs: 10_000, minPackets: 10 };
const s = (at: number, packetsIn: number, packetsOut: number, lastIkeInbound = 0): EspSample => ({
  at,
  packetsIn: BigInt(packetsIn),
  packetsOut: BigInt(packetsOut),
  lastIkeInbound,
});

function run(samples: EspSample[]): string[] {
  let sus: Suspicion | undefined;
  return samples.map((x) => {
    const v = judge(sus, x, P);
    sus = v.suspicion;
    return v.action;
  });
}

describe('judge', () => {
  it('out rising, nothing in, peer answers the probe: blocked', () => {
    expect(run([s(0, 0, 0), s(5000, 0, 20), s(10_000, 0, 40), s(12_000, 0, 50, 11_000)])).toEqual([
      'none',
      'none',
      'probe',
      'blocked',
    ]);
    const v = judge({ since: 0, in0: 0n, out0: 0n, probeAt: 10_000 }, s(12_000, 0, 50, 11_000), P);
    expect(v.action === 'blocked' && v.message).toBe(
      '50 ESP packets sent in 12 s and none received, while the peer answers IKE: ESP (IP protocol 50) is blocked on the path; moving to UDP encapsulation (port 4500)',
    );
  });

  it('the peer does not answer the probe: not blocked (the peer may be down; DPD decides)', () => {
    expect(run([s(0, 0, 0), s(10_000, 0, 40), s(12_000, 0, 50, 5000), s(14_000, 0, 60, 9000)])).toEqual([
      'none',
      'probe',
      'none',
      'none',
    ]);
  });

  it('any inbound ESP clears the suspicion', () => {
    expect(run([s(0, 0, 0), s(10_000, 0, 40), s(11_000, 1, 50, 10_500), s(21_000, 1, 90, 20_000)])).toEqual([
      'none',
      'probe',
      'none',
      'none',
    ]);
  });

  it('too few packets or too short a window: nothing', () => {
    expect(run([s(0, 0, 0), s(10_000, 0, 9), s(20_000, 0, 9)])).toEqual(['none', 'none', 'none']);
    expect(run([s(0, 0, 0), s(9_999, 0, 500)])).toEqual(['none', 'none']);
  });
});
