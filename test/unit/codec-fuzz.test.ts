/**
 * Property tests (fast-check): random valid messages round-trip; a seeded run of 50,000 random and mutated inputs
 * lets nothing but DecodeError escape the decoder, decryption, reassembly and rule checks.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeMessage, decryptMessage, encodeMessage, type PlainPayload } from '../../src/ike/codec/index.js';
import { PayloadType } from '../../src/ike/constants.js';
import { plainMessageArb, plainPayloadArb, protectedMessageArb } from '../fuzz/arbitraries.js';
import { GCM_CIPHER, NULL_CIPHER, runOne } from '../fuzz/harness.js';
import { buildCorpus, makeInput } from '../fuzz/mutate.js';
import { toHex } from './codec-helpers.js';

describe('round trips of random valid messages', () => {
  it('generates every plain payload type', () => {
    const seen = new Set(fc.sample(plainPayloadArb, { seed: 1, numRuns: 2000 }).map((p: PlainPayload) => p.type));
    const all = [33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 47, 48];
    expect([...seen].sort((a, b) => a - b)).toEqual(all);
  });

  it('cleartext: decode(encode(m)) = m and encode(decode(b)) = b', () => {
    fc.assert(
      fc.property(plainMessageArb, (m) => {
        const bytes = encodeMessage(m);
        const back = decodeMessage(bytes);
        expect(back).toEqual(m);
        expect(toHex(encodeMessage(back))).toBe(toHex(bytes));
      }),
      { seed: 7, numRuns: 1500 },
    );
  });

  it('protected: decryptMessage(decode(encode(m))) = m with the null test cipher and AES-GCM', () => {
    let counter = 0;
    const iv = (n: number) => {
      const out = new Uint8Array(n);
      new DataView(out.buffer).setUint32(0, ++counter);
      return out;
    };
    fc.assert(
      fc.property(protectedMessageArb, fc.boolean(), (m, gcm) => {
        const cipher = gcm ? GCM_CIPHER : NULL_CIPHER;
        const bytes = encodeMessage(m, { cipher, iv });
        const decoded = decodeMessage(bytes);
        expect(decoded.payloads[decoded.payloads.length - 1]!.type).toBe(PayloadType.SK);
        expect(toHex(encodeMessage(decoded))).toBe(toHex(bytes));
        const clear = decryptMessage(decoded, cipher);
        expect(clear).toEqual(m);
      }),
      { seed: 8, numRuns: 800 },
    );
  });
});

describe('robustness', () => {
  it('50,000 seeded random and mutated inputs raise only DecodeError', () => {
    const seed = 20261123;
    const corpus = buildCorpus(seed, 150);
    const codes = new Map<string, number>();
    let ok = 0;
    for (let i = 0; i < 50_000; i++) {
      const input = makeInput(corpus, seed, i);
      const out = runOne(input);
      if (out.kind === 'untyped') {
        throw new Error(`input ${i} (${toHex(input)}) raised ${String(out.error)}`, { cause: out.error });
      }
      if (out.kind === 'ok') ok++;
      else codes.set(out.code, (codes.get(out.code) ?? 0) + 1);
    }
    // the mutations reach deep: many inputs still decode, and failures spread over many error codes
    expect(ok).toBeGreaterThan(2_000);
    for (const code of ['DECODE_TRUNCATED', 'DECODE_BAD_LENGTH', 'DECODE_BAD_VALUE', 'DECODE_TOO_LARGE']) {
      expect(codes.get(code) ?? 0, code).toBeGreaterThan(100);
    }
    expect(codes.get('DECODE_UNSUPPORTED_CRITICAL_PAYLOAD') ?? 0).toBeGreaterThan(0);
    expect(codes.get('DECODE_TOO_MANY') ?? 0).toBeGreaterThan(0);
  }, 60_000);
});
