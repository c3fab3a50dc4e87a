import { describe, expect, it } from 'vitest';
import {
  checkRules,
  decodeMessage,
  decryptMessage,
  encodeMessage,
  type IkeMessage,
  openSk,
  setWindowSizeNotify,
  UnsupportedCriticalPayloadError,
  windowSize,
} from '../../src/ike/codec/index.js';
import { EncrId, ExchangeType, NotifyType, PayloadType } from '../../src/ike/constants.js';
import { createNobleProvider, createNodeProvider, createSkCipher } from '../../src/ike/crypto/index.js';
import type { SkCipher } from '../../src/ike/crypto/provider.js';
import { DecodeError } from '../../src/ike/errors.js';
import { NULL_CIPHER } from '../fuzz/harness.js';
import { RFC7634_IV, RFC7634_KEY, RFC7634_MESSAGE, WIRESHARK_SA_INIT_REQUEST } from '../vectors/codec-messages.js';
import { catchError, codeOf, hex, toHex } from './codec-helpers.js';

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

describe('inner chain of SK', () => {
  const base: IkeMessage = {
    initiatorSpi: hex('0101010101010101'),
    responderSpi: hex('0202020202020202'),
    exchangeType: ExchangeType.INFORMATIONAL,
    flags: 0x08,
    messageId: 3,
    payloads: [],
    encrypted: [{ type: PayloadType.VENDOR_ID, data: hex('01020304') }],
  };
  // the transparent test cipher: inner payloads start right after the SK header and the 4-byte IV
  const withInnerType = (critical: boolean) => {
    const b = encodeMessage(base, { cipher: NULL_CIPHER, iv: new Uint8Array(4) });
    b[28] = 200; // SK Next Payload = first inner payload type
    b[37] = critical ? 0x80 : 0; // inner payload flags
    return b;
  };

  it('skips an unknown non-critical inner payload', () => {
    const clear = decryptMessage(decodeMessage(withInnerType(false)), NULL_CIPHER);
    expect(clear.encrypted).toEqual([]);
    expect(clear.skipped).toEqual([200]);
  });

  it('fails on an unknown critical inner payload', () => {
    const e = catchError(() => decryptMessage(decodeMessage(withInnerType(true)), NULL_CIPHER));
    expect(e).toBeInstanceOf(UnsupportedCriticalPayloadError);
    expect((e as UnsupportedCriticalPayloadError).payloadType).toBe(200);
  });

  it('rejects a nested SK and a pad length beyond the plaintext', () => {
    const nested = encodeMessage(base, { cipher: NULL_CIPHER, iv: new Uint8Array(4) });
    nested[28] = PayloadType.SK;
    expect(codeOf(() => decryptMessage(decodeMessage(nested), NULL_CIPHER))).toBe('DECODE_BAD_VALUE');
    const pad = encodeMessage(base, { cipher: NULL_CIPHER, iv: new Uint8Array(4) });
    pad[pad.length - 1] = 200;
    expect(codeOf(() => decryptMessage(decodeMessage(pad), NULL_CIPHER))).toBe('DECODE_BAD_VALUE');
  });

  it('rejects a body that is not a whole number of blocks, or shorter than IV and ICV', () => {
    const m = decodeMessage(encodeMessage(base, { cipher: NULL_CIPHER, iv: new Uint8Array(4) }));
    const sk = m.payloads[0]!;
    if (sk.type !== PayloadType.SK) throw new Error('expected SK');
    expect(codeOf(() => decryptMessage({ ...m, payloads: [{ ...sk, body: sk.body.subarray(1) }] }, NULL_CIPHER))).toBe(
      'DECODE_BAD_LENGTH',
    );
    expect(
      codeOf(() => decryptMessage({ ...m, payloads: [{ ...sk, body: sk.body.subarray(0, 4) }] }, NULL_CIPHER)),
    ).toBe('DECODE_BAD_LENGTH');
  });

  it('needs a cipher and a correct IV to encode a protected message', () => {
    expect(codeOf(() => encodeMessage(base))).toBe('ENCODE_INVALID');
    expect(codeOf(() => encodeMessage(base, { cipher: NULL_CIPHER, iv: new Uint8Array(3) }))).toBe('ENCODE_INVALID');
    expect(codeOf(() => encodeMessage(base, { cipher: NULL_CIPHER }))).toBe('ENCODE_INVALID');
  });
});

describe('openSk', () => {
  it('returns the exact authenticated octets of the RFC 7634 example', () => {
    const cipher = createSkCipher(createNodeProvider(), { encrId: EncrId.CHACHA20_POLY1305 }, { encKey: RFC7634_KEY });
    const { aad, inner, innerNext } = openSk(decodeMessage(RFC7634_MESSAGE), cipher);
    expect(toHex(aad)).toBe(toHex(RFC7634_MESSAGE.subarray(0, 32)));
    expect(innerNext).toBe(PayloadType.NOTIFY);
    // N(SET_WINDOW_SIZE = 10): generic header, protocol 0, SPI size 0, type 16385, data 10
    expect(toHex(inner)).toBe('0000000c000040010000000a');
    expect(codeOf(() => openSk(decodeMessage(WIRESHARK_SA_INIT_REQUEST), cipher))).toBe('DECODE_BAD_VALUE');
  });
});
