/**
 * Seeded, deterministic randomness for simulations: xoshiro128** (Blackman & Vigna) over four 32-bit words, seeded
 * by hashing a seed string through a splitmix32-style finaliser. Not cryptographic; never use outside tests.
 *
 * Streams are named: `fork(label)` derives a child from the *seed path* (root seed + labels), not from the parent's
 * current state, so a child's sequence does not depend on how much its parent (or any sibling) has consumed.
 * Adding a new consumer to a simulation therefore leaves every other stream, and so every other trace, unchanged.
 * Forking the same label twice gives two copies of the same stream (on purpose: streams are names).
 */
import type { Random } from '../../src/ike/crypto/provider.js';

/** splitmix32-style 32-bit finaliser (bijective). */
function mix32(x: number): number {
  x = (x + 0x9e3779b9) | 0;
  x = Math.imul(x ^ (x >>> 16), 0x21f0aaad);
  x = Math.imul(x ^ (x >>> 15), 0x735a2d97);
  return (x ^ (x >>> 15)) >>> 0;
}

/** Hash a string to four 32-bit words (four independently seeded lanes over its UTF-8 bytes). */
function seedWords(path: string): [number, number, number, number] {
  const bytes = new TextEncoder().encode(path);
  const lanes = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a];
  for (let lane = 0; lane < 4; lane++) {
    let h = lanes[lane]!;
    for (const b of bytes) h = mix32(h ^ b);
    h = mix32(h ^ bytes.length);
    lanes[lane] = h;
  }
  // xoshiro must not start from the all-zero state.
  if ((lanes[0]! | lanes[1]! | lanes[2]! | lanes[3]!) === 0) lanes[0] = 1;
  return lanes as [number, number, number, number];
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

const TWO_POW_32 = 0x1_0000_0000;

export class SeededRandom {
  /** The seed path this stream was derived from, e.g. "42/network/loss". Print it with a failing trace. */
  readonly seed: string;
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  /**
   * The engine's `Random` port bound to this stream: `(length) => Uint8Array`. Pass `rng.bytes` (it is an arrow
   * property, so detaching it from the object is fine).
   */
  readonly bytes: Random = (length: number): Uint8Array => {
    if (!Number.isInteger(length) || length < 0) throw new RangeError(`SeededRandom.bytes: bad length ${length}`);
    const out = new Uint8Array(length);
    let i = 0;
    for (; i + 4 <= length; i += 4) {
      const w = this.nextU32();
      out[i] = w & 0xff;
      out[i + 1] = (w >>> 8) & 0xff;
      out[i + 2] = (w >>> 16) & 0xff;
      out[i + 3] = w >>> 24;
    }
    if (i < length) {
      let w = this.nextU32();
      for (; i < length; i++, w >>>= 8) out[i] = w & 0xff;
    }
    return out;
  };

  constructor(seed: number | bigint | string) {
    this.seed = String(seed);
    [this.s0, this.s1, this.s2, this.s3] = seedWords(this.seed);
  }

  /** A stream starting from raw xoshiro128** state words (for known-answer tests of the generator itself). */
  static fromState(words: readonly [number, number, number, number], seed = 'raw-state'): SeededRandom {
    if ((words[0] | words[1] | words[2] | words[3]) === 0) throw new RangeError('xoshiro state must not be all zero');
    const r = new SeededRandom(seed);
    [r.s0, r.s1, r.s2, r.s3] = [words[0] | 0, words[1] | 0, words[2] | 0, words[3] | 0];
    return r;
  }

  /** An independent stream named `label`, a pure function of (this stream's seed path, label). */
  fork(label: string): SeededRandom {
    return new SeededRandom(`${this.seed}/${label}`);
  }

  /** Next raw 32-bit output, 0 <= x < 2^32 (xoshiro128**). */
  nextU32(): number {
    const s0 = this.s0;
    const s1 = this.s1;
    const s2 = this.s2;
    const s3 = this.s3;
    const result = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
    const t = s1 << 9;
    const n2 = s2 ^ s0;
    const n3 = s3 ^ s1;
    this.s1 = s1 ^ n2;
    this.s0 = s0 ^ n3;
    this.s2 = n2 ^ t;
    this.s3 = rotl(n3, 11);
    return result;
  }

  /** Uniform float in [0, 1) with 53 random bits. */
  float(): number {
    const hi = this.nextU32() >>> 5; // 27 bits
    const lo = this.nextU32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** Uniform integer in [0, n), unbiased (rejection sampling). 1 <= n <= 2^53. */
  int(n: number): number {
    if (!Number.isInteger(n) || n < 1 || n > Number.MAX_SAFE_INTEGER + 1) {
      throw new RangeError(`SeededRandom.int: n must be an integer in [1, 2^53], got ${n}`);
    }
    if (n <= TWO_POW_32) {
      // Accept x below the largest multiple of n that fits in 2^32.
      const limit = TWO_POW_32 - (TWO_POW_32 % n);
      for (;;) {
        const x = this.nextU32();
        if (x < limit) return x % n;
      }
    }
    const limit = 9007199254740992 - (9007199254740992 % n);
    for (;;) {
      const x = (this.nextU32() >>> 11) * TWO_POW_32 + this.nextU32(); // 53 bits
      if (x < limit) return x % n;
    }
  }

  /** Uniform integer in [min, max] (both inclusive). */
  range(min: number, max: number): number {
    if (!Number.isInteger(min) || !Number.isInteger(max) || max < min) {
      throw new RangeError(`SeededRandom.range: bad bounds [${min}, ${max}]`);
    }
    return min + this.int(max - min + 1);
  }

  /** True with probability p (p <= 0: never, p >= 1: always). Always consumes one float. */
  chance(p: number): boolean {
    const u = this.float();
    return u < p;
  }

  /** A uniformly chosen element of a non-empty array. */
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError('SeededRandom.pick: empty array');
    return items[this.int(items.length)]!;
  }

  /** Fisher-Yates shuffle of a copy. */
  shuffle<T>(items: readonly T[]): T[] {
    const out = items.slice();
    for (let i = out.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = out[i]!;
      out[i] = out[j]!;
      out[j] = tmp;
    }
    return out;
  }
}

/** Shorthand: a seeded `Random` port function for the engine. */
export function seededBytes(seed: number | bigint | string): Random {
  return new SeededRandom(seed).bytes;
}
