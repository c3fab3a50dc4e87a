/**
 * Netlink framing (linux/netlink.h): nlmsghdr and nlattr encode/decode, pure.
 *   struct nlmsghdr { __u32 nlmsg_len; __u16 nlmsg_type; __u16 nlmsg_flags; __u32 nlmsg_seq; __u32 nlmsg_pid; }
 *   struct nlattr   { __u16 nla_len; __u16 nla_type; }   payloads padded to 4 bytes
 *   struct nlmsgerr { int error; struct nlmsghdr msg; ... }
 */
import { endianness } from 'node:os';
import { NLA_ALIGNTO, NLA_HDRLEN, NLA_TYPE_MASK, NLMSG_ALIGNTO, NLMSG_HDRLEN } from './constants.js';

const LE = endianness() === 'LE';

export const align = (n: number, to = NLMSG_ALIGNTO): number => (n + to - 1) & ~(to - 1);

export interface NlAttr {
  type: number;
  data: Buffer;
}

export interface NlMsg {
  type: number;
  flags: number;
  seq: number;
  pid: number;
  /** Payload after the 16-byte header (family header + attributes). */
  data: Buffer;
}

export class NetlinkFrameError extends Error {
  override name = 'NetlinkFrameError';
}

/** Encodes attributes (each padded to 4 bytes). */
export function encodeAttrs(attrs: readonly NlAttr[]): Buffer {
  let len = 0;
  for (const a of attrs) len += align(NLA_HDRLEN + a.data.length, NLA_ALIGNTO);
  const b = Buffer.alloc(len);
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let o = 0;
  for (const a of attrs) {
    const l = NLA_HDRLEN + a.data.length;
    if (l > 0xffff) throw new NetlinkFrameError(`attribute ${a.type} too long (${l})`);
    dv.setUint16(o, l, LE);
    dv.setUint16(o + 2, a.type, LE);
    b.set(a.data, o + NLA_HDRLEN);
    o += align(l, NLA_ALIGNTO);
  }
  return b;
}

/** Decodes the attributes in `buf` (type with NLA_F_NESTED/NET_BYTEORDER bits masked off). */
export function decodeAttrs(buf: Buffer): NlAttr[] {
  const out: NlAttr[] = [];
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let o = 0;
  while (o + NLA_HDRLEN <= buf.length) {
    const len = dv.getUint16(o, LE);
    const type = dv.getUint16(o + 2, LE) & NLA_TYPE_MASK;
    if (len < NLA_HDRLEN || o + len > buf.length) throw new NetlinkFrameError(`bad attribute length ${len} at ${o}`);
    out.push({ type, data: buf.subarray(o + NLA_HDRLEN, o + len) });
    o += align(len, NLA_ALIGNTO);
  }
  return out;
}

/** Encodes one netlink message: header + family header + attributes. */
export function encodeNlMsg(type: number, flags: number, seq: number, pid: number, ...parts: Buffer[]): Buffer {
  let len = NLMSG_HDRLEN;
  for (const p of parts) len += p.length;
  const b = Buffer.alloc(align(len));
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  dv.setUint32(0, len, LE);
  dv.setUint16(4, type, LE);
  dv.setUint16(6, flags, LE);
  dv.setUint32(8, seq, LE);
  dv.setUint32(12, pid, LE);
  let o = NLMSG_HDRLEN;
  for (const p of parts) {
    b.set(p, o);
    o += p.length;
  }
  return b;
}

/** Splits a received datagram into netlink messages. */
export function decodeNlMsgs(buf: Buffer): NlMsg[] {
  const out: NlMsg[] = [];
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let o = 0;
  while (o + NLMSG_HDRLEN <= buf.length) {
    const len = dv.getUint32(o, LE);
    if (len < NLMSG_HDRLEN || o + len > buf.length) throw new NetlinkFrameError(`bad nlmsg length ${len} at ${o}`);
    out.push({
      type: dv.getUint16(o + 4, LE),
      flags: dv.getUint16(o + 6, LE),
      seq: dv.getUint32(o + 8, LE),
      pid: dv.getUint32(o + 12, LE),
      data: buf.subarray(o + NLMSG_HDRLEN, o + len),
    });
    o += align(len);
  }
  return out;
}

/** struct nlmsgerr's error field: 0 for an ACK, -errno otherwise. */
export function decodeNlError(data: Buffer): number {
  if (data.length < 4) throw new NetlinkFrameError('short NLMSG_ERROR');
  return new DataView(data.buffer, data.byteOffset, data.byteLength).getInt32(0, LE);
}

export function firstAttr(attrs: readonly NlAttr[], type: number): Buffer | undefined {
  for (const a of attrs) if (a.type === type) return a.data;
  return undefined;
}
