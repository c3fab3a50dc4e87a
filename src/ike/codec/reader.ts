/**
 * Bounds-checked reading and simple writing of network-order integers. Every read checks the remaining input first
 * and throws DecodeError, so no RangeError from DataView or typed arrays can escape the decoder.
 */
import { NotifyType } from '../constants.js';
import { DecodeError, IkeError, type IkeErrorCode } from '../errors.js';

/** Most payloads accepted in one chain (cleartext or inner); a 64 KiB message cannot hold more than ~16k anyway. */
export const MAX_PAYLOADS_PER_CHAIN = 512;

/** Throw a DecodeError that answers with INVALID_SYNTAX. */
export function fail(code: IkeErrorCode, message: string, offset?: number): never {
  throw new DecodeError(code, message, { notify: NotifyType.INVALID_SYNTAX, offset });
}

/** Throw IkeError('ENCODE_INVALID'). */
export function invalid(message: string): never {
  throw new IkeError('ENCODE_INVALID', message);
}

/** A cursor over a byte range [start, end) of `bytes`; `base` is the absolute offset of `bytes` for error offsets. */
export class Reader {
  pos: number;
  constructor(
    readonly bytes: Uint8Array,
    start = 0,
    readonly end = bytes.length,
    /** Absolute offset of bytes[0] in the whole message, for error reporting. */
    readonly base = 0,
  ) {
    this.pos = start;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  /** Absolute offset of the cursor in the message. */
  get offset(): number {
    return this.base + this.pos;
  }

  need(n: number, what: string): void {
    if (n > this.end - this.pos)
      fail('DECODE_TRUNCATED', `${what}: need ${n} bytes, ${this.remaining} left`, this.offset);
  }

  u8(what: string): number {
    this.need(1, what);
    return this.bytes[this.pos++]!;
  }

  u16(what: string): number {
    this.need(2, what);
    const b = this.bytes;
    const v = (b[this.pos]! << 8) | b[this.pos + 1]!;
    this.pos += 2;
    return v;
  }

  u32(what: string): number {
    this.need(4, what);
    const b = this.bytes;
    const p = this.pos;
    const v = ((b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!) >>> 0;
    this.pos += 4;
    return v;
  }

  skip(n: number, what: string): void {
    this.need(n, what);
    this.pos += n;
  }

  /** A copy of the next n bytes (copies, so that callers may reuse their receive buffer). */
  take(n: number, what: string): Uint8Array {
    this.need(n, what);
    const out = this.bytes.slice(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  /** A copy of everything up to `end`. */
  rest(): Uint8Array {
    const out = this.bytes.slice(this.pos, this.end);
    this.pos = this.end;
    return out;
  }

  /** A sub-reader over the next n bytes; advances this reader past them. */
  sub(n: number, what: string): Reader {
    this.need(n, what);
    const r = new Reader(this.bytes, this.pos, this.pos + n, this.base);
    this.pos += n;
    return r;
  }
}

/** Growable big-endian writer. */
export class Writer {
  private buf: Uint8Array;
  length = 0;
  constructor(initial = 256) {
    this.buf = new Uint8Array(initial);
  }

  private ensure(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.length + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
  }

  u8(v: number, what = 'u8'): this {
    if (!Number.isInteger(v) || v < 0 || v > 0xff) invalid(`${what} must be an integer 0..255`);
    this.ensure(1);
    this.buf[this.length++] = v;
    return this;
  }

  u16(v: number, what = 'u16'): this {
    if (!Number.isInteger(v) || v < 0 || v > 0xffff) invalid(`${what} must be an integer 0..65535`);
    this.ensure(2);
    this.buf[this.length++] = v >>> 8;
    this.buf[this.length++] = v & 0xff;
    return this;
  }

  u32(v: number, what = 'u32'): this {
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) invalid(`${what} must be an integer 0..2^32-1`);
    this.ensure(4);
    this.buf[this.length++] = v >>> 24;
    this.buf[this.length++] = (v >>> 16) & 0xff;
    this.buf[this.length++] = (v >>> 8) & 0xff;
    this.buf[this.length++] = v & 0xff;
    return this;
  }

  zeros(n: number): this {
    this.ensure(n);
    this.buf.fill(0, this.length, this.length + n);
    this.length += n;
    return this;
  }

  bytes(data: Uint8Array, what = 'bytes'): this {
    if (!(data instanceof Uint8Array)) invalid(`${what} must be a Uint8Array`);
    this.ensure(data.length);
    this.buf.set(data, this.length);
    this.length += data.length;
    return this;
  }

  /** Overwrite a u16 at an earlier position (for length fields). */
  patchU16(at: number, v: number, what = 'length'): void {
    if (v > 0xffff) invalid(`${what} ${v} exceeds 65535`);
    this.buf[at] = v >>> 8;
    this.buf[at + 1] = v & 0xff;
  }

  patchU8(at: number, v: number): void {
    this.buf[at] = v & 0xff;
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.length);
  }
}

export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export function isBytes(v: unknown): v is Uint8Array {
  return v instanceof Uint8Array;
}

export function checkBytes(v: unknown, what: string, min = 0, max = 0xffff): Uint8Array {
  if (!(v instanceof Uint8Array)) invalid(`${what} must be a Uint8Array`);
  if (v.length < min || v.length > max) invalid(`${what} length ${v.length} outside ${min}..${max}`);
  return v;
}

export function checkInt(v: unknown, what: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
    invalid(`${what} must be an integer ${min}..${max}`);
  return v;
}
