/**
 * Payload chains: a sequence of payloads linked by the generic header's Next Payload field (RFC 7296 §3.2).
 */
import { GENERIC_PAYLOAD_HEADER_LENGTH, PAYLOAD_CRITICAL_FLAG, PayloadType } from '../constants.js';
import { UnsupportedCriticalPayloadError } from './errors.js';
import { decodeGenericHeader } from './payloads/generic.js';
import {
  decodePlainBody,
  encodePlainBody,
  isKnownPlainType,
  type Payload,
  type PlainPayload,
} from './payloads/index.js';
import { fail, invalid, MAX_PAYLOADS_PER_CHAIN, type Reader, type Writer } from './reader.js';

export interface DecodedChain<P> {
  payloads: P[];
  /** Types of unknown non-critical payloads that were skipped. */
  skipped: number[];
}

/**
 * Decode a chain starting with payload type `first` from `r` up to its end. In the cleartext chain (`inner` false)
 * an SK or SKF payload ends the chain and must reach the end of the message; inside SK (`inner` true) they are
 * not allowed. `message` is the whole message, for the SK/SKF AAD.
 */
export function decodeChain(r: Reader, first: number, inner: true): DecodedChain<PlainPayload>;
export function decodeChain(r: Reader, first: number, inner: false): DecodedChain<Payload>;
export function decodeChain(r: Reader, first: number, inner: boolean): DecodedChain<Payload> {
  const payloads: Payload[] = [];
  const skipped: number[] = [];
  let next = first;
  let count = 0;
  while (next !== PayloadType.NONE) {
    if (++count > MAX_PAYLOADS_PER_CHAIN) fail('DECODE_TOO_MANY', 'too many payloads', r.offset);
    const type = next;
    const start = r.pos;
    const at = r.offset;
    const h = decodeGenericHeader(r);
    const body = r.sub(h.length - GENERIC_PAYLOAD_HEADER_LENGTH, 'payload body');
    next = h.nextPayload;
    if (type === PayloadType.SK || type === PayloadType.SKF) {
      if (inner) fail('DECODE_BAD_VALUE', 'encrypted payload inside an encrypted payload', at);
      if (r.remaining !== 0) fail('DECODE_BAD_LENGTH', 'encrypted payload is not the last payload', at);
      if (type === PayloadType.SK) {
        const aad = r.bytes.slice(0, start + GENERIC_PAYLOAD_HEADER_LENGTH);
        const p: Payload = { type, innerNext: h.nextPayload, body: body.rest(), aad };
        if (h.critical) p.critical = true;
        payloads.push(p);
      } else {
        const fragmentNumber = body.u16('fragment number');
        const totalFragments = body.u16('total fragments');
        if (fragmentNumber === 0 || totalFragments === 0 || fragmentNumber > totalFragments) {
          fail('DECODE_BAD_VALUE', `fragment ${fragmentNumber} of ${totalFragments}`, at);
        }
        const aad = r.bytes.slice(0, start + GENERIC_PAYLOAD_HEADER_LENGTH + 4);
        const p: Payload = { type, innerNext: h.nextPayload, fragmentNumber, totalFragments, body: body.rest(), aad };
        if (h.critical) p.critical = true;
        payloads.push(p);
      }
      return { payloads, skipped };
    }
    if (!isKnownPlainType(type)) {
      if (h.critical) throw new UnsupportedCriticalPayloadError(type, at);
      skipped.push(type);
      continue;
    }
    const p = decodePlainBody(type, body);
    if (body.remaining !== 0) fail('DECODE_BAD_LENGTH', `${body.remaining} unparsed bytes in payload ${type}`, at);
    if (h.critical) p.critical = true;
    payloads.push(p);
  }
  if (r.remaining !== 0) fail('DECODE_BAD_LENGTH', `${r.remaining} bytes after the last payload`, r.offset);
  return { payloads, skipped };
}

/**
 * Encode plain payloads as a chain; the last payload's Next Payload is `after` (0, or SK/SKF when the chain is
 * followed by one). Returns the type of the first payload (or `after` when the list is empty).
 */
export function encodeChain(payloads: readonly PlainPayload[], w: Writer, after: number): number {
  if (!Array.isArray(payloads)) invalid('payloads must be an array');
  if (payloads.length > MAX_PAYLOADS_PER_CHAIN) invalid('too many payloads');
  for (const p of payloads) {
    if (p === null || typeof p !== 'object') invalid('payload must be an object');
    if (!isKnownPlainType(p.type)) invalid(`payload type ${String(p.type)} cannot be encoded in a chain`);
  }
  for (let i = 0; i < payloads.length; i++) {
    const p = payloads[i]!;
    const start = w.length;
    w.u8(i + 1 < payloads.length ? payloads[i + 1]!.type : after, 'next payload');
    w.u8(p.critical ? PAYLOAD_CRITICAL_FLAG : 0);
    w.u16(0);
    encodePlainBody(p, w);
    w.patchU16(start + 2, w.length - start, 'payload length');
  }
  return payloads.length > 0 ? payloads[0]!.type : after;
}
