import { describe, expect, it } from 'vitest';
import {
  checkRules,
  decodeMessage,
  decryptMessage,
  encodeMessage,
  type IkeMessage,
  setWindowSizeNotify,
  windowSize,
} from '../../src/ike/codec/index.js';
import { EncrId, ExchangeType, NotifyType, PayloadType } from '../../src/ike/constants.js';
import { createNobleProvider, createNodeProvider, createSkCipher } from '../../src/ike/crypto/index.js';
import type { SkCipher } from '../../src/ike/crypto/provider.js';
import { DecodeError } from '../../src/ike/errors.js';

const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/[\s:]/g, ''), 'hex'));
const toHex = (b: Uint8Array) => Buffer.from(b).toString('hex');

/**
 * RFC 7634 Appendix B: an INFORMATIONAL request carrying SET_WINDOW_SIZE(10), protected with ChaCha20-Poly1305.
 * Key 80..9f, salt a0 a1 a2 a3, IV 10..17, SPIs c0..c7 / d0..d7, message ID 9. The same bytes are used by
 * strongSwan's src/libcharon/tests/suites/test_message_chapoly.c (from the draft's Appendix B).
 */
const RFC7634_KEY = hex('808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f a0a1a2a3');
const RFC7634_IV = hex('1011121314151617');
const RFC7634_MESSAGE = hex(`
  c0c1c2c3c4c5c6c7 d0d1d2d3d4d5d6d7 2e202500 00000009 00000045
  29000029 1011121314151617
  610394701f8d017f7c129248896b71bfe25236efd7cdc67066906315b2`);

const providers = [
  ['node', createNodeProvider()],
  ['noble', createNobleProvider()],
] as const;

describe.each(providers)('RFC 7634 Appendix B with the %s provider', (_name, provider) => {
  const cipher: SkCipher = createSkCipher(provider, { encrId: EncrId.CHACHA20_POLY1305 }, { encKey: RFC7634_KEY });

  it('decodes and decrypts the example message', () => {
    const msg = decodeMessage(RFC7634_MESSAGE);
    expect(msg.exchangeType).toBe(ExchangeType.INFORMATIONAL);
    expect(msg.messageId).toBe(9);
    expect(msg.flags).toBe(0);
    expect(toHex(msg.initiatorSpi)).toBe('c0c1c2c3c4c5c6c7');
    expect(msg.payloads.map((p) => p.type)).toEqual([PayloadType.SK]);
    const clear = decryptMessage(msg, cipher);
    expect(clear.payloads).toEqual([]);
    expect(clear.encrypted).toHaveLength(1);
    const n = clear.encrypted![0]!;
    if (n.type !== PayloadType.NOTIFY) throw new Error('expected a notify');
    expect(n.notifyType).toBe(NotifyType.SET_WINDOW_SIZE);
    expect(windowSize(n)).toBe(10);
    expect(checkRules(clear)).toBeUndefined();
  });

  it('re-encrypts to the same bytes', () => {
    const msg: IkeMessage = {
      initiatorSpi: hex('c0c1c2c3c4c5c6c7'),
      responderSpi: hex('d0d1d2d3d4d5d6d7'),
      exchangeType: ExchangeType.INFORMATIONAL,
      flags: 0,
      messageId: 9,
      payloads: [],
      encrypted: [setWindowSizeNotify(10)],
    };
    expect(toHex(encodeMessage(msg, { cipher, iv: RFC7634_IV }))).toBe(toHex(RFC7634_MESSAGE));
    // and with the IV drawn from a Random port
    expect(toHex(encodeMessage(msg, { cipher, iv: () => RFC7634_IV.slice() }))).toBe(toHex(RFC7634_MESSAGE));
  });

  it('rejects any single flipped bit with DECODE_INTEGRITY (or a header/length error)', () => {
    for (let i = 0; i < RFC7634_MESSAGE.length * 8; i++) {
      const m = RFC7634_MESSAGE.slice();
      m[i >> 3]! ^= 1 << (i & 7);
      let err: unknown;
      try {
        decryptMessage(decodeMessage(m), cipher);
      } catch (e) {
        err = e;
      }
      expect(err, `bit ${i}`).toBeInstanceOf(DecodeError);
    }
  });
});
