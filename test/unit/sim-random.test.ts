import { describe, expect, it } from 'vitest';
import type { Random } from '../../src/ike/crypto/provider.js';
import { SeededRandom, seededBytes } from '../sim/random.js';

describe('SeededRandom', () => {
  it('implements xoshiro128** (reference outputs from state {1, 2, 3, 4})', () => {
    // Hand-computed from the reference C: result = rotl(s1 * 5, 7) * 9, then the state update.
    const r = SeededRandom.fromState([1, 2, 3, 4]);
    expect([r.nextU32(), r.nextU32(), r.nextU32()]).toEqual([11520, 0, 5927040]);
    expect(() => SeededRandom.fromState([0, 0, 0, 0])).toThrow(RangeError);
  });

  it('same seed, same sequence; different seed, different sequence', () => {
    const a = new SeededRandom(42);
    const b = new SeededRandom('42');
    const c = new SeededRandom(43);
    const seqA = Array.from({ length: 8 }, () => a.nextU32());
    expect(Array.from({ length: 8 }, () => b.nextU32())).toEqual(seqA);
    expect(Array.from({ length: 8 }, () => c.nextU32())).not.toEqual(seqA);
    expect(new SeededRandom(42n).seed).toBe('42');
  });

  it('bytes is the Random port, deterministic, and detachable', () => {
    const rng = new SeededRandom('bytes');
    const random: Random = rng.bytes;
    const x = random(37);
    expect(x).toBeInstanceOf(Uint8Array);
    expect(x.length).toBe(37);
    expect(random(0).length).toBe(0);
    expect(seededBytes('bytes')(37)).toEqual(x);
    expect(random(37)).not.toEqual(x);
    expect(() => random(-1)).toThrow(RangeError);
    expect(() => random(1.5)).toThrow(RangeError);
  });

  it('bytes of a length that is not a multiple of 4 are a prefix of the same draw', () => {
    expect(seededBytes('p')(6)).toEqual(seededBytes('p')(8).subarray(0, 6));
  });

  it('fork streams depend only on the seed path, not on what the parent consumed', () => {
    const a = new SeededRandom('root');
    const b = new SeededRandom('root');
    for (let i = 0; i < 1000; i++) b.nextU32();
    const fa = a.fork('network');
    const fb = b.fork('network');
    expect(fa.seed).toBe('root/network');
    expect(Array.from({ length: 4 }, () => fa.nextU32())).toEqual(Array.from({ length: 4 }, () => fb.nextU32()));
    const other = a.fork('kernel');
    const net = a.fork('network');
    expect(Array.from({ length: 4 }, () => other.nextU32())).not.toEqual(
      Array.from({ length: 4 }, () => net.nextU32()),
    );
    // Nested forks compose into a path.
    expect(a.fork('x').fork('y').seed).toBe('root/x/y');
    expect(a.fork('x').fork('y').nextU32()).not.toBe(a.fork('x/z').nextU32());
  });

  it('int(n) is in range and roughly uniform', () => {
    const rng = new SeededRandom('int');
    const counts = new Array<number>(10).fill(0);
    const n = 100_000;
    let bad = 0;
    for (let i = 0; i < n; i++) {
      const v = rng.int(10);
      if (!(Number.isInteger(v) && v >= 0 && v < 10)) bad++;
      else counts[v]!++;
    }
    expect(bad).toBe(0);
    // Chi-square with 9 degrees of freedom; 27.9 is the 0.001 critical value.
    const expected = n / 10;
    const chi2 = counts.reduce((s, c) => s + (c - expected) ** 2 / expected, 0);
    expect(chi2).toBeLessThan(27.9);
  });

  it('int handles 1, 2^32 and values above 2^32', () => {
    const rng = new SeededRandom('edges');
    expect(rng.int(1)).toBe(0);
    for (let i = 0; i < 100; i++) {
      const a = rng.int(2 ** 32);
      expect(a >= 0 && a < 2 ** 32).toBe(true);
      const b = rng.int(2 ** 40 + 7);
      expect(Number.isInteger(b) && b >= 0 && b < 2 ** 40 + 7).toBe(true);
    }
    let high = false;
    for (let i = 0; i < 100; i++) if (rng.int(2 ** 40) > 2 ** 33) high = true;
    expect(high).toBe(true);
    expect(() => rng.int(0)).toThrow(RangeError);
    expect(() => rng.int(2.5)).toThrow(RangeError);
  });

  it('range is inclusive', () => {
    const rng = new SeededRandom('range');
    const seen = new Set<number>();
    for (let i = 0; i < 1000; i++) seen.add(rng.range(3, 6));
    expect([...seen].sort()).toEqual([3, 4, 5, 6]);
    expect(() => rng.range(5, 4)).toThrow(RangeError);
  });

  it('float is in [0, 1) with mean near 1/2', () => {
    const rng = new SeededRandom('float');
    let sum = 0;
    const n = 100_000;
    let bad = 0;
    for (let i = 0; i < n; i++) {
      const f = rng.float();
      if (!(f >= 0 && f < 1)) bad++;
      sum += f;
    }
    expect(bad).toBe(0);
    // sd of the mean = sqrt(1/12 / n) ~ 0.0009: 5 sd
    expect(Math.abs(sum / n - 0.5)).toBeLessThan(0.0046);
  });

  it('chance(p) hits about p of the time; 0 never, 1 always', () => {
    const rng = new SeededRandom('chance');
    let hits = 0;
    const n = 100_000;
    for (let i = 0; i < n; i++) if (rng.chance(0.1)) hits++;
    // sd = sqrt(n p (1-p)) ~ 95: 5 sd
    expect(Math.abs(hits - 10_000)).toBeLessThan(475);
    for (let i = 0; i < 1000; i++) {
      expect(rng.chance(0)).toBe(false);
      expect(rng.chance(1)).toBe(true);
    }
  });

  it('pick and shuffle', () => {
    const rng = new SeededRandom('pick');
    const items = ['a', 'b', 'c', 'd', 'e'];
    const picked = new Set<string>();
    for (let i = 0; i < 200; i++) picked.add(rng.pick(items));
    expect(picked.size).toBe(5);
    const s = rng.shuffle(items);
    expect([...s].sort()).toEqual(items);
    expect(items).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(() => rng.pick([])).toThrow(RangeError);
  });

  it('bits are balanced (each of 32 output bits set about half the time)', () => {
    const rng = new SeededRandom('bits');
    const ones = new Array<number>(32).fill(0);
    const n = 20_000;
    for (let i = 0; i < n; i++) {
      const w = rng.nextU32();
      for (let b = 0; b < 32; b++) if ((w >>> b) & 1) ones[b]!++;
    }
    // sd = sqrt(n / 4) ~ 71: 6 sd
    for (const c of ones) expect(Math.abs(c - n / 2)).toBeLessThan(425);
  });
});
