/**
 * The ESP-blocked decision (src/agent/esp-block.ts judge): suspect, ask the peer what it received, then declare
 * blocked, one-way traffic, or (a peer that does not report) unconfirmed.
 */
import { describe, expect, it } from 'vitest';
import { type EspBlockMode, type EspSample, judge, type Suspicion, type Verdict } from '../../src/agent/esp-block.js';

const P = (mode: EspBlockMode = 'auto') => ({ windowMs: 10_000, minPackets: 10, mode });
type Peer = EspSample['peer'];
const s = (at: number, packetsIn: number, packetsOut: number, lastIkeInbound = 0, peer?: Peer): EspSample => ({
  at,
  packetsIn: BigInt(packetsIn),
  packetsOut: BigInt(packetsOut),
  lastIkeInbound,
  peer,
});
const answer = (at: number, packets?: number): Peer =>
  packets === undefined ? { at } : { at, packets: BigInt(packets) };

function run(samples: EspSample[], mode: EspBlockMode = 'auto'): { actions: string[]; last: Verdict } {
  let sus: Suspicion | undefined;
  let last: Verdict = { action: 'none' };
  const actions = samples.map((x) => {
    last = judge(sus, x, P(mode));
    sus = last.suspicion;
    return last.action;
  });
  return { actions, last };
}

describe('judge', () => {
  it('out rising, nothing in, the peer confirms it received nothing: blocked', () => {
    const r = run([s(0, 0, 0), s(5000, 0, 20), s(10_000, 0, 40), s(12_000, 0, 50, 11_000, answer(11_000, 0))]);
    expect(r.actions).toEqual(['none', 'none', 'probe', 'blocked']);
    expect(r.last.action === 'blocked' && r.last.message).toBe(
      '50 ESP packets sent in 12 s and none received, and the peer confirms over IKE that none reached it: ESP (IP protocol 50) is blocked on the path; moving to UDP encapsulation (port 4500)',
    );
  });

  it('the peer received our packets: one-way traffic, stays on ESP, next check after a doubled window', () => {
    const r = run([s(0, 0, 0), s(10_000, 0, 40), s(12_000, 0, 50, 11_000, answer(11_000, 48))]);
    expect(r.actions).toEqual(['none', 'probe', 'one-way']);
    expect(r.last.action === 'one-way' && r.last.message).toMatch(/the peer reports 48 received: ESP passes/);
    expect(r.last.suspicion).toEqual({ since: 12_000, in0: 0n, out0: 50n, peer0: 48n, hold: 2 });
    // 10 s later is not enough any more (window doubled); 20 s is.
    const v1 = judge(r.last.suspicion, s(22_000, 0, 100, 11_000), P());
    expect(v1.action).toBe('none');
    const v2 = judge(v1.suspicion, s(32_000, 0, 150, 11_000), P());
    expect(v2.action).toBe('probe');
  });

  it('the peer received something once, then nothing more while we sent: blocked (ESP stopped passing)', () => {
    const sus: Suspicion = { since: 12_000, in0: 0n, out0: 50n, peer0: 48n, hold: 2, probeAt: 32_000 };
    const v = judge(sus, s(34_000, 0, 160, 33_000, answer(33_000, 48)), P());
    expect(v.action).toBe('blocked');
    expect(v.action === 'blocked' && v.message).toMatch(/none reached it since its last answer/);
    // ... and it received more: still one-way.
    expect(judge(sus, s(34_000, 0, 160, 33_000, answer(33_000, 150)), P()).action).toBe('one-way');
  });

  it('a peer that answers without a count: auto only warns; heuristic switches', () => {
    const samples = [s(0, 0, 0), s(10_000, 0, 40), s(12_000, 0, 50, 11_000, answer(11_000))];
    const auto = run(samples, 'auto');
    expect(auto.actions).toEqual(['none', 'probe', 'unconfirmed']);
    expect(auto.last.action === 'unconfirmed' && auto.last.message).toMatch(
      /does not report what it received .* staying on plain ESP\. If ESP is blocked, set natt: force/,
    );
    expect(auto.last.suspicion?.hold).toBe(2);
    const heur = run(samples, 'heuristic');
    expect(heur.actions).toEqual(['none', 'probe', 'blocked']);
    expect(heur.last.action === 'blocked' && heur.last.message).toMatch(/probably blocked/);
    // heuristic does not consult the count: a one-way flow to an ipsec-mesh peer is switched too.
    const counted = [s(0, 0, 0), s(10_000, 0, 40), s(12_000, 0, 50, 11_000, answer(11_000, 48))];
    expect(run(counted, 'heuristic').actions).toEqual(['none', 'probe', 'blocked']);
  });

  it('an answer older than the probe is not taken for this probe', () => {
    const r = run([s(0, 0, 0), s(10_000, 0, 40), s(12_000, 0, 50, 11_000, answer(9000, 0))]);
    expect(r.actions).toEqual(['none', 'probe', 'unconfirmed']);
  });

  it('the peer does not answer: not blocked (the peer may be down; DPD decides)', () => {
    expect(run([s(0, 0, 0), s(10_000, 0, 40), s(12_000, 0, 50, 5000), s(14_000, 0, 60, 9000)]).actions).toEqual([
      'none',
      'probe',
      'none',
      'none',
    ]);
  });

  it('any inbound ESP clears the suspicion', () => {
    expect(run([s(0, 0, 0), s(10_000, 0, 40), s(11_000, 1, 50, 10_500), s(21_000, 1, 90, 20_000)]).actions).toEqual([
      'none',
      'probe',
      'none',
      'none',
    ]);
  });

  it('too few packets or too short a window: nothing', () => {
    expect(run([s(0, 0, 0), s(10_000, 0, 9), s(20_000, 0, 9)]).actions).toEqual(['none', 'none', 'none']);
    expect(run([s(0, 0, 0), s(9_999, 0, 500)]).actions).toEqual(['none', 'none']);
  });

  it('the hold stops doubling at 8 windows', () => {
    let sus: Suspicion = { since: 0, in0: 0n, out0: 0n, hold: 8, probeAt: 80_000 };
    const v = judge(sus, s(90_000, 0, 500, 85_000, answer(85_000, 400)), P());
    expect(v.suspicion?.hold).toBe(8);
    sus = v.suspicion!;
    expect(judge(sus, s(90_000 + 79_999, 0, 900, 85_000), P()).action).toBe('none');
  });
});
