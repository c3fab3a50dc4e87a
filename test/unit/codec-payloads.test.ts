/**
 * Byte-exact encodings of every payload, built by hand from the RFC 7296 §3 / RFC 7383 §2.5 diagrams, decoded
 * back to the same objects; plus the malformations each payload decoder must reject.
 */
import { describe, expect, it } from 'vitest';
import {
  certReqAuthorities,
  cookieNotify,
  cookieOf,
  decodeMessage,
  encodeMessage,
  formatIp,
  formatSelector,
  type IkeMessage,
  identityOf,
  idPayload,
  idPayloadBody,
  invalidKeGroup,
  invalidKePayloadNotify,
  isErrorNotify,
  notify,
  type Payload,
  type PlainPayload,
  parseIp,
  rekeySaNotify,
  rekeySaSpi,
  selectorFromCidr,
  signatureHashAlgorithms,
  signatureHashAlgorithmsNotify,
  windowSize,
} from '../../src/ike/codec/index.js';
import {
  AuthMethod,
  CertEncoding,
  CfgAttributeType,
  CfgType,
  EncrId,
  EsnId,
  ExchangeType,
  IdType,
  IntegId,
  KeId,
  NotifyType,
  PayloadType,
  PrfId,
  ProtocolId,
  TransformType,
  TsType,
} from '../../src/ike/constants.js';
import { codeOf, hex, toHex } from './codec-helpers.js';

const header = {
  initiatorSpi: hex('0001020304050607'),
  responderSpi: hex('08090a0b0c0d0e0f'),
  exchangeType: ExchangeType.IKE_SA_INIT,
  flags: 0x08,
  messageId: 0,
};

/** Payload chain bytes (without the IKE header) of a cleartext message holding `payloads`. */
function chainBytes(payloads: PlainPayload[]): string {
  const bytes = encodeMessage({ ...header, payloads });
  return toHex(bytes.subarray(28));
}

/** A full message whose chain starts with `first` and is `chain`. */
function wrap(first: number, chain: string): Uint8Array {
  const body = hex(chain);
  const out = new Uint8Array(28 + body.length);
  out.set(encodeMessage({ ...header, payloads: [] }).subarray(0, 28));
  out[16] = first;
  out.set([(out.length >>> 24) & 0xff, (out.length >>> 16) & 0xff, (out.length >>> 8) & 0xff, out.length & 0xff], 24);
  out.set(body, 28);
  return out;
}

function decodeOne(first: number, chain: string): Payload {
  const m = decodeMessage(wrap(first, chain));
  expect(m.payloads).toHaveLength(1);
  return m.payloads[0]!;
}

interface Case {
  name: string;
  payload: PlainPayload;
  bytes: string;
}

const cases: Case[] = [
  {
    name: 'SA (§3.3) with two proposals, key length, unknown TV and TLV attributes, ESP SPI',
    payload: {
      type: PayloadType.SA,
      proposals: [
        {
          num: 1,
          protocol: ProtocolId.IKE,
          spi: new Uint8Array(0),
          transforms: [
            { type: TransformType.ENCR, id: EncrId.AES_CBC, keyLength: 256 },
            { type: TransformType.PRF, id: PrfId.HMAC_SHA2_256 },
            { type: TransformType.INTEG, id: IntegId.HMAC_SHA2_256_128 },
            { type: TransformType.KE, id: KeId.CURVE25519 },
          ],
        },
        {
          num: 2,
          protocol: ProtocolId.ESP,
          spi: hex('11223344'),
          transforms: [
            {
              type: TransformType.ENCR,
              id: EncrId.AES_GCM_16,
              keyLength: 128,
              attributes: [{ type: 99, value: 7 }],
            },
            { type: TransformType.ESN, id: EsnId.NO_ESN, attributes: [{ type: 100, value: hex('abcd') }] },
          ],
        },
      ],
    },
    bytes: `0000005a
      0200002c 01010004
        0300000c 0100000c 800e0100
        03000008 02000005
        03000008 0300000c
        00000008 0400001f
      0000002a 02030402 11223344
        03000010 01000014 800e0080 80630007
        0000000e 05000000 00640002abcd`,
  },
  {
    name: 'KE (§3.4)',
    payload: { type: PayloadType.KE, group: KeId.CURVE25519, data: hex('01020304') },
    bytes: '0000000c 001f0000 01020304',
  },
  {
    name: 'IDi FQDN (§3.5)',
    payload: idPayload(PayloadType.IDi, { kind: 'fqdn', name: 'a.example' }),
    bytes: '00000011 02000000 612e6578616d706c65',
  },
  {
    name: 'IDr IPv4 (§3.5)',
    payload: idPayload(PayloadType.IDr, { kind: 'ipv4', address: '192.0.2.1' }),
    bytes: '0000000c 01000000 c0000201',
  },
  {
    name: 'IDi IPv6 (§3.5)',
    payload: idPayload(PayloadType.IDi, { kind: 'ipv6', address: '2001:db8::1' }),
    bytes: '00000018 05000000 20010db8000000000000000000000001',
  },
  {
    name: 'IDi RFC822 (§3.5)',
    payload: idPayload(PayloadType.IDi, { kind: 'rfc822', address: 'a@b.example' }),
    bytes: '00000013 03000000 6140622e6578616d706c65',
  },
  {
    name: 'IDr KEY_ID (§3.5)',
    payload: idPayload(PayloadType.IDr, { kind: 'keyId', keyId: hex('0102') }),
    bytes: '0000000a 0b000000 0102',
  },
  {
    name: 'IDi DER_ASN1_DN (§3.5)',
    payload: idPayload(PayloadType.IDi, { kind: 'dn', der: hex('3000') }),
    bytes: '0000000a 09000000 3000',
  },
  {
    name: 'CERT (§3.6)',
    payload: { type: PayloadType.CERT, encoding: CertEncoding.X509_SIGNATURE, data: hex('308201') },
    bytes: '00000008 04 308201',
  },
  {
    name: 'CERTREQ (§3.7)',
    payload: { type: PayloadType.CERTREQ, encoding: CertEncoding.X509_SIGNATURE, data: new Uint8Array(20).fill(0xaa) },
    bytes: `00000019 04 ${'aa'.repeat(20)}`,
  },
  {
    name: 'AUTH (§3.8)',
    payload: { type: PayloadType.AUTH, method: AuthMethod.SHARED_KEY_MIC, data: hex('deadbeef') },
    bytes: '0000000c 02000000 deadbeef',
  },
  {
    name: 'Nonce (§3.9)',
    payload: { type: PayloadType.NONCE, data: new Uint8Array(16).fill(0x5a) },
    bytes: `00000014 ${'5a'.repeat(16)}`,
  },
  {
    name: 'Notify REKEY_SA (§3.10)',
    payload: rekeySaNotify(ProtocolId.ESP, hex('c0ffee01')),
    bytes: '0000000c 03044009 c0ffee01',
  },
  {
    name: 'Notify INVALID_KE_PAYLOAD (§3.10)',
    payload: invalidKePayloadNotify(KeId.ECP_256),
    bytes: '0000000a 00000011 0013',
  },
  {
    name: 'Notify SIGNATURE_HASH_ALGORITHMS (RFC 7427)',
    payload: signatureHashAlgorithmsNotify([2, 3, 4]),
    bytes: '0000000e 0000402f 000200030004',
  },
  {
    name: 'Notify IKEV2_FRAGMENTATION_SUPPORTED (RFC 7383)',
    payload: notify(NotifyType.IKEV2_FRAGMENTATION_SUPPORTED),
    bytes: '00000008 0000402e',
  },
  {
    name: 'Delete IKE SA (§3.11)',
    payload: { type: PayloadType.DELETE, protocol: ProtocolId.IKE, spiSize: 0, spis: [] },
    bytes: '00000008 01000000',
  },
  {
    name: 'Delete two ESP SAs (§3.11)',
    payload: {
      type: PayloadType.DELETE,
      protocol: ProtocolId.ESP,
      spiSize: 4,
      spis: [hex('01020304'), hex('0a0b0c0d')],
    },
    bytes: '00000010 03040002 01020304 0a0b0c0d',
  },
  {
    name: 'Vendor ID (§3.12)',
    payload: { type: PayloadType.VENDOR_ID, data: hex('882fe56d') },
    bytes: '00000008 882fe56d',
  },
  {
    name: 'TSi with IPv4 and IPv6 ranges (§3.13)',
    payload: {
      type: PayloadType.TSi,
      selectors: [
        selectorFromCidr('198.18.1.0/24'),
        selectorFromCidr('2001:db8::/32', { ipProtocol: 6, startPort: 443, endPort: 443 }),
      ],
    },
    bytes: `00000040 02000000
      07000010 0000ffff c6120100 c61201ff
      08060028 01bb01bb 20010db8000000000000000000000000 20010db8ffffffffffffffffffffffff`,
  },
  {
    name: 'TSr with an opaque (unknown type) selector (§3.13.1)',
    payload: { type: PayloadType.TSr, selectors: [{ tsType: 10, opaque: hex('00aabb') }] },
    bytes: '0000000e 01000000 0a000006 aabb',
  },
  {
    name: 'CP request (§3.15)',
    payload: {
      type: PayloadType.CP,
      cfgType: CfgType.CFG_REQUEST,
      attributes: [
        { type: CfgAttributeType.INTERNAL_IP4_ADDRESS, value: new Uint8Array(0) },
        { type: CfgAttributeType.INTERNAL_IP4_DNS, value: hex('c0000235') },
      ],
    },
    bytes: '00000014 01000000 00010000 00030004c0000235',
  },
  {
    name: 'EAP (§3.16)',
    payload: { type: PayloadType.EAP, message: hex('0102000501') },
    bytes: '00000009 0102000501',
  },
];

describe('payload encodings from the RFC diagrams', () => {
  it.each(cases)('$name', ({ payload, bytes }) => {
    const expected = bytes.replace(/\s/g, '');
    expect(chainBytes([payload])).toBe(expected);
    expect(decodeOne(payload.type, expected)).toEqual(payload);
  });

  it('links a chain through Next Payload', () => {
    const a = cases.find((c) => c.payload.type === PayloadType.KE)!;
    const b = cases.find((c) => c.payload.type === PayloadType.NONCE)!;
    const got = chainBytes([a.payload, b.payload]);
    // first generic header's next payload is Nonce (40 = 0x28); the last one is 0
    expect(got.slice(0, 2)).toBe('28');
    expect(got.slice(24, 26)).toBe('00');
    const m = decodeMessage(encodeMessage({ ...header, payloads: [a.payload, b.payload] }));
    expect(m.payloads).toEqual([a.payload, b.payload]);
  });
});

describe('payload helpers', () => {
  it('identityOf and idPayloadBody', () => {
    const p = idPayload(PayloadType.IDi, { kind: 'ipv6', address: '2001:db8:0:0:1::1' });
    expect(identityOf(p)).toEqual({ kind: 'ipv6', address: '2001:db8::1:0:0:1' });
    expect(toHex(idPayloadBody(idPayload(PayloadType.IDi, { kind: 'fqdn', name: 'x' })))).toBe('0200000078');
    expect(identityOf({ idType: 200, data: hex('01') })).toEqual({ kind: 'opaque', idType: 200, data: hex('01') });
    expect(identityOf({ idType: IdType.ID_FQDN, data: hex('6162') })).toEqual({ kind: 'fqdn', name: 'ab' });
    expect(codeOf(() => idPayload(PayloadType.IDi, { kind: 'ipv4', address: '300.1.1.1' }))).toBe('ENCODE_INVALID');
    expect(codeOf(() => idPayload(PayloadType.IDi, { kind: 'fqdn', name: 'a\0b' }))).toBe('ENCODE_INVALID');
  });

  it('notify accessors', () => {
    expect(invalidKeGroup(invalidKePayloadNotify(31))).toBe(31);
    expect(signatureHashAlgorithms(signatureHashAlgorithmsNotify([1, 2, 5]))).toEqual([1, 2, 5]);
    expect(toHex(cookieOf(cookieNotify(hex('0102'))))).toBe('0102');
    expect(rekeySaSpi(rekeySaNotify(ProtocolId.ESP, hex('01020304')))).toEqual({ protocol: 3, spi: hex('01020304') });
    expect(isErrorNotify(notify(NotifyType.NO_PROPOSAL_CHOSEN))).toBe(true);
    expect(isErrorNotify(notify(NotifyType.COOKIE, { data: hex('01') }))).toBe(false);
    expect(codeOf(() => windowSize(notify(NotifyType.COOKIE, { data: hex('01') })))).toBe('DECODE_BAD_VALUE');
    expect(codeOf(() => cookieNotify(new Uint8Array(65)))).toBe('ENCODE_INVALID');
    const c = { type: PayloadType.CERTREQ, encoding: 4, data: new Uint8Array(40) } as const;
    expect(certReqAuthorities(c)).toHaveLength(2);
    expect(codeOf(() => certReqAuthorities({ ...c, data: new Uint8Array(21) }))).toBe('DECODE_BAD_LENGTH');
  });

  it('traffic selectors from CIDR', () => {
    expect(formatSelector(selectorFromCidr('198.18.0.0/15'))).toBe('198.18.0.0-198.19.255.255 proto 0 ports 0-65535');
    expect(formatSelector(selectorFromCidr('192.0.2.7'))).toBe('192.0.2.7-192.0.2.7 proto 0 ports 0-65535');
    expect(formatSelector(selectorFromCidr('2001:db8::/127'))).toBe('2001:db8::-2001:db8::1 proto 0 ports 0-65535');
    expect(formatSelector(selectorFromCidr('::/0'))).toBe(
      '::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff proto 0 ports 0-65535',
    );
    expect(codeOf(() => selectorFromCidr('198.18.0.0/33'))).toBe('ENCODE_INVALID');
    expect(codeOf(() => selectorFromCidr('198.18.0.0/x'))).toBe('ENCODE_INVALID');
  });
});

describe('malformed payloads are rejected with stable codes', () => {
  const bad: [string, number, string, string][] = [
    ['nonce of 15 bytes', PayloadType.NONCE, `00000013 ${'00'.repeat(15)}`, 'DECODE_BAD_LENGTH'],
    ['nonce of 257 bytes', PayloadType.NONCE, `00000105 ${'00'.repeat(257)}`, 'DECODE_BAD_LENGTH'],
    ['ID_IPV4_ADDR of 5 bytes', PayloadType.IDi, '0000000d 01000000 c000020101', 'DECODE_BAD_LENGTH'],
    ['ID_IPV6_ADDR of 4 bytes', PayloadType.IDi, '0000000c 05000000 c0000201', 'DECODE_BAD_LENGTH'],
    ['proposal marked "more" but last', PayloadType.SA, '0000000c 02000008 01010000', 'DECODE_BAD_VALUE'],
    [
      'proposal with wrong transform count',
      PayloadType.SA,
      '00000014 00000010 01010002 00000008 0100000c',
      'DECODE_BAD_VALUE',
    ],
    ['transform last substruc 2', PayloadType.SA, '00000014 00000010 01010001 02000008 0100000c', 'DECODE_BAD_VALUE'],
    ['proposal length 7', PayloadType.SA, '0000000c 00000007 01010000', 'DECODE_BAD_LENGTH'],
    ['proposal longer than SA', PayloadType.SA, '0000000c 00000010 01010000', 'DECODE_TRUNCATED'],
    [
      'transform length beyond proposal',
      PayloadType.SA,
      '00000014 00000010 01010001 00000010 0100000c',
      'DECODE_TRUNCATED',
    ],
    [
      'TLV attribute beyond transform',
      PayloadType.SA,
      '00000018 00000014 01010001 0000000c 0100000c 00640008',
      'DECODE_TRUNCATED',
    ],
    [
      'duplicate key length',
      PayloadType.SA,
      '0000001c 00000018 01010001 00000010 0100000c 800e0080 800e0100',
      'DECODE_BAD_VALUE',
    ],
    ['INVALID_KE_PAYLOAD with 3 bytes', PayloadType.NOTIFY, '0000000b 00000011 001300', 'DECODE_BAD_VALUE'],
    ['NAT_DETECTION hash of 19 bytes', PayloadType.NOTIFY, `0000001b 00004004 ${'00'.repeat(19)}`, 'DECODE_BAD_VALUE'],
    ['REKEY_SA without SPI', PayloadType.NOTIFY, '00000008 03004009', 'DECODE_BAD_VALUE'],
    ['odd SIGNATURE_HASH_ALGORITHMS', PayloadType.NOTIFY, '0000000b 0000402f 000200', 'DECODE_BAD_VALUE'],
    ['notify SPI beyond payload', PayloadType.NOTIFY, '00000008 03044009', 'DECODE_TRUNCATED'],
    ['IKE delete with SPIs', PayloadType.DELETE, '0000000c 01040001 01020304', 'DECODE_BAD_VALUE'],
    ['delete SPI count mismatch', PayloadType.DELETE, '0000000c 03040002 01020304', 'DECODE_BAD_LENGTH'],
    ['delete SPI size 0 with count', PayloadType.DELETE, '00000008 0300ffff', 'DECODE_BAD_VALUE'],
    [
      'TS count larger than selectors',
      PayloadType.TSi,
      '00000018 02000000 07000010 0000ffff c6120100 c61201ff',
      'DECODE_TRUNCATED',
    ],
    ['TS bytes after the selectors', PayloadType.TSi, '0000000c 00000000 07000010', 'DECODE_BAD_LENGTH'],
    [
      'IPv4 selector length 20',
      PayloadType.TSi,
      '0000001c 01000000 07000014 0000ffff c6120100 c61201ff 00000000',
      'DECODE_BAD_LENGTH',
    ],
    ['selector length 3', PayloadType.TSi, '0000000c 01000000 07000003', 'DECODE_BAD_LENGTH'],
    ['CP attribute beyond payload', PayloadType.CP, '0000000c 01000000 00010004', 'DECODE_TRUNCATED'],
    ['payload length 3', PayloadType.KE, '00000003', 'DECODE_BAD_LENGTH'],
    ['payload length beyond message', PayloadType.KE, '00000010 001f0000', 'DECODE_TRUNCATED'],
    ['KE shorter than its fixed part', PayloadType.KE, '00000006 001f', 'DECODE_TRUNCATED'],
    ['bytes after the last payload', PayloadType.KE, '00000008 001f0000 00', 'DECODE_BAD_LENGTH'],
    ['SK not the last payload', PayloadType.SK, '28000008 00000000 00000008 001f0000', 'DECODE_BAD_LENGTH'],
    ['SKF fragment 0', PayloadType.SKF, '0000000c 00000001 00000000', 'DECODE_BAD_VALUE'],
    ['SKF fragment 3 of 2', PayloadType.SKF, '0000000c 00030002 00000000', 'DECODE_BAD_VALUE'],
    ['SKF without fragment fields', PayloadType.SKF, '00000006 0001', 'DECODE_TRUNCATED'],
  ];
  it.each(bad)('%s', (_name, first, chain, code) => {
    expect(codeOf(() => decodeMessage(wrap(first, chain)))).toBe(code);
  });
});

describe('encoding validates its input', () => {
  const invalid: [string, unknown][] = [
    ['nonce of 15 bytes', { type: PayloadType.NONCE, data: new Uint8Array(15) }],
    ['KE group out of range', { type: PayloadType.KE, group: 70000, data: new Uint8Array(1) }],
    ['KE data not bytes', { type: PayloadType.KE, group: 1, data: [1, 2] }],
    ['unknown payload type', { type: 99, data: new Uint8Array(1) }],
    [
      'key length in attributes',
      {
        type: PayloadType.SA,
        proposals: [
          {
            num: 1,
            protocol: 1,
            spi: new Uint8Array(0),
            transforms: [{ type: 1, id: 12, attributes: [{ type: 14, value: 128 }] }],
          },
        ],
      },
    ],
    [
      'TV attribute value too big',
      {
        type: PayloadType.SA,
        proposals: [
          {
            num: 1,
            protocol: 1,
            spi: new Uint8Array(0),
            transforms: [{ type: 1, id: 12, attributes: [{ type: 5, value: 70000 }] }],
          },
        ],
      },
    ],
    ['IPv4 ID of 3 bytes', { type: PayloadType.IDi, idType: IdType.ID_IPV4_ADDR, data: new Uint8Array(3) }],
    ['delete SPI of wrong size', { type: PayloadType.DELETE, protocol: 3, spiSize: 4, spis: [new Uint8Array(3)] }],
    ['IKE delete with SPI size', { type: PayloadType.DELETE, protocol: 1, spiSize: 8, spis: [] }],
    ['REKEY_SA without SPI', notify(NotifyType.REKEY_SA, { protocol: 3 })],
    [
      'IPv4 selector with IPv6 address',
      { type: PayloadType.TSi, selectors: [{ ...selectorFromCidr('::/0'), tsType: TsType.TS_IPV4_ADDR_RANGE }] },
    ],
    ['port out of range', { type: PayloadType.TSi, selectors: [{ ...selectorFromCidr('0.0.0.0/0'), endPort: 65536 }] }],
    [
      'CP attribute type with the reserved bit',
      { type: PayloadType.CP, cfgType: 1, attributes: [{ type: 0x8001, value: new Uint8Array(0) }] },
    ],
    ['payload too large', { type: PayloadType.VENDOR_ID, data: new Uint8Array(65532) }],
    ['null payload', null],
  ];
  it.each(invalid)('%s', (_name, payload) => {
    const msg = { ...header, payloads: [payload] } as unknown as IkeMessage;
    expect(codeOf(() => encodeMessage(msg))).toBe('ENCODE_INVALID');
  });

  it('an SK payload that is not last', () => {
    const sk = { type: PayloadType.SK, innerNext: 0, body: new Uint8Array(0), aad: new Uint8Array(0) };
    const nonce = { type: PayloadType.NONCE, data: new Uint8Array(16) };
    const msg = { ...header, payloads: [sk, nonce] } as unknown as IkeMessage;
    expect(codeOf(() => encodeMessage(msg))).toBe('ENCODE_INVALID');
  });
});

describe('IP address text', () => {
  it.each([
    ['192.0.2.1', 'c0000201', '192.0.2.1'],
    ['2001:db8::1', '20010db8000000000000000000000001', '2001:db8::1'],
    ['::', '00000000000000000000000000000000', '::'],
    ['::ffff:192.0.2.1', '00000000000000000000ffffc0000201', '::ffff:c000:201'],
    ['2001:DB8:0:0:1:0:0:1', '20010db8000000000001000000000001', '2001:db8::1:0:0:1'],
    ['1:2:3:4:5:6:7:8', '00010002000300040005000600070008', '1:2:3:4:5:6:7:8'],
  ])('%s', (text, bytes, formatted) => {
    expect(toHex(parseIp(text))).toBe(bytes);
    expect(formatIp(hex(bytes))).toBe(formatted);
  });

  it.each(['1.2.3', '1.2.3.256', '01.2.3.4', '1::2::3', '1:2:3:4:5:6:7:8:9', '12345::', ':1', 'x', ''])(
    'rejects %j',
    (text) => {
      expect(codeOf(() => parseIp(text))).toBe('ENCODE_INVALID');
    },
  );
});
