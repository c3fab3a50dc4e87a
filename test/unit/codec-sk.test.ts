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
import { RFC7634_IV, RFC7634_KEY, RFC7634_MESSAGE } from '../vectors/codec-messages.js';
import { hex, toHex } from './codec-helpers.js';

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
