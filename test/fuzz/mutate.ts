/**
 * Deterministic input generation for the codec fuzzers: a seed corpus of valid encodings (real messages, RFC
 * vectors, random valid messages from the arbitraries, cleartext, SK-protected and SKF-fragmented), and mutations
 * of them (bit flips, interesting bytes, truncation, length-field corruption, payload splicing, insertion/deletion,
 * random bodies behind a plausible header). Input i of a run depends only on (seed, i), so any input can be
 * regenerated from its index.
 */
import fc from 'fast-check';
import { encodeMessage, fragmentMessage, type IkeMessage } from '../../src/ike/codec/index.js';
import {
  RFC7634_MESSAGE,
  WIRESHARK_INFORMATIONAL_REQUEST,
  WIRESHARK_INFORMATIONAL_RESPONSE,
  WIRESHARK_SA_INIT_REQUEST,
  WIRESHARK_SA_INIT_RESPONSE,
} from '../vectors/codec-messages.js';
import { plainMessageArb, protectedMessageArb } from './arbitraries.js';
import { GCM_CIPHER, NULL_CIPHER } from './harness.js';

/** mulberry32: a small, fast, seedable PRNG. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface SeedEntry {
  bytes: Uint8Array;
  /** Offsets of the generic payload headers in the cleartext chain (and of the inner chain for the null cipher). */
  payloadOffsets: number[];
}

function payloadOffsets(b: Uint8Array): number[] {
  const out: number[] = [];
  let off = 28;
  let next = b[16] ?? 0;
  while (next !== 0 && off + 4 <= b.length && out.length < 64) {
    out.push(off);
    const len = (b[off + 2]! << 8) | b[off + 3]!;
    if (next === 46 || next === 53) {
      // null-cipher protected: the inner chain starts after the SK header (+4 for SKF) and the 4-byte IV
      let inner = off + 4 + (next === 53 ? 4 : 0) + 4;
      let innerNext = b[off]!;
      while (innerNext !== 0 && inner + 4 <= b.length && out.length < 64) {
        out.push(inner);
        innerNext = b[inner]!;
        inner += Math.max(4, (b[inner + 2]! << 8) | b[inner + 3]!);
      }
      break;
    }
    if (len < 4) break;
    next = b[off]!;
    off += len;
  }
  return out;
}

/** Build the seed corpus deterministically from `seed`. */
export function buildCorpus(seed: number, randomMessages = 200): SeedEntry[] {
  const list: Uint8Array[] = [
    WIRESHARK_SA_INIT_REQUEST,
    WIRESHARK_SA_INIT_RESPONSE,
    WIRESHARK_INFORMATIONAL_REQUEST,
    WIRESHARK_INFORMATIONAL_RESPONSE,
    RFC7634_MESSAGE,
  ];
  const rnd = prng(seed ^ 0x5eed);
  const iv = (n: number) => Uint8Array.from({ length: n }, () => Math.floor(rnd() * 256));
  const plain = fc.sample(plainMessageArb, { seed, numRuns: randomMessages });
  for (const m of plain) list.push(encodeMessage(m));
  const prot = fc.sample(protectedMessageArb, { seed: seed + 1, numRuns: randomMessages });
  prot.forEach((m: IkeMessage, i) => {
    list.push(encodeMessage(m, { cipher: i % 4 === 0 ? GCM_CIPHER : NULL_CIPHER, iv }));
    if (i % 5 === 0 && m.encrypted && m.encrypted.length > 0) {
      for (const f of fragmentMessage({ ...m, payloads: [] }, { cipher: NULL_CIPHER, iv, maxSize: 120 })) list.push(f);
    }
  });
  return list.filter((b) => b.length <= 65535).map((bytes) => ({ bytes, payloadOffsets: payloadOffsets(bytes) }));
}

const INTERESTING_8 = [0, 1, 0x7f, 0x80, 0xff, 2, 3, 4, 8, 16, 33, 46, 53];
const INTERESTING_16 = [0, 1, 3, 4, 5, 7, 8, 0x7fff, 0x8000, 0xffff, 0xfffe, 28, 255, 256];

function setU16(b: Uint8Array, off: number, v: number): void {
  if (off + 1 < b.length) {
    b[off] = v >>> 8;
    b[off + 1] = v & 0xff;
  }
}

function fixLength(b: Uint8Array): void {
  if (b.length >= 28) {
    const n = b.length;
    b[24] = n >>> 24;
    b[25] = (n >>> 16) & 0xff;
    b[26] = (n >>> 8) & 0xff;
    b[27] = n & 0xff;
  }
}

/** Input number `index` of a run with `seed`. */
export function makeInput(corpus: SeedEntry[], seed: number, index: number): Uint8Array {
  const rnd = prng((seed ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0);
  const int = (n: number) => Math.floor(rnd() * n);
  const pick = <T>(a: readonly T[]): T => a[int(a.length)]!;
  /** A position in b, mostly past the IKE header (header damage is cheap to find and ends decoding early). */
  const pos = (len: number) => (len > 28 && rnd() < 0.9 ? 28 + int(len - 28) : int(len));
  const entry = pick(corpus);
  const strategy = int(100);

  // 5%: random bytes, half of them behind a plausible header with a correct length field
  if (strategy < 5) {
    const b = Uint8Array.from({ length: int(200) }, () => int(256));
    if (b.length >= 28 && rnd() < 0.5) {
      b[16] = pick([33, 34, 35, 40, 41, 46, 53, int(256)]);
      b[17] = 0x20;
      fixLength(b);
    }
    return b;
  }
  // 4%: valid seed unchanged
  if (strategy < 9) return entry.bytes;
  // 1%: one payload repeated up to ~700 times (payload count cap, large messages)
  if (strategy < 10 && entry.payloadOffsets[0] === 28) {
    const type = entry.bytes[16]!;
    const len = (entry.bytes[30]! << 8) | entry.bytes[31]!;
    if (type !== 46 && type !== 53 && len >= 4 && 28 + len <= entry.bytes.length) {
      const copies = Math.min(1 + int(700), Math.floor((65535 - 28) / len));
      const out = new Uint8Array(28 + copies * len);
      out.set(entry.bytes.subarray(0, 28));
      for (let i = 0; i < copies; i++) {
        out.set(entry.bytes.subarray(28, 28 + len), 28 + i * len);
        out[28 + i * len] = i + 1 < copies ? type : 0;
      }
      fixLength(out);
      return out;
    }
  }

  let b: Uint8Array = entry.bytes.slice();
  const rounds = 1 + int(3);
  for (let r = 0; r < rounds; r++) {
    const m = int(9);
    if (m === 0) {
      // bit flips
      const flips = 1 + int(4);
      for (let i = 0; i < flips && b.length > 0; i++) b[pos(b.length)]! ^= 1 << int(8);
    } else if (m === 1) {
      // interesting byte
      if (b.length > 0) b[pos(b.length)] = pick(INTERESTING_8);
    } else if (m === 2) {
      // truncation
      b = b.slice(0, int(b.length + 1));
    } else if (m === 3) {
      // corrupt a payload length field, or one inside a payload (proposal/transform/attribute/selector)
      const offs = entry.payloadOffsets;
      const off = offs.length > 0 && rnd() < 0.7 ? pick(offs) + 2 : pos(Math.max(1, b.length - 1));
      const v = rnd() < 0.5 ? pick(INTERESTING_16) : ((b[off]! << 8) | b[off + 1]!) + int(9) - 4;
      setU16(b, off, v & 0xffff);
    } else if (m === 4) {
      // splice a payload of another seed in at a payload boundary
      const other = pick(corpus);
      if (other.payloadOffsets.length > 0 && entry.payloadOffsets.length > 0) {
        const so = pick(other.payloadOffsets);
        const len = Math.max(4, Math.min(other.bytes.length - so, (other.bytes[so + 2]! << 8) | other.bytes[so + 3]!));
        const piece = other.bytes.subarray(so, so + len);
        const at = Math.min(pick(entry.payloadOffsets), b.length);
        const out = new Uint8Array(b.length + piece.length);
        out.set(b.subarray(0, at));
        out.set(piece, at);
        out.set(b.subarray(at), at + piece.length);
        b = out;
      }
    } else if (m === 5) {
      // insert random bytes
      const at = pos(b.length + 1);
      const ins = Uint8Array.from({ length: 1 + int(8) }, () => int(256));
      const out = new Uint8Array(b.length + ins.length);
      out.set(b.subarray(0, at));
      out.set(ins, at);
      out.set(b.subarray(at), at + ins.length);
      b = out;
    } else if (m === 6) {
      // delete a range
      const at = pos(b.length + 1);
      const n = 1 + int(8);
      b = Uint8Array.from([...b.subarray(0, at), ...b.subarray(at + n)]);
    } else if (m === 7) {
      // change a payload type / next payload field
      const offs = entry.payloadOffsets;
      const off = offs.length > 0 && rnd() < 0.7 ? pick(offs) : 16;
      if (off < b.length)
        b[off] = pick([0, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 53, int(256)]);
      if (rnd() < 0.3 && off + 1 < b.length) b[off + 1]! ^= 0x80;
    } else {
      // duplicate a range
      const at = pos(b.length + 1);
      const n = int(Math.min(64, b.length - at) + 1);
      const out = new Uint8Array(b.length + n);
      out.set(b.subarray(0, at + n));
      out.set(b.subarray(at, at + n), at + n);
      out.set(b.subarray(at + n), at + 2 * n);
      b = out;
    }
  }
  // most mutations are more interesting past the header's length check
  if (rnd() < 0.7) fixLength(b);
  return b;
}
