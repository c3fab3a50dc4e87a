/**
 * Whole IKE messages: header (RFC 7296 §3.1) + payload chain, with the SK payload (§3.14) encrypted/decrypted
 * through an SkCipher.
 *
 * Receiving:  bytes --decodeMessage--> IkeMessage (cleartext payloads; SK/SKF left encrypted, last in `payloads`)
 *             --decryptMessage(msg, cipher)--> IkeMessage with `encrypted` = the inner payloads
 *             (SKF: decryptFragment + FragmentReassembler in fragment.ts)
 *             --checkRules (rules.ts)--> which payloads may appear in this exchange.
 * Sending:    encodeMessage(msg, { cipher, iv }) encrypts `encrypted` into an SK payload.
 *
 * Pure: no randomness (the IV comes from the caller), no I/O, no timers.
 */
import {
  GENERIC_PAYLOAD_HEADER_LENGTH,
  HeaderFlag,
  IKE_HEADER_LENGTH,
  MAX_IKE_MESSAGE_LENGTH,
  PayloadType,
} from '../constants.js';
import type { Random, SkCipher } from '../crypto/provider.js';
import { decodeChain, encodeChain } from './chain.js';
import { decodeHeader, encodeHeader, type HeaderFields, plainView } from './header.js';
import type { Payload, PayloadOf, PlainPayload, SkfPayload, SkPayload } from './payloads/index.js';
import { openSkBody, sealSkBody, skBodyLength } from './payloads/sk.js';
import { fail, invalid, Reader, Writer } from './reader.js';

export interface IkeMessage extends HeaderFields {
  /**
   * Cleartext payloads in wire order. In a decoded message that is not yet decrypted, an SK or SKF payload is the
   * last element. When encoding, a raw SK/SKF here is re-emitted unchanged (only useful to re-encode what was
   * decoded); normally put the protected payloads in `encrypted` instead.
   */
  payloads: Payload[];
  /**
   * The payloads inside SK. Present after decryption and whenever the message is protected (every exchange except
   * IKE_SA_INIT), even when empty (an empty INFORMATIONAL is a liveness check).
   */
  encrypted?: PlainPayload[];
  /** Unknown non-critical payload types that the decoder skipped (cleartext and inner). */
  skipped?: number[];
}

export interface EncodeOptions {
  /** Required when `encrypted` is present. */
  cipher?: SkCipher;
  /** The IV for the SK payload: bytes of `cipher.ivLength`, or a Random to draw them from. */
  iv?: Uint8Array | Random;
}

export function isResponse(m: Pick<HeaderFields, 'flags'>): boolean {
  return (m.flags & HeaderFlag.RESPONSE) !== 0;
}

export function isInitiator(m: Pick<HeaderFields, 'flags'>): boolean {
  return (m.flags & HeaderFlag.INITIATOR) !== 0;
}

/**
 * Decode a received message. Throws DecodeError (and only DecodeError) for anything malformed, including an
 * unknown critical payload (UnsupportedCriticalPayloadError, code DECODE_UNSUPPORTED_CRITICAL_PAYLOAD).
 * SK/SKF payloads stay encrypted: call decryptMessage / decryptFragment.
 */
export function decodeMessage(input: Uint8Array): IkeMessage {
  const h = decodeHeader(input);
  const bytes = plainView(input);
  const r = new Reader(bytes, IKE_HEADER_LENGTH, h.length);
  const chain = decodeChain(r, h.nextPayload, false);
  const msg: IkeMessage = {
    initiatorSpi: h.initiatorSpi,
    responderSpi: h.responderSpi,
    exchangeType: h.exchangeType,
    flags: h.flags,
    messageId: h.messageId,
    payloads: chain.payloads,
  };
  if (chain.skipped.length > 0) msg.skipped = chain.skipped;
  return msg;
}

/** The message's trailing SK payload, if any. */
export function skPayloadOf(msg: IkeMessage): SkPayload | undefined {
  const last = msg.payloads[msg.payloads.length - 1];
  return last?.type === PayloadType.SK ? last : undefined;
}

/** The message's trailing SKF payload, if any (the message is a fragment). */
export function skfPayloadOf(msg: IkeMessage): SkfPayload | undefined {
  const last = msg.payloads[msg.payloads.length - 1];
  return last?.type === PayloadType.SKF ? last : undefined;
}

/**
 * Verify and decrypt the SK payload of a decoded message; returns a new message whose `payloads` are the
 * cleartext ones (without SK) and `encrypted` the inner ones. A message without SK is returned unchanged (the
 * payload rules reject unprotected messages in protected exchanges). For an SKF fragment use decryptFragment.
 * Throws DecodeError: DECODE_INTEGRITY when the ICV does not verify, other codes for malformed content.
 */
export function decryptMessage(msg: IkeMessage, cipher: SkCipher): IkeMessage {
  if (skfPayloadOf(msg)) fail('DECODE_BAD_VALUE', 'message is a fragment: use decryptFragment');
  const sk = skPayloadOf(msg);
  if (!sk) return msg;
  const inner = openSkBody(cipher, sk.aad, sk.body);
  const chain = decodeChain(new Reader(inner), sk.innerNext, true);
  const out: IkeMessage = { ...msg, payloads: msg.payloads.slice(0, -1), encrypted: chain.payloads };
  const skipped = [...(msg.skipped ?? []), ...chain.skipped];
  if (skipped.length > 0) out.skipped = skipped;
  return out;
}

/**
 * The authenticated cleartext of a decoded message's SK payload without parsing it: `aad` (IKE header through the
 * SK generic header, as received) and `inner` (the inner payload chain, padding removed), plus the first inner
 * payload type. For computations over the exact octets, e.g. IntAuth of IKE_INTERMEDIATE (RFC 9242 §3.1).
 * Throws DecodeError like decryptMessage.
 */
export function openSk(msg: IkeMessage, cipher: SkCipher): { aad: Uint8Array; inner: Uint8Array; innerNext: number } {
  const sk = skPayloadOf(msg);
  if (!sk) fail('DECODE_BAD_VALUE', 'message has no SK payload');
  return { aad: sk.aad, inner: openSkBody(cipher, sk.aad, sk.body).slice(), innerNext: sk.innerNext };
}

function drawIv(options: EncodeOptions, cipher: SkCipher): Uint8Array {
  const iv = typeof options.iv === 'function' ? options.iv(cipher.ivLength) : options.iv;
  if (!(iv instanceof Uint8Array) || iv.length !== cipher.ivLength) invalid(`IV must be ${cipher.ivLength} bytes`);
  return iv;
}

function checkMessage(msg: IkeMessage): void {
  if (msg === null || typeof msg !== 'object') invalid('message must be an object');
  if (!Array.isArray(msg.payloads)) invalid('message payloads must be an array');
  if (msg.encrypted !== undefined && !Array.isArray(msg.encrypted)) invalid('encrypted must be an array');
}

/** Encode the inner payloads of a protected message (the SK plaintext before padding). */
export function encodeInnerChain(payloads: readonly PlainPayload[]): { first: number; bytes: Uint8Array } {
  const w = new Writer(1024);
  const first = encodeChain(payloads, w, PayloadType.NONE);
  return { first, bytes: w.finish() };
}

/**
 * Encode a message. With `encrypted` present the inner payloads are sealed into an SK payload (needs
 * options.cipher and options.iv). Throws IkeError('ENCODE_INVALID') for invalid input.
 */
export function encodeMessage(msg: IkeMessage, options: EncodeOptions = {}): Uint8Array {
  checkMessage(msg);
  const raw = msg.payloads[msg.payloads.length - 1];
  const rawEncrypted = raw && (raw.type === PayloadType.SK || raw.type === PayloadType.SKF) ? raw : undefined;
  const plain = (rawEncrypted ? msg.payloads.slice(0, -1) : msg.payloads) as PlainPayload[];
  if (rawEncrypted && msg.encrypted !== undefined) invalid('both a raw encrypted payload and `encrypted`');
  const w = new Writer(2048);
  w.zeros(IKE_HEADER_LENGTH);
  const after = rawEncrypted ? rawEncrypted.type : msg.encrypted !== undefined ? PayloadType.SK : PayloadType.NONE;
  const first = encodeChain(plain, w, after);

  if (rawEncrypted) {
    writeRawEncrypted(w, rawEncrypted);
  } else if (msg.encrypted !== undefined) {
    const cipher = options.cipher;
    if (!cipher) invalid('a protected message needs a cipher');
    const inner = encodeInnerChain(msg.encrypted);
    const skStart = w.length;
    const bodyLength = skBodyLength(inner.bytes.length, cipher);
    const total = skStart + GENERIC_PAYLOAD_HEADER_LENGTH + bodyLength;
    if (total > MAX_IKE_MESSAGE_LENGTH) invalid(`message of ${total} bytes is too large`);
    w.u8(inner.first);
    w.u8(0);
    w.u16(GENERIC_PAYLOAD_HEADER_LENGTH + bodyLength, 'SK payload length');
    const head = w.finish();
    writeHeaderInto(head, msg, first, total);
    const body = sealSkBody(cipher, head, inner.bytes, drawIv(options, cipher));
    const out = new Uint8Array(total);
    out.set(head);
    out.set(body, head.length);
    return out;
  }
  const out = w.finish();
  if (out.length > MAX_IKE_MESSAGE_LENGTH) invalid(`message of ${out.length} bytes is too large`);
  writeHeaderInto(out, msg, first, out.length);
  return out;
}

function writeRawEncrypted(w: Writer, p: SkPayload | SkfPayload): void {
  if (!(p.body instanceof Uint8Array)) invalid('encrypted payload body must be a Uint8Array');
  const start = w.length;
  w.u8(p.innerNext, 'innerNext');
  w.u8(p.critical ? 0x80 : 0);
  w.u16(0);
  if (p.type === PayloadType.SKF) {
    w.u16(p.fragmentNumber, 'fragment number');
    w.u16(p.totalFragments, 'total fragments');
  }
  w.bytes(p.body);
  w.patchU16(start + 2, w.length - start, 'encrypted payload length');
}

function writeHeaderInto(out: Uint8Array, msg: HeaderFields, first: number, length: number): void {
  const hw = new Writer(IKE_HEADER_LENGTH);
  encodeHeader(hw, msg, first, length);
  out.set(hw.finish(), 0);
}

/** All payloads of a type, from the cleartext and the encrypted part. */
export function payloadsOf<T extends PayloadType>(msg: IkeMessage, type: T): PayloadOf<T>[] {
  const out: PayloadOf<T>[] = [];
  for (const p of msg.payloads) if (p.type === type) out.push(p as PayloadOf<T>);
  for (const p of msg.encrypted ?? []) if (p.type === type) out.push(p as PayloadOf<T>);
  return out;
}

/** The first payload of a type, or undefined. */
export function payloadOf<T extends PayloadType>(msg: IkeMessage, type: T): PayloadOf<T> | undefined {
  return payloadsOf(msg, type)[0];
}
