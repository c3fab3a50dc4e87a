/**
 * What the fuzzers run on one input: decode, and when the message carries SK/SKF, decrypt with fixed test ciphers
 * (a transparent "null" cipher that lets mutated plaintext reach the inner parser, and real AES-GCM), check the
 * payload rules, and re-encode. Only DecodeError may escape these steps; the outcome is classified here.
 */

import {
  checkRules,
  decodeMessage,
  decryptFragment,
  decryptMessage,
  encodeMessage,
  FragmentReassembler,
  skfPayloadOf,
  skPayloadOf,
} from '../../src/ike/codec/index.js';
import { EncrId } from '../../src/ike/constants.js';
import { createNodeProvider, createSkCipher } from '../../src/ike/crypto/index.js';
import type { SkCipher } from '../../src/ike/crypto/provider.js';
import { CryptoError, DecodeError } from '../../src/ike/errors.js';

/**
 * A test SkCipher without secrecy or integrity: body = IV (4 bytes) || plaintext, so mutated plaintext reaches the
 * inner payload parser. Block size 4 exercises the padding and alignment checks. Never use outside tests.
 */
export function nullCipher(): SkCipher {
  return {
    ivLength: 4,
    icvLength: 0,
    blockSize: 4,
    seal(_aad, plaintext, iv) {
      const out = new Uint8Array(iv.length + plaintext.length);
      out.set(iv);
      out.set(plaintext, iv.length);
      return out;
    },
    open(_aad, body) {
      if (body.length < 4) throw new CryptoError('CRYPTO_AUTH_FAILED', 'short');
      return body.slice(4);
    },
  };
}

export const NULL_CIPHER = nullCipher();
export const GCM_CIPHER = createSkCipher(
  createNodeProvider(),
  { encrId: EncrId.AES_GCM_16, keyLength: 128 },
  { encKey: Uint8Array.from({ length: 20 }, (_, i) => i) },
);

export type Outcome = { kind: 'ok' } | { kind: 'typed'; code: string } | { kind: 'untyped'; error: unknown };

/** One reassembler shared across inputs (reset on error, completion or every 64 fragments). */
const newReassembler = () => new FragmentReassembler({ maxFragments: 16, maxBytes: 4096 });
let reassembler = newReassembler();
let fragmentsSeen = 0;

export function runOne(input: Uint8Array): Outcome {
  try {
    const msg = decodeMessage(input);
    checkRules(msg);
    // a decoded message must re-encode (raw SK/SKF are re-emitted as received)
    encodeMessage(msg);
    if (skPayloadOf(msg)) {
      // real AEAD: almost every mutation must fail authentication with DECODE_INTEGRITY
      try {
        checkRules(decryptMessage(msg, GCM_CIPHER));
      } catch (e) {
        if (!(e instanceof DecodeError)) throw e;
      }
      // transparent cipher: the mutated plaintext goes through the inner parser; its outcome is the result
      const clear = decryptMessage(msg, NULL_CIPHER);
      checkRules(clear);
      encodeMessage(clear, { cipher: NULL_CIPHER, iv: new Uint8Array(4) });
    } else if (skfPayloadOf(msg)) {
      if (++fragmentsSeen % 64 === 0) reassembler = newReassembler();
      try {
        const res = reassembler.add(decryptFragment(msg, NULL_CIPHER));
        if (res.status === 'complete') {
          reassembler = newReassembler();
          checkRules(res.message);
        }
      } catch (e) {
        reassembler = newReassembler();
        throw e;
      }
    }
    return { kind: 'ok' };
  } catch (e) {
    if (e instanceof DecodeError) return { kind: 'typed', code: e.code };
    return { kind: 'untyped', error: e };
  }
}
