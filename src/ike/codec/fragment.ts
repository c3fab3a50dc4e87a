/**
 * IKEv2 message fragmentation (RFC 7383): splitting a protected message into SKF fragments, decrypting a received
 * fragment, and reassembling. Each fragment is encrypted and authenticated on its own (§2.5); the receiver
 * verifies each before keeping it (§2.6). Pure data structures: no timers (the engine drops a reassembler when its
 * exchange times out).
 */
import { GENERIC_PAYLOAD_HEADER_LENGTH, IKE_HEADER_LENGTH, NotifyType, PayloadType } from '../constants.js';
import type { SkCipher } from '../crypto/provider.js';
import { DecodeError } from '../errors.js';
import { decodeChain } from './chain.js';
import { encodeHeader, type HeaderFields } from './header.js';
import { type EncodeOptions, encodeInnerChain, type IkeMessage, skfPayloadOf } from './message.js';
import type { Payload } from './payloads/index.js';
import { openSkBody, sealSkBody, skPadLength } from './payloads/sk.js';
import { MAX_TOTAL_FRAGMENTS } from './payloads/skf.js';
import { checkInt, concatBytes, fail, invalid, Reader, Writer } from './reader.js';

/** SKF generic header plus Fragment Number and Total Fragments. */
const SKF_HEADER_LENGTH = GENERIC_PAYLOAD_HEADER_LENGTH + 4;

export interface FragmentOptions extends EncodeOptions {
  cipher: SkCipher;
  /**
   * Largest IKE message per fragment in bytes (IKE header through ICV; without IP/UDP headers and the non-ESP
   * marker). RFC 7383 §2.5.1 suggests 1280 - 48 (IPv6 + UDP) - 4 (non-ESP marker) for IPv6.
   */
  maxSize: number;
}

/** Plaintext bytes (inner payload bytes) one fragment can carry. */
export function fragmentCapacity(cipher: SkCipher, maxSize: number): number {
  const avail = maxSize - IKE_HEADER_LENGTH - SKF_HEADER_LENGTH - cipher.ivLength - cipher.icvLength;
  // plaintext = content + padding + pad length byte, a multiple of the block size
  return Math.floor(avail / cipher.blockSize) * cipher.blockSize - 1;
}

/**
 * Split a protected message (`encrypted` present, no cleartext payloads) into encoded SKF fragments of at most
 * `maxSize` bytes each. A message that fits one fragment still becomes one SKF fragment (1 of 1); callers decide
 * whether to fragment at all. Throws IkeError('ENCODE_INVALID').
 */
export function fragmentMessage(msg: IkeMessage, options: FragmentOptions): Uint8Array[] {
  if (msg === null || typeof msg !== 'object' || !Array.isArray(msg.encrypted)) {
    invalid('only protected messages are fragmented');
  }
  if (!Array.isArray(msg.payloads) || msg.payloads.length !== 0)
    invalid('fragmented messages carry no cleartext payloads');
  const { cipher } = options;
  if (!cipher) invalid('fragmentation needs a cipher');
  checkInt(options.maxSize, 'maxSize', 0, 0xffff);
  const capacity = fragmentCapacity(cipher, options.maxSize);
  if (capacity < 1) invalid(`maxSize ${options.maxSize} leaves no room for content`);
  const inner = encodeInnerChain(msg.encrypted);
  const total = Math.max(1, Math.ceil(inner.bytes.length / capacity));
  if (total > MAX_TOTAL_FRAGMENTS) invalid('too many fragments');
  if (total > 1 && typeof options.iv !== 'function')
    invalid('several fragments need an IV source (Random), not one IV');
  const out: Uint8Array[] = [];
  for (let n = 1; n <= total; n++) {
    const chunk = inner.bytes.subarray((n - 1) * capacity, Math.min(inner.bytes.length, n * capacity));
    const bodyLength =
      cipher.ivLength + chunk.length + skPadLength(chunk.length, cipher.blockSize) + 1 + cipher.icvLength;
    const length = IKE_HEADER_LENGTH + SKF_HEADER_LENGTH + bodyLength;
    const w = new Writer(IKE_HEADER_LENGTH + SKF_HEADER_LENGTH);
    encodeHeader(w, msg, PayloadType.SKF, length);
    w.u8(n === 1 ? inner.first : PayloadType.NONE);
    w.u8(0);
    w.u16(SKF_HEADER_LENGTH + bodyLength);
    w.u16(n);
    w.u16(total);
    const head = w.finish();
    const iv = typeof options.iv === 'function' ? options.iv(cipher.ivLength) : options.iv;
    if (!(iv instanceof Uint8Array)) invalid('fragmentation needs an IV source');
    const body = sealSkBody(cipher, head, chunk, iv);
    const frag = new Uint8Array(length);
    frag.set(head);
    frag.set(body, head.length);
    out.push(frag);
  }
  return out;
}

/** A verified and decrypted fragment. */
export interface DecryptedFragment {
  header: HeaderFields;
  /** Cleartext payloads before SKF (normally none). */
  cleartext: Payload[];
  fragmentNumber: number;
  totalFragments: number;
  /** Next Payload of the SKF header (meaningful in fragment 1). */
  innerNext: number;
  /** The decrypted content, padding removed. */
  data: Uint8Array;
}

/** Verify and decrypt a decoded fragment message. Throws DecodeError (DECODE_INTEGRITY on a bad ICV). */
export function decryptFragment(msg: IkeMessage, cipher: SkCipher): DecryptedFragment {
  const skf = skfPayloadOf(msg);
  if (!skf) fail('DECODE_BAD_VALUE', 'message has no SKF payload');
  const data = openSkBody(cipher, skf.aad, skf.body).slice();
  return {
    header: {
      initiatorSpi: msg.initiatorSpi,
      responderSpi: msg.responderSpi,
      exchangeType: msg.exchangeType,
      flags: msg.flags,
      messageId: msg.messageId,
    },
    cleartext: msg.payloads.slice(0, -1),
    fragmentNumber: skf.fragmentNumber,
    totalFragments: skf.totalFragments,
    innerNext: skf.innerNext,
    data,
  };
}

export interface ReassemblyLimits {
  /** Largest Total Fragments accepted. */
  maxFragments: number;
  /** Largest sum of decrypted fragment contents. */
  maxBytes: number;
}

export const DEFAULT_REASSEMBLY_LIMITS: ReassemblyLimits = { maxFragments: 64, maxBytes: 65_535 };

export type ReassemblyResult =
  | { status: 'complete'; message: IkeMessage }
  | { status: 'incomplete'; received: number; total: number }
  /** Same fragment number seen before (a retransmission): ignored. */
  | { status: 'duplicate'; fragmentNumber: number }
  /** Total Fragments lower than the current set's: an older fragmentation of the message, ignored (§2.6). */
  | { status: 'stale'; fragmentNumber: number };

/**
 * Reassembles the fragments of one message (one per message ID and direction). Fragments may arrive out of order
 * and more than once. When a fragment announces more fragments than the set being collected, the sender has
 * re-fragmented (e.g. after PMTU trouble, RFC 7383 §2.5.2): the old set is dropped and collection restarts (§2.6).
 */
export class FragmentReassembler {
  private readonly limits: ReassemblyLimits;
  private total = 0;
  private bytes = 0;
  private parts = new Map<number, Uint8Array>();
  private first: DecryptedFragment | undefined;
  private ref: HeaderFields | undefined;
  private done = false;

  constructor(limits: Partial<ReassemblyLimits> = {}) {
    this.limits = { ...DEFAULT_REASSEMBLY_LIMITS, ...limits };
  }

  get received(): number {
    return this.parts.size;
  }

  get totalFragments(): number {
    return this.total;
  }

  /**
   * Add a verified fragment. Throws DecodeError: DECODE_TOO_MANY (Total Fragments above the limit),
   * DECODE_TOO_LARGE (content above the byte limit; the collected fragments are dropped), DECODE_BAD_VALUE
   * (fragment of another message), or any decode error of the reassembled inner chain.
   */
  add(f: DecryptedFragment): ReassemblyResult {
    if (this.done) return { status: 'duplicate', fragmentNumber: f.fragmentNumber };
    if (f.totalFragments > this.limits.maxFragments) {
      throw new DecodeError('DECODE_TOO_MANY', `${f.totalFragments} fragments exceed the limit`, {
        notify: NotifyType.INVALID_SYNTAX,
      });
    }
    if (f.fragmentNumber < 1 || f.fragmentNumber > f.totalFragments) {
      fail('DECODE_BAD_VALUE', `fragment ${f.fragmentNumber} of ${f.totalFragments}`);
    }
    if (this.ref) {
      const r = this.ref;
      const h = f.header;
      if (
        h.messageId !== r.messageId ||
        h.exchangeType !== r.exchangeType ||
        ((h.flags ^ r.flags) & 0x28) !== 0 ||
        !equalBytes(h.initiatorSpi, r.initiatorSpi) ||
        !equalBytes(h.responderSpi, r.responderSpi)
      ) {
        fail('DECODE_BAD_VALUE', 'fragment belongs to another message');
      }
    } else {
      this.ref = f.header;
    }
    if (f.totalFragments < this.total) return { status: 'stale', fragmentNumber: f.fragmentNumber };
    if (f.totalFragments > this.total) {
      this.parts.clear();
      this.bytes = 0;
      this.first = undefined;
      this.total = f.totalFragments;
    }
    if (this.parts.has(f.fragmentNumber)) return { status: 'duplicate', fragmentNumber: f.fragmentNumber };
    if (this.bytes + f.data.length > this.limits.maxBytes) {
      this.parts.clear();
      this.bytes = 0;
      this.first = undefined;
      throw new DecodeError('DECODE_TOO_LARGE', 'reassembled message exceeds the byte limit', {
        notify: NotifyType.INVALID_SYNTAX,
      });
    }
    this.parts.set(f.fragmentNumber, f.data);
    this.bytes += f.data.length;
    if (f.fragmentNumber === 1) this.first = f;
    if (this.parts.size < this.total) return { status: 'incomplete', received: this.parts.size, total: this.total };

    const ordered: Uint8Array[] = [];
    for (let n = 1; n <= this.total; n++) ordered.push(this.parts.get(n)!);
    const first = this.first!;
    this.done = true;
    const chain = decodeChain(new Reader(concatBytes(ordered)), first.innerNext, true);
    const message: IkeMessage = { ...first.header, payloads: first.cleartext, encrypted: chain.payloads };
    if (chain.skipped.length > 0) message.skipped = chain.skipped;
    return { status: 'complete', message };
  }
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
