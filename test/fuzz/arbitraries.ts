/**
 * fast-check arbitraries for every IKEv2 payload and for whole messages (valid values only: everything generated
 * here must encode, and decode back to the same object).
 */
import fc from 'fast-check';
import type {
  IkeMessage,
  NotifyPayload,
  PlainPayload,
  Proposal,
  TrafficSelector,
  Transform,
  TransformAttribute,
} from '../../src/ike/codec/index.js';
import {
  cookieNotify,
  invalidKePayloadNotify,
  natDetectionNotify,
  notify,
  rekeySaNotify,
  setWindowSizeNotify,
  signatureHashAlgorithmsNotify,
} from '../../src/ike/codec/index.js';
import { NotifyType, PayloadType, ProtocolId, TransformAttributeType, TsType } from '../../src/ike/constants.js';

const u8 = fc.integer({ min: 0, max: 0xff });
const u16 = fc.integer({ min: 0, max: 0xffff });
const bytes = (minLength: number, maxLength: number) => fc.uint8Array({ minLength, maxLength });

/** Adds `critical: true` to some payloads. */
function withCritical<T extends PlainPayload>(arb: fc.Arbitrary<T>): fc.Arbitrary<T> {
  return fc
    .tuple(arb, fc.boolean(), fc.integer({ min: 0, max: 7 }))
    .map(([p, c, r]) => (c && r === 0 ? { ...p, critical: true } : p));
}

export const attributeArb: fc.Arbitrary<TransformAttribute> = fc.oneof(
  fc.record({
    type: fc.integer({ min: 0, max: 0x7fff }).filter((t) => t !== TransformAttributeType.KEY_LENGTH),
    value: u16,
  }),
  fc.record({ type: fc.integer({ min: 0, max: 0x7fff }), value: bytes(0, 8) }),
);

export const transformArb: fc.Arbitrary<Transform> = fc.record(
  {
    type: fc.oneof(fc.integer({ min: 1, max: 5 }), u8),
    id: u16,
    keyLength: fc.constantFrom(128, 192, 256, 0, 0xffff),
    attributes: fc.array(attributeArb, { minLength: 1, maxLength: 3 }),
  },
  { requiredKeys: ['type', 'id'] },
);

export const proposalArb: fc.Arbitrary<Proposal> = fc.record({
  num: u8,
  protocol: fc.oneof(fc.constantFrom(ProtocolId.IKE, ProtocolId.AH, ProtocolId.ESP), u8),
  spi: fc.oneof(bytes(0, 0), bytes(4, 4), bytes(8, 8), bytes(0, 16)),
  transforms: fc.array(transformArb, { maxLength: 6 }),
});

const structuredNotifies = new Set<number>([
  NotifyType.INVALID_KE_PAYLOAD,
  NotifyType.NAT_DETECTION_SOURCE_IP,
  NotifyType.NAT_DETECTION_DESTINATION_IP,
  NotifyType.COOKIE,
  NotifyType.REKEY_SA,
  NotifyType.SET_WINDOW_SIZE,
  NotifyType.USE_TRANSPORT_MODE,
  NotifyType.ESP_TFC_PADDING_NOT_SUPPORTED,
  NotifyType.NON_FIRST_FRAGMENTS_ALSO,
  NotifyType.IKEV2_FRAGMENTATION_SUPPORTED,
  NotifyType.CHILDLESS_IKEV2_SUPPORTED,
  NotifyType.SIGNATURE_HASH_ALGORITHMS,
]);

export const notifyArb: fc.Arbitrary<NotifyPayload> = fc.oneof(
  fc
    .record({ notifyType: u16, protocol: u8, spi: bytes(0, 8), data: bytes(0, 32) })
    .filter((n) => !structuredNotifies.has(n.notifyType))
    .map((n) => notify(n.notifyType, n)),
  u16.map(invalidKePayloadNotify),
  bytes(20, 20).map((h) => natDetectionNotify(NotifyType.NAT_DETECTION_SOURCE_IP, h)),
  bytes(20, 20).map((h) => natDetectionNotify(NotifyType.NAT_DETECTION_DESTINATION_IP, h)),
  bytes(1, 64).map(cookieNotify),
  fc.tuple(fc.constantFrom(ProtocolId.ESP, ProtocolId.AH), bytes(4, 4)).map(([p, s]) => rekeySaNotify(p, s)),
  fc.integer({ min: 1, max: 0xffffffff }).map(setWindowSizeNotify),
  fc.array(u16, { maxLength: 6 }).map(signatureHashAlgorithmsNotify),
  fc
    .constantFrom(
      NotifyType.USE_TRANSPORT_MODE,
      NotifyType.ESP_TFC_PADDING_NOT_SUPPORTED,
      NotifyType.NON_FIRST_FRAGMENTS_ALSO,
      NotifyType.IKEV2_FRAGMENTATION_SUPPORTED,
      NotifyType.CHILDLESS_IKEV2_SUPPORTED,
    )
    .map((t) => notify(t)),
);

export const selectorArb: fc.Arbitrary<TrafficSelector> = fc.oneof(
  fc.record({
    tsType: fc.constant(TsType.TS_IPV4_ADDR_RANGE as const),
    ipProtocol: u8,
    startPort: u16,
    endPort: u16,
    startAddress: bytes(4, 4),
    endAddress: bytes(4, 4),
  }),
  fc.record({
    tsType: fc.constant(TsType.TS_IPV6_ADDR_RANGE as const),
    ipProtocol: u8,
    startPort: u16,
    endPort: u16,
    startAddress: bytes(16, 16),
    endAddress: bytes(16, 16),
  }),
  fc.record({
    tsType: u8.filter((t) => t !== TsType.TS_IPV4_ADDR_RANGE && t !== TsType.TS_IPV6_ADDR_RANGE),
    opaque: bytes(1, 16),
  }),
);

const idArb = fc
  .tuple(
    fc.constantFrom(PayloadType.IDi as const, PayloadType.IDr as const),
    u8,
    bytes(0, 32),
    bytes(4, 4),
    bytes(16, 16),
  )
  .map(([type, idType, data, v4, v6]) => ({ type, idType, data: idType === 1 ? v4 : idType === 5 ? v6 : data }));

const deleteArb = fc.oneof(
  fc.constant({
    type: PayloadType.DELETE as const,
    protocol: ProtocolId.IKE as number,
    spiSize: 0,
    spis: [] as Uint8Array[],
  }),
  fc
    .tuple(fc.constantFrom(ProtocolId.ESP, ProtocolId.AH), fc.array(bytes(4, 4), { maxLength: 4 }))
    .map(([protocol, spis]) => ({ type: PayloadType.DELETE as const, protocol: protocol as number, spiSize: 4, spis })),
  fc
    .tuple(fc.integer({ min: 4, max: 255 }), fc.integer({ min: 1, max: 8 }), fc.integer({ min: 0, max: 3 }))
    .chain(([protocol, size, n]) =>
      fc.array(bytes(size, size), { minLength: n, maxLength: n }).map((spis) => ({
        type: PayloadType.DELETE as const,
        protocol,
        spiSize: size,
        spis,
      })),
    ),
);

/** Every plain payload type. */
export const plainPayloadArb: fc.Arbitrary<PlainPayload> = withCritical(
  fc.oneof(
    fc.record({ type: fc.constant(PayloadType.SA as const), proposals: fc.array(proposalArb, { maxLength: 3 }) }),
    fc.record({ type: fc.constant(PayloadType.KE as const), group: u16, data: bytes(0, 64) }),
    idArb,
    fc.record({ type: fc.constant(PayloadType.CERT as const), encoding: u8, data: bytes(0, 64) }),
    fc.record({ type: fc.constant(PayloadType.CERTREQ as const), encoding: u8, data: bytes(0, 40) }),
    fc.record({ type: fc.constant(PayloadType.AUTH as const), method: u8, data: bytes(0, 64) }),
    fc.record({ type: fc.constant(PayloadType.NONCE as const), data: fc.oneof(bytes(16, 64), bytes(256, 256)) }),
    notifyArb,
    deleteArb,
    fc.record({ type: fc.constant(PayloadType.VENDOR_ID as const), data: bytes(0, 32) }),
    fc.record({
      type: fc.constantFrom(PayloadType.TSi as const, PayloadType.TSr as const),
      selectors: fc.array(selectorArb, { maxLength: 4 }),
    }),
    fc.record({
      type: fc.constant(PayloadType.CP as const),
      cfgType: u8,
      attributes: fc.array(fc.record({ type: fc.integer({ min: 0, max: 0x7fff }), value: bytes(0, 16) }), {
        maxLength: 4,
      }),
    }),
    fc.record({ type: fc.constant(PayloadType.EAP as const), message: bytes(0, 32) }),
  ),
);

const headerArb = fc.record({
  initiatorSpi: bytes(8, 8),
  responderSpi: bytes(8, 8),
  exchangeType: fc.oneof(fc.constantFrom(34, 35, 36, 37, 43), u8),
  flags: u8,
  messageId: fc.oneof(fc.integer({ min: 0, max: 10 }), fc.integer({ min: 0, max: 0xffffffff })),
});

/** A cleartext message (no SK). */
export const plainMessageArb: fc.Arbitrary<IkeMessage> = fc
  .tuple(headerArb, fc.array(plainPayloadArb, { maxLength: 6 }))
  .map(([h, payloads]) => ({ ...h, payloads }));

/** A protected message: cleartext payloads (usually none) plus the SK inner payloads. */
export const protectedMessageArb: fc.Arbitrary<IkeMessage> = fc
  .tuple(headerArb, fc.array(plainPayloadArb, { maxLength: 1 }), fc.array(plainPayloadArb, { maxLength: 6 }))
  .map(([h, payloads, encrypted]) => ({ ...h, payloads, encrypted }));
