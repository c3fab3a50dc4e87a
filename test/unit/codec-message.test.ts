/** Known real messages: see test/vectors/codec-messages.ts for their source. */
import { describe, expect, it } from 'vitest';
import {
  checkRules,
  decodeHeader,
  decodeMessage,
  encodeMessage,
  type IkeMessage,
  isInitiator,
  isResponse,
  natDetectionHash,
  payloadOf,
  payloadsOf,
  peekHeader,
  signatureHashAlgorithms,
  skPayloadOf,
  UnsupportedCriticalPayloadError,
} from '../../src/ike/codec/index.js';
import {
  EncrId,
  ExchangeType,
  HeaderFlag,
  KeId,
  NotifyType,
  PayloadType,
  PrfId,
  ProtocolId,
  TransformType,
} from '../../src/ike/constants.js';
import { DecodeError, IkeError } from '../../src/ike/errors.js';
import {
  WIRESHARK_INFORMATIONAL_REQUEST,
  WIRESHARK_INFORMATIONAL_RESPONSE,
  WIRESHARK_SA_INIT_REQUEST,
  WIRESHARK_SA_INIT_RESPONSE,
} from '../vectors/codec-messages.js';
import { catchError, codeOf, hex, toHex } from './codec-helpers.js';

describe('real IKE_SA_INIT messages (Wireshark ikev2-decrypt-aes128ccm12.pcap)', () => {
  it('decodes the request', () => {
    const m = decodeMessage(WIRESHARK_SA_INIT_REQUEST);
    expect(toHex(m.initiatorSpi)).toBe('ea684d21597afd36');
    expect(toHex(m.responderSpi)).toBe('0000000000000000');
    expect(m.exchangeType).toBe(ExchangeType.IKE_SA_INIT);
    expect(isInitiator(m)).toBe(true);
    expect(isResponse(m)).toBe(false);
    expect(m.messageId).toBe(0);
    expect(m.payloads.map((p) => p.type)).toEqual([
      PayloadType.SA,
      PayloadType.KE,
      PayloadType.NONCE,
      PayloadType.NOTIFY,
      PayloadType.NOTIFY,
      PayloadType.NOTIFY,
    ]);
    const sa = payloadOf(m, PayloadType.SA)!;
    expect(sa.proposals).toEqual([
      {
        num: 1,
        protocol: ProtocolId.IKE,
        spi: new Uint8Array(0),
        transforms: [
          { type: TransformType.ENCR, id: EncrId.AES_CCM_12, keyLength: 128 },
          { type: TransformType.PRF, id: PrfId.HMAC_SHA2_256 },
          { type: TransformType.KE, id: KeId.ECP_256 },
        ],
      },
    ]);
    const ke = payloadOf(m, PayloadType.KE)!;
    expect(ke.group).toBe(KeId.ECP_256);
    expect(ke.data.length).toBe(64);
    expect(payloadOf(m, PayloadType.NONCE)!.data.length).toBe(32);
    const notifies = payloadsOf(m, PayloadType.NOTIFY);
    expect(notifies.map((n) => n.notifyType)).toEqual([
      NotifyType.NAT_DETECTION_SOURCE_IP,
      NotifyType.NAT_DETECTION_DESTINATION_IP,
      NotifyType.SIGNATURE_HASH_ALGORITHMS,
    ]);
    expect(toHex(natDetectionHash(notifies[0]!))).toBe('949c9db5739d75a974a49c184618369b34b7f942');
    expect(signatureHashAlgorithms(notifies[2]!)).toEqual([1, 2, 3, 4]);
    expect(checkRules(m)).toBeUndefined();
  });

  it('decodes the response', () => {
    const m = decodeMessage(WIRESHARK_SA_INIT_RESPONSE);
    expect(isResponse(m)).toBe(true);
    expect(isInitiator(m)).toBe(false);
    expect(toHex(m.responderSpi)).toBe('d9fe2ab22dac23ac');
    const last = m.payloads[m.payloads.length - 1]!;
    expect(last.type === PayloadType.NOTIFY && last.notifyType).toBe(NotifyType.MULTIPLE_AUTH_SUPPORTED);
    expect(checkRules(m)).toBeUndefined();
  });

  it('decodes the protected INFORMATIONAL pair, leaving SK encrypted', () => {
    const req = decodeMessage(WIRESHARK_INFORMATIONAL_REQUEST);
    const sk = skPayloadOf(req)!;
    expect(sk.innerNext).toBe(PayloadType.DELETE);
    expect(sk.body.length).toBe(61 - 28 - 4);
    expect(toHex(sk.aad)).toBe(toHex(WIRESHARK_INFORMATIONAL_REQUEST.subarray(0, 32)));
    expect(checkRules(req)).toBeUndefined();
    const resp = decodeMessage(WIRESHARK_INFORMATIONAL_RESPONSE);
    expect(skPayloadOf(resp)!.innerNext).toBe(PayloadType.NONE);
  });

  it.each([
    ['SA_INIT request', WIRESHARK_SA_INIT_REQUEST],
    ['SA_INIT response', WIRESHARK_SA_INIT_RESPONSE],
    ['INFORMATIONAL request', WIRESHARK_INFORMATIONAL_REQUEST],
    ['INFORMATIONAL response', WIRESHARK_INFORMATIONAL_RESPONSE],
  ])('re-encodes the %s byte-exact', (_n, bytes) => {
    expect(toHex(encodeMessage(decodeMessage(bytes)))).toBe(toHex(bytes));
  });
});

describe('header', () => {
  it('peekHeader reads fields without validation; decodeHeader validates', () => {
    const b = WIRESHARK_SA_INIT_REQUEST.slice();
    b[17] = 0x30; // major version 3
    expect(peekHeader(b).majorVersion).toBe(3);
    const e = catchError(() => decodeHeader(b));
    expect(e).toBeInstanceOf(DecodeError);
    expect((e as DecodeError).code).toBe('DECODE_BAD_VERSION');
    expect((e as DecodeError).notify).toBe(NotifyType.INVALID_MAJOR_VERSION);
  });

  it('ignores the minor version', () => {
    const b = WIRESHARK_SA_INIT_REQUEST.slice();
    b[17] = 0x21;
    expect(decodeMessage(b).payloads).toHaveLength(6);
  });

  it.each([
    ['short', WIRESHARK_SA_INIT_REQUEST.subarray(0, 27), 'DECODE_TRUNCATED'],
    ['truncated', WIRESHARK_SA_INIT_REQUEST.subarray(0, 200), 'DECODE_TRUNCATED'],
    ['trailing', new Uint8Array([...WIRESHARK_SA_INIT_REQUEST, 0]), 'DECODE_BAD_LENGTH'],
  ])('rejects a %s message', (_n, bytes, code) => {
    expect(codeOf(() => decodeMessage(bytes))).toBe(code);
  });

  it('rejects a length above 64 KiB', () => {
    const b = WIRESHARK_SA_INIT_REQUEST.slice();
    b.set([0, 1, 0, 0], 24);
    expect(codeOf(() => decodeMessage(b))).toBe('DECODE_TOO_LARGE');
  });

  it('encodes flags, message ID and version', () => {
    const m: IkeMessage = {
      initiatorSpi: hex('0102030405060708'),
      responderSpi: hex('1112131415161718'),
      exchangeType: ExchangeType.INFORMATIONAL,
      flags: HeaderFlag.INITIATOR | HeaderFlag.RESPONSE,
      messageId: 0xfffffffe,
      payloads: [],
    };
    expect(toHex(encodeMessage(m))).toBe('0102030405060708111213141516171800202528fffffffe0000001c');
  });

  it('rejects invalid header fields with ENCODE_INVALID', () => {
    const base: IkeMessage = {
      initiatorSpi: new Uint8Array(8),
      responderSpi: new Uint8Array(8),
      exchangeType: 34,
      flags: 0,
      messageId: 0,
      payloads: [],
    };
    for (const bad of [
      { initiatorSpi: new Uint8Array(7) },
      { exchangeType: 256 },
      { messageId: -1 },
      { messageId: 2 ** 32 },
      { flags: 1.5 },
      { payloads: 'x' as unknown as [] },
    ]) {
      const e = catchError(() => encodeMessage({ ...base, ...bad }));
      expect(e).toBeInstanceOf(IkeError);
      expect((e as IkeError).code).toBe('ENCODE_INVALID');
    }
  });
});

describe('unknown payloads', () => {
  // IKE_SA_INIT request whose chain starts with an unknown payload type 200 (4 bytes + 4 bytes body)
  const withUnknown = (critical: boolean) => {
    const inner = WIRESHARK_SA_INIT_REQUEST.subarray(28);
    const out = new Uint8Array(28 + 8 + inner.length);
    out.set(WIRESHARK_SA_INIT_REQUEST.subarray(0, 28));
    out[16] = 200;
    out.set([PayloadType.SA, critical ? 0x80 : 0, 0, 8, 0xde, 0xad, 0xbe, 0xef], 28);
    out.set(inner, 36);
    out.set([0, 0, (out.length >> 8) & 0xff, out.length & 0xff], 24);
    return out;
  };

  it('skips an unknown non-critical payload', () => {
    const m = decodeMessage(withUnknown(false));
    expect(m.payloads.map((p) => p.type)[0]).toBe(PayloadType.SA);
    expect(m.payloads).toHaveLength(6);
    expect(m.skipped).toEqual([200]);
  });

  it('fails on an unknown critical payload with its type', () => {
    const e = catchError(() => decodeMessage(withUnknown(true)));
    expect(e).toBeInstanceOf(UnsupportedCriticalPayloadError);
    expect(e).toBeInstanceOf(DecodeError);
    expect((e as UnsupportedCriticalPayloadError).code).toBe('DECODE_UNSUPPORTED_CRITICAL_PAYLOAD');
    expect((e as UnsupportedCriticalPayloadError).payloadType).toBe(200);
    expect((e as UnsupportedCriticalPayloadError).notify).toBe(NotifyType.UNSUPPORTED_CRITICAL_PAYLOAD);
  });

  it('keeps the critical bit of a known payload', () => {
    const b = WIRESHARK_SA_INIT_REQUEST.slice();
    b[29] = 0x80; // SA payload flags
    const m = decodeMessage(b);
    expect(m.payloads[0]!.critical).toBe(true);
    expect(toHex(encodeMessage(m))).toBe(toHex(b));
  });
});

describe('input buffers', () => {
  it('decoded payloads do not alias a Node Buffer given to decodeMessage', () => {
    const buf = Buffer.from(WIRESHARK_SA_INIT_REQUEST);
    const m = decodeMessage(buf);
    const nonce = payloadOf(m, PayloadType.NONCE)!;
    const before = toHex(nonce.data);
    buf.fill(0);
    expect(toHex(nonce.data)).toBe(before);
    expect(toHex(m.initiatorSpi)).toBe('ea684d21597afd36');
  });

  it('rejects a non-Uint8Array input with a DecodeError', () => {
    expect(codeOf(() => decodeMessage('hello' as unknown as Uint8Array))).toBe('DECODE_BAD_VALUE');
  });
});
