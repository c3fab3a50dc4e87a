/**
 * Pure codecs for the kernel's XFRM structs (linux/xfrm.h), named after the C structs.
 * Host byte order for the kernel's native integers; network order where the header says __be16/__be32 (ports, SPI).
 * Offsets are those of x86_64/arm64 (see SIZEOF_* in constants.ts). Each `encodeX` returns a fresh Buffer of exactly
 * sizeof(struct x); each `decodeX(buf, off)` reads one at `off`.
 */
import { endianness } from 'node:os';
import { readAddress, writeAddress } from './address.js';
import {
  AF_INET,
  SIZEOF_XFRM_ENCAP_TMPL,
  SIZEOF_XFRM_ID,
  SIZEOF_XFRM_LIFETIME_CFG,
  SIZEOF_XFRM_LIFETIME_CUR,
  SIZEOF_XFRM_MARK,
  SIZEOF_XFRM_REPLAY_STATE_ESN,
  SIZEOF_XFRM_SELECTOR,
  SIZEOF_XFRM_USER_ACQUIRE,
  SIZEOF_XFRM_USER_EXPIRE,
  SIZEOF_XFRM_USER_POLEXPIRE,
  SIZEOF_XFRM_USER_TMPL,
  SIZEOF_XFRM_USERPOLICY_ID,
  SIZEOF_XFRM_USERPOLICY_INFO,
  SIZEOF_XFRM_USERPOLICY_TYPE,
  SIZEOF_XFRM_USERSA_ID,
  SIZEOF_XFRM_USERSA_INFO,
  SIZEOF_XFRM_USERSPI_INFO,
  XFRM_ALG_NAME_LEN,
  XFRM_INF,
  XFRM_SHARE_ANY,
} from './constants.js';

const LE = endianness() === 'LE';

export class StructError extends Error {
  override name = 'StructError';
}

function need(buf: Uint8Array, off: number, len: number, what: string): void {
  if (off < 0 || off + len > buf.length) {
    throw new StructError(`${what}: need ${len} bytes at offset ${off}, have ${buf.length - off}`);
  }
}

function view(buf: Uint8Array): DataView {
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
}

const u16 = (d: DataView, o: number): number => d.getUint16(o, LE);
const u32 = (d: DataView, o: number): number => d.getUint32(o, LE);
const u64 = (d: DataView, o: number): bigint => d.getBigUint64(o, LE);
const s32 = (d: DataView, o: number): number => d.getInt32(o, LE);
const setU16 = (d: DataView, o: number, v: number): void => d.setUint16(o, v, LE);
const setU32 = (d: DataView, o: number, v: number): void => d.setUint32(o, v >>> 0, LE);
const setU64 = (d: DataView, o: number, v: bigint): void => d.setBigUint64(o, v, LE);

// ---- struct xfrm_selector (56 bytes) -----------------------------------------------------------------------------
/**
 * struct xfrm_selector {
 *   xfrm_address_t daddr;      0     xfrm_address_t saddr;  16
 *   __be16 dport;  32          __be16 dport_mask; 34     __be16 sport; 36   __be16 sport_mask; 38
 *   __u16 family;  40          __u8 prefixlen_d;  42     __u8 prefixlen_s; 43   __u8 proto; 44
 *   int ifindex;   48          __kernel_uid32_t user; 52
 * };
 */
export interface XfrmSelector {
  daddr: string;
  saddr: string;
  dport: number;
  dportMask: number;
  sport: number;
  sportMask: number;
  family: number;
  prefixlenD: number;
  prefixlenS: number;
  proto: number;
  ifindex: number;
  user: number;
}

export function writeXfrmSelector(buf: Uint8Array, off: number, s: XfrmSelector): void {
  need(buf, off, SIZEOF_XFRM_SELECTOR, 'xfrm_selector');
  const d = view(buf);
  writeAddress(buf, off, s.daddr, s.family);
  writeAddress(buf, off + 16, s.saddr, s.family);
  d.setUint16(off + 32, s.dport);
  d.setUint16(off + 34, s.dportMask);
  d.setUint16(off + 36, s.sport);
  d.setUint16(off + 38, s.sportMask);
  setU16(d, off + 40, s.family);
  buf[off + 42] = s.prefixlenD;
  buf[off + 43] = s.prefixlenS;
  buf[off + 44] = s.proto;
  d.setInt32(off + 48, s.ifindex, LE);
  setU32(d, off + 52, s.user);
}

export function decodeXfrmSelector(buf: Uint8Array, off = 0): XfrmSelector {
  need(buf, off, SIZEOF_XFRM_SELECTOR, 'xfrm_selector');
  const d = view(buf);
  const family = u16(d, off + 40);
  return {
    daddr: readAddress(buf, off, family),
    saddr: readAddress(buf, off + 16, family),
    dport: d.getUint16(off + 32),
    dportMask: d.getUint16(off + 34),
    sport: d.getUint16(off + 36),
    sportMask: d.getUint16(off + 38),
    family,
    prefixlenD: buf[off + 42]!,
    prefixlenS: buf[off + 43]!,
    proto: buf[off + 44]!,
    ifindex: s32(d, off + 48),
    user: u32(d, off + 52),
  };
}

export function encodeXfrmSelector(s: XfrmSelector): Buffer {
  const b = Buffer.alloc(SIZEOF_XFRM_SELECTOR);
  writeXfrmSelector(b, 0, s);
  return b;
}

/** A selector with every field zero except the family and `any` addresses; override what you need. */
export function xfrmSelector(p: Partial<XfrmSelector> & { family: number }): XfrmSelector {
  const any = p.family === AF_INET ? '0.0.0.0' : '::';
  return {
    daddr: any,
    saddr: any,
    dport: 0,
    dportMask: 0,
    sport: 0,
    sportMask: 0,
    prefixlenD: 0,
    prefixlenS: 0,
    proto: 0,
    ifindex: 0,
    user: 0,
    ...p,
  };
}

// ---- struct xfrm_id (24 bytes) -------------------------------------------------------------------------------------
/** struct xfrm_id { xfrm_address_t daddr; __be32 spi; __u8 proto; }  — the family is the enclosing struct's. */
export interface XfrmId {
  daddr: string;
  spi: number;
  proto: number;
}

export function writeXfrmId(buf: Uint8Array, off: number, id: XfrmId, family: number): void {
  need(buf, off, SIZEOF_XFRM_ID, 'xfrm_id');
  writeAddress(buf, off, id.daddr, family);
  view(buf).setUint32(off + 16, id.spi >>> 0);
  buf[off + 20] = id.proto;
}

export function decodeXfrmId(buf: Uint8Array, off: number, family: number): XfrmId {
  need(buf, off, SIZEOF_XFRM_ID, 'xfrm_id');
  return { daddr: readAddress(buf, off, family), spi: view(buf).getUint32(off + 16), proto: buf[off + 20]! };
}

// ---- struct xfrm_lifetime_cfg (64 bytes) / xfrm_lifetime_cur (32 bytes) ----------------------------------------------
export interface XfrmLifetimeCfg {
  softByteLimit: bigint;
  hardByteLimit: bigint;
  softPacketLimit: bigint;
  hardPacketLimit: bigint;
  softAddExpiresSeconds: bigint;
  hardAddExpiresSeconds: bigint;
  softUseExpiresSeconds: bigint;
  hardUseExpiresSeconds: bigint;
}

const LFT_CFG_KEYS = [
  'softByteLimit',
  'hardByteLimit',
  'softPacketLimit',
  'hardPacketLimit',
  'softAddExpiresSeconds',
  'hardAddExpiresSeconds',
  'softUseExpiresSeconds',
  'hardUseExpiresSeconds',
] as const satisfies readonly (keyof XfrmLifetimeCfg)[];

/** Byte and packet limits infinite (XFRM_INF), time limits 0 (= none), as `ip xfrm` sets them. */
export function xfrmLifetimeCfg(p: Partial<XfrmLifetimeCfg> = {}): XfrmLifetimeCfg {
  return {
    softByteLimit: XFRM_INF,
    hardByteLimit: XFRM_INF,
    softPacketLimit: XFRM_INF,
    hardPacketLimit: XFRM_INF,
    softAddExpiresSeconds: 0n,
    hardAddExpiresSeconds: 0n,
    softUseExpiresSeconds: 0n,
    hardUseExpiresSeconds: 0n,
    ...p,
  };
}

export function writeXfrmLifetimeCfg(buf: Uint8Array, off: number, l: XfrmLifetimeCfg): void {
  need(buf, off, SIZEOF_XFRM_LIFETIME_CFG, 'xfrm_lifetime_cfg');
  const d = view(buf);
  LFT_CFG_KEYS.forEach((k, i) => {
    setU64(d, off + 8 * i, l[k]);
  });
}

export function decodeXfrmLifetimeCfg(buf: Uint8Array, off = 0): XfrmLifetimeCfg {
  need(buf, off, SIZEOF_XFRM_LIFETIME_CFG, 'xfrm_lifetime_cfg');
  const d = view(buf);
  const out = {} as XfrmLifetimeCfg;
  LFT_CFG_KEYS.forEach((k, i) => {
    out[k] = u64(d, off + 8 * i);
  });
  return out;
}

/** struct xfrm_lifetime_cur { __u64 bytes; __u64 packets; __u64 add_time; __u64 use_time; } */
export interface XfrmLifetimeCur {
  bytes: bigint;
  packets: bigint;
  addTime: bigint;
  useTime: bigint;
}

export function xfrmLifetimeCur(): XfrmLifetimeCur {
  return { bytes: 0n, packets: 0n, addTime: 0n, useTime: 0n };
}

export function writeXfrmLifetimeCur(buf: Uint8Array, off: number, c: XfrmLifetimeCur): void {
  need(buf, off, SIZEOF_XFRM_LIFETIME_CUR, 'xfrm_lifetime_cur');
  const d = view(buf);
  setU64(d, off, c.bytes);
  setU64(d, off + 8, c.packets);
  setU64(d, off + 16, c.addTime);
  setU64(d, off + 24, c.useTime);
}

export function decodeXfrmLifetimeCur(buf: Uint8Array, off = 0): XfrmLifetimeCur {
  need(buf, off, SIZEOF_XFRM_LIFETIME_CUR, 'xfrm_lifetime_cur');
  const d = view(buf);
  return { bytes: u64(d, off), packets: u64(d, off + 8), addTime: u64(d, off + 16), useTime: u64(d, off + 24) };
}

// ---- struct xfrm_stats (12 bytes) ------------------------------------------------------------------------------------
export interface XfrmStats {
  replayWindow: number;
  replay: number;
  integrityFailed: number;
}

// ---- struct xfrm_usersa_info (224 bytes) -------------------------------------------------------------------------------
/**
 * struct xfrm_usersa_info {
 *   struct xfrm_selector sel;        0    struct xfrm_id id;               56   xfrm_address_t saddr;  80
 *   struct xfrm_lifetime_cfg lft;    96   struct xfrm_lifetime_cur curlft; 160  struct xfrm_stats stats; 192
 *   __u32 seq; 204   __u32 reqid; 208   __u16 family; 212   __u8 mode; 214   __u8 replay_window; 215   __u8 flags; 216
 * };
 */
export interface XfrmUsersaInfo {
  sel: XfrmSelector;
  id: XfrmId;
  saddr: string;
  lft: XfrmLifetimeCfg;
  curlft: XfrmLifetimeCur;
  stats: XfrmStats;
  seq: number;
  reqid: number;
  family: number;
  mode: number;
  replayWindow: number;
  flags: number;
}

export function writeXfrmUsersaInfo(buf: Uint8Array, off: number, s: XfrmUsersaInfo): void {
  need(buf, off, SIZEOF_XFRM_USERSA_INFO, 'xfrm_usersa_info');
  const d = view(buf);
  writeXfrmSelector(buf, off, s.sel);
  writeXfrmId(buf, off + 56, s.id, s.family);
  writeAddress(buf, off + 80, s.saddr, s.family);
  writeXfrmLifetimeCfg(buf, off + 96, s.lft);
  writeXfrmLifetimeCur(buf, off + 160, s.curlft);
  setU32(d, off + 192, s.stats.replayWindow);
  setU32(d, off + 196, s.stats.replay);
  setU32(d, off + 200, s.stats.integrityFailed);
  setU32(d, off + 204, s.seq);
  setU32(d, off + 208, s.reqid);
  setU16(d, off + 212, s.family);
  buf[off + 214] = s.mode;
  buf[off + 215] = s.replayWindow;
  buf[off + 216] = s.flags;
}

export function encodeXfrmUsersaInfo(s: XfrmUsersaInfo): Buffer {
  const b = Buffer.alloc(SIZEOF_XFRM_USERSA_INFO);
  writeXfrmUsersaInfo(b, 0, s);
  return b;
}

export function decodeXfrmUsersaInfo(buf: Uint8Array, off = 0): XfrmUsersaInfo {
  need(buf, off, SIZEOF_XFRM_USERSA_INFO, 'xfrm_usersa_info');
  const d = view(buf);
  const family = u16(d, off + 212);
  return {
    sel: decodeXfrmSelector(buf, off),
    id: decodeXfrmId(buf, off + 56, family),
    saddr: readAddress(buf, off + 80, family),
    lft: decodeXfrmLifetimeCfg(buf, off + 96),
    curlft: decodeXfrmLifetimeCur(buf, off + 160),
    stats: { replayWindow: u32(d, off + 192), replay: u32(d, off + 196), integrityFailed: u32(d, off + 200) },
    seq: u32(d, off + 204),
    reqid: u32(d, off + 208),
    family,
    mode: buf[off + 214]!,
    replayWindow: buf[off + 215]!,
    flags: buf[off + 216]!,
  };
}

// ---- struct xfrm_usersa_id (24 bytes) ----------------------------------------------------------------------------------
/** struct xfrm_usersa_id { xfrm_address_t daddr; __be32 spi; __u16 family; __u8 proto; } */
export interface XfrmUsersaId {
  daddr: string;
  spi: number;
  family: number;
  proto: number;
}

export function encodeXfrmUsersaId(s: XfrmUsersaId): Buffer {
  const b = Buffer.alloc(SIZEOF_XFRM_USERSA_ID);
  const d = view(b);
  writeAddress(b, 0, s.daddr, s.family);
  d.setUint32(16, s.spi >>> 0);
  setU16(d, 20, s.family);
  b[22] = s.proto;
  return b;
}

export function decodeXfrmUsersaId(buf: Uint8Array, off = 0): XfrmUsersaId {
  need(buf, off, SIZEOF_XFRM_USERSA_ID, 'xfrm_usersa_id');
  const d = view(buf);
  const family = u16(d, off + 20);
  return { daddr: readAddress(buf, off, family), spi: d.getUint32(off + 16), family, proto: buf[off + 22]! };
}

// ---- struct xfrm_userspi_info (232 bytes) ------------------------------------------------------------------------------
/** struct xfrm_userspi_info { struct xfrm_usersa_info info; __u32 min; __u32 max; } */
export interface XfrmUserspiInfo {
  info: XfrmUsersaInfo;
  min: number;
  max: number;
}

export function encodeXfrmUserspiInfo(s: XfrmUserspiInfo): Buffer {
  const b = Buffer.alloc(SIZEOF_XFRM_USERSPI_INFO);
  writeXfrmUsersaInfo(b, 0, s.info);
  const d = view(b);
  setU32(d, 224, s.min);
  setU32(d, 228, s.max);
  return b;
}

export function decodeXfrmUserspiInfo(buf: Uint8Array, off = 0): XfrmUserspiInfo {
  need(buf, off, SIZEOF_XFRM_USERSPI_INFO, 'xfrm_userspi_info');
  const d = view(buf);
  return { info: decodeXfrmUsersaInfo(buf, off), min: u32(d, off + 224), max: u32(d, off + 228) };
}

// ---- struct xfrm_userpolicy_info (168 bytes) ---------------------------------------------------------------------------
/**
 * struct xfrm_userpolicy_info {
 *   struct xfrm_selector sel; 0   struct xfrm_lifetime_cfg lft; 56   struct xfrm_lifetime_cur curlft; 120
 *   __u32 priority; 152   __u32 index; 156   __u8 dir; 160   __u8 action; 161   __u8 flags; 162   __u8 share; 163
 * };
 */
export interface XfrmUserpolicyInfo {
  sel: XfrmSelector;
  lft: XfrmLifetimeCfg;
  curlft: XfrmLifetimeCur;
  priority: number;
  index: number;
  dir: number;
  action: number;
  flags: number;
  share: number;
}

export function writeXfrmUserpolicyInfo(buf: Uint8Array, off: number, p: XfrmUserpolicyInfo): void {
  need(buf, off, SIZEOF_XFRM_USERPOLICY_INFO, 'xfrm_userpolicy_info');
  const d = view(buf);
  writeXfrmSelector(buf, off, p.sel);
  writeXfrmLifetimeCfg(buf, off + 56, p.lft);
  writeXfrmLifetimeCur(buf, off + 120, p.curlft);
  setU32(d, off + 152, p.priority);
  setU32(d, off + 156, p.index);
  buf[off + 160] = p.dir;
  buf[off + 161] = p.action;
  buf[off + 162] = p.flags;
  buf[off + 163] = p.share;
}

export function encodeXfrmUserpolicyInfo(p: XfrmUserpolicyInfo): Buffer {
  const b = Buffer.alloc(SIZEOF_XFRM_USERPOLICY_INFO);
  writeXfrmUserpolicyInfo(b, 0, p);
  return b;
}

export function decodeXfrmUserpolicyInfo(buf: Uint8Array, off = 0): XfrmUserpolicyInfo {
  need(buf, off, SIZEOF_XFRM_USERPOLICY_INFO, 'xfrm_userpolicy_info');
  const d = view(buf);
  return {
    sel: decodeXfrmSelector(buf, off),
    lft: decodeXfrmLifetimeCfg(buf, off + 56),
    curlft: decodeXfrmLifetimeCur(buf, off + 120),
    priority: u32(d, off + 152),
    index: u32(d, off + 156),
    dir: buf[off + 160]!,
    action: buf[off + 161]!,
    flags: buf[off + 162]!,
    share: buf[off + 163]!,
  };
}

export function xfrmUserpolicyInfo(
  p: Partial<XfrmUserpolicyInfo> & { sel: XfrmSelector; dir: number },
): XfrmUserpolicyInfo {
  return {
    lft: xfrmLifetimeCfg(),
    curlft: xfrmLifetimeCur(),
    priority: 0,
    index: 0,
    action: 0,
    flags: 0,
    share: XFRM_SHARE_ANY,
    ...p,
  };
}

// ---- struct xfrm_userpolicy_id (64 bytes) ------------------------------------------------------------------------------
/** struct xfrm_userpolicy_id { struct xfrm_selector sel; __u32 index; __u8 dir; } */
export interface XfrmUserpolicyId {
  sel: XfrmSelector;
  index: number;
  dir: number;
}

export function encodeXfrmUserpolicyId(p: XfrmUserpolicyId): Buffer {
  const b = Buffer.alloc(SIZEOF_XFRM_USERPOLICY_ID);
  writeXfrmSelector(b, 0, p.sel);
  setU32(view(b), 56, p.index);
  b[60] = p.dir;
  return b;
}

export function decodeXfrmUserpolicyId(buf: Uint8Array, off = 0): XfrmUserpolicyId {
  need(buf, off, SIZEOF_XFRM_USERPOLICY_ID, 'xfrm_userpolicy_id');
  return { sel: decodeXfrmSelector(buf, off), index: u32(view(buf), off + 56), dir: buf[off + 60]! };
}

// ---- struct xfrm_user_tmpl (64 bytes) ----------------------------------------------------------------------------------
/**
 * struct xfrm_user_tmpl {
 *   struct xfrm_id id; 0   __u16 family; 24   xfrm_address_t saddr; 28   __u32 reqid; 44
 *   __u8 mode; 48   __u8 share; 49   __u8 optional; 50   __u32 aalgos; 52   __u32 ealgos; 56   __u32 calgos; 60
 * };
 */
export interface XfrmUserTmpl {
  id: XfrmId;
  family: number;
  saddr: string;
  reqid: number;
  mode: number;
  share: number;
  optional: number;
  aalgos: number;
  ealgos: number;
  calgos: number;
}

export function writeXfrmUserTmpl(buf: Uint8Array, off: number, t: XfrmUserTmpl): void {
  need(buf, off, SIZEOF_XFRM_USER_TMPL, 'xfrm_user_tmpl');
  const d = view(buf);
  writeXfrmId(buf, off, t.id, t.family);
  setU16(d, off + 24, t.family);
  writeAddress(buf, off + 28, t.saddr, t.family);
  setU32(d, off + 44, t.reqid);
  buf[off + 48] = t.mode;
  buf[off + 49] = t.share;
  buf[off + 50] = t.optional;
  setU32(d, off + 52, t.aalgos);
  setU32(d, off + 56, t.ealgos);
  setU32(d, off + 60, t.calgos);
}

export function decodeXfrmUserTmpl(buf: Uint8Array, off = 0): XfrmUserTmpl {
  need(buf, off, SIZEOF_XFRM_USER_TMPL, 'xfrm_user_tmpl');
  const d = view(buf);
  const family = u16(d, off + 24);
  return {
    id: decodeXfrmId(buf, off, family),
    family,
    saddr: readAddress(buf, off + 28, family),
    reqid: u32(d, off + 44),
    mode: buf[off + 48]!,
    share: buf[off + 49]!,
    optional: buf[off + 50]!,
    aalgos: u32(d, off + 52),
    ealgos: u32(d, off + 56),
    calgos: u32(d, off + 60),
  };
}

/** XFRMA_TMPL payload: an array of xfrm_user_tmpl. */
export function encodeXfrmUserTmpls(ts: readonly XfrmUserTmpl[]): Buffer {
  const b = Buffer.alloc(SIZEOF_XFRM_USER_TMPL * ts.length);
  ts.forEach((t, i) => {
    writeXfrmUserTmpl(b, i * SIZEOF_XFRM_USER_TMPL, t);
  });
  return b;
}

export function decodeXfrmUserTmpls(buf: Uint8Array): XfrmUserTmpl[] {
  if (buf.length % SIZEOF_XFRM_USER_TMPL !== 0) throw new StructError(`XFRMA_TMPL length ${buf.length}`);
  const out: XfrmUserTmpl[] = [];
  for (let o = 0; o < buf.length; o += SIZEOF_XFRM_USER_TMPL) out.push(decodeXfrmUserTmpl(buf, o));
  return out;
}

// ---- struct xfrm_user_expire (232) / xfrm_user_polexpire (176) / xfrm_user_acquire (280) ------------------------------
/** struct xfrm_user_expire { struct xfrm_usersa_info state; __u8 hard; } */
export interface XfrmUserExpire {
  state: XfrmUsersaInfo;
  hard: number;
}

export function encodeXfrmUserExpire(e: XfrmUserExpire): Buffer {
  const b = Buffer.alloc(SIZEOF_XFRM_USER_EXPIRE);
  writeXfrmUsersaInfo(b, 0, e.state);
  b[224] = e.hard;
  return b;
}

export function decodeXfrmUserExpire(buf: Uint8Array, off = 0): XfrmUserExpire {
  need(buf, off, SIZEOF_XFRM_USER_EXPIRE - 7, 'xfrm_user_expire');
  return { state: decodeXfrmUsersaInfo(buf, off), hard: buf[off + 224]! };
}

/** struct xfrm_user_polexpire { struct xfrm_userpolicy_info pol; __u8 hard; } */
export interface XfrmUserPolexpire {
  pol: XfrmUserpolicyInfo;
  hard: number;
}

export function decodeXfrmUserPolexpire(buf: Uint8Array, off = 0): XfrmUserPolexpire {
  need(buf, off, SIZEOF_XFRM_USER_POLEXPIRE - 7, 'xfrm_user_polexpire');
  return { pol: decodeXfrmUserpolicyInfo(buf, off), hard: buf[off + 168]! };
}

/**
 * struct xfrm_user_acquire {
 *   struct xfrm_id id; 0   xfrm_address_t saddr; 24   struct xfrm_selector sel; 40
 *   struct xfrm_userpolicy_info policy; 96   __u32 aalgos; 264   __u32 ealgos; 268   __u32 calgos; 272   __u32 seq; 276
 * };
 */
export interface XfrmUserAcquire {
  id: XfrmId;
  saddr: string;
  sel: XfrmSelector;
  policy: XfrmUserpolicyInfo;
  aalgos: number;
  ealgos: number;
  calgos: number;
  seq: number;
}

export function encodeXfrmUserAcquire(a: XfrmUserAcquire): Buffer {
  const b = Buffer.alloc(SIZEOF_XFRM_USER_ACQUIRE);
  const d = view(b);
  writeXfrmId(b, 0, a.id, a.sel.family);
  writeAddress(b, 24, a.saddr, a.sel.family);
  writeXfrmSelector(b, 40, a.sel);
  writeXfrmUserpolicyInfo(b, 96, a.policy);
  setU32(d, 264, a.aalgos);
  setU32(d, 268, a.ealgos);
  setU32(d, 272, a.calgos);
  setU32(d, 276, a.seq);
  return b;
}

export function decodeXfrmUserAcquire(buf: Uint8Array, off = 0): XfrmUserAcquire {
  need(buf, off, SIZEOF_XFRM_USER_ACQUIRE, 'xfrm_user_acquire');
  const d = view(buf);
  const sel = decodeXfrmSelector(buf, off + 40);
  return {
    id: decodeXfrmId(buf, off, sel.family),
    saddr: readAddress(buf, off + 24, sel.family),
    sel,
    policy: decodeXfrmUserpolicyInfo(buf, off + 96),
    aalgos: u32(d, off + 264),
    ealgos: u32(d, off + 268),
    calgos: u32(d, off + 272),
    seq: u32(d, off + 276),
  };
}

// ---- attribute payload structs -----------------------------------------------------------------------------------------
function writeAlgName(buf: Uint8Array, name: string): void {
  const n = Buffer.from(name, 'latin1');
  if (n.length >= XFRM_ALG_NAME_LEN) throw new StructError(`algorithm name too long: ${name}`);
  buf.set(n, 0);
}

function readAlgName(buf: Uint8Array, off: number): string {
  const end = buf.indexOf(0, off);
  const stop = end < 0 || end > off + XFRM_ALG_NAME_LEN ? off + XFRM_ALG_NAME_LEN : end;
  return Buffer.from(buf.subarray(off, stop)).toString('latin1');
}

/** struct xfrm_algo { char alg_name[64]; unsigned int alg_key_len; /* bits *\/ char alg_key[]; } (XFRMA_ALG_CRYPT) */
export interface XfrmAlgo {
  name: string;
  key: Buffer;
}

export function encodeXfrmAlgo(a: XfrmAlgo): Buffer {
  const b = Buffer.alloc(68 + a.key.length);
  writeAlgName(b, a.name);
  setU32(view(b), 64, a.key.length * 8);
  b.set(a.key, 68);
  return b;
}

export function decodeXfrmAlgo(buf: Uint8Array): XfrmAlgo {
  need(buf, 0, 68, 'xfrm_algo');
  const bits = u32(view(buf), 64);
  const len = Math.ceil(bits / 8);
  need(buf, 68, len, 'xfrm_algo key');
  return { name: readAlgName(buf, 0), key: Buffer.from(buf.subarray(68, 68 + len)) };
}

/** struct xfrm_algo_auth { char alg_name[64]; unsigned int alg_key_len; unsigned int alg_trunc_len; char alg_key[]; } */
export interface XfrmAlgoAuth {
  name: string;
  key: Buffer;
  /** ICV length in bits (e.g. 128 for HMAC-SHA2-256-128, RFC 4868). */
  truncLen: number;
}

export function encodeXfrmAlgoAuth(a: XfrmAlgoAuth): Buffer {
  const b = Buffer.alloc(72 + a.key.length);
  writeAlgName(b, a.name);
  const d = view(b);
  setU32(d, 64, a.key.length * 8);
  setU32(d, 68, a.truncLen);
  b.set(a.key, 72);
  return b;
}

export function decodeXfrmAlgoAuth(buf: Uint8Array): XfrmAlgoAuth {
  need(buf, 0, 72, 'xfrm_algo_auth');
  const d = view(buf);
  const len = Math.ceil(u32(d, 64) / 8);
  need(buf, 72, len, 'xfrm_algo_auth key');
  return { name: readAlgName(buf, 0), truncLen: u32(d, 68), key: Buffer.from(buf.subarray(72, 72 + len)) };
}

/** struct xfrm_algo_aead { char alg_name[64]; unsigned int alg_key_len; unsigned int alg_icv_len; char alg_key[]; } */
export interface XfrmAlgoAead {
  name: string;
  /** Key including the salt (e.g. 20 bytes for AES-128-GCM: 16 key + 4 salt, RFC 4106). */
  key: Buffer;
  /** ICV length in bits. */
  icvLen: number;
}

export function encodeXfrmAlgoAead(a: XfrmAlgoAead): Buffer {
  const b = Buffer.alloc(72 + a.key.length);
  writeAlgName(b, a.name);
  const d = view(b);
  setU32(d, 64, a.key.length * 8);
  setU32(d, 68, a.icvLen);
  b.set(a.key, 72);
  return b;
}

export function decodeXfrmAlgoAead(buf: Uint8Array): XfrmAlgoAead {
  need(buf, 0, 72, 'xfrm_algo_aead');
  const d = view(buf);
  const len = Math.ceil(u32(d, 64) / 8);
  need(buf, 72, len, 'xfrm_algo_aead key');
  return { name: readAlgName(buf, 0), icvLen: u32(d, 68), key: Buffer.from(buf.subarray(72, 72 + len)) };
}

/** struct xfrm_encap_tmpl { __u16 encap_type; __be16 encap_sport; __be16 encap_dport; xfrm_address_t encap_oa; } */
export interface XfrmEncapTmpl {
  type: number;
  sport: number;
  dport: number;
  /** NAT-OA (original address); 'any' when unused. */
  oa: string;
}

export function encodeXfrmEncapTmpl(e: XfrmEncapTmpl, family: number): Buffer {
  const b = Buffer.alloc(SIZEOF_XFRM_ENCAP_TMPL);
  const d = view(b);
  setU16(d, 0, e.type);
  d.setUint16(2, e.sport);
  d.setUint16(4, e.dport);
  writeAddress(b, 8, e.oa, family);
  return b;
}

export function decodeXfrmEncapTmpl(buf: Uint8Array, family: number): XfrmEncapTmpl {
  need(buf, 0, SIZEOF_XFRM_ENCAP_TMPL, 'xfrm_encap_tmpl');
  const d = view(buf);
  return { type: u16(d, 0), sport: d.getUint16(2), dport: d.getUint16(4), oa: readAddress(buf, 8, family) };
}

/** struct xfrm_mark { __u32 v; __u32 m; } */
export interface XfrmMark {
  v: number;
  m: number;
}

export function encodeXfrmMark(m: XfrmMark): Buffer {
  const b = Buffer.alloc(SIZEOF_XFRM_MARK);
  const d = view(b);
  setU32(d, 0, m.v);
  setU32(d, 4, m.m);
  return b;
}

export function decodeXfrmMark(buf: Uint8Array): XfrmMark {
  need(buf, 0, SIZEOF_XFRM_MARK, 'xfrm_mark');
  const d = view(buf);
  return { v: u32(d, 0), m: u32(d, 4) };
}

/**
 * struct xfrm_replay_state_esn {
 *   unsigned int bmp_len; __u32 oseq; __u32 seq; __u32 oseq_hi; __u32 seq_hi; __u32 replay_window; __u32 bmp[];
 * };  bmp_len counts 32-bit words of the bitmap.
 */
export interface XfrmReplayStateEsn {
  oseq: number;
  seq: number;
  oseqHi: number;
  seqHi: number;
  replayWindow: number;
  bmp: number[];
}

export function xfrmReplayStateEsn(replayWindow: number): XfrmReplayStateEsn {
  return { oseq: 0, seq: 0, oseqHi: 0, seqHi: 0, replayWindow, bmp: new Array(Math.ceil(replayWindow / 32)).fill(0) };
}

export function encodeXfrmReplayStateEsn(r: XfrmReplayStateEsn): Buffer {
  const b = Buffer.alloc(SIZEOF_XFRM_REPLAY_STATE_ESN + 4 * r.bmp.length);
  const d = view(b);
  setU32(d, 0, r.bmp.length);
  setU32(d, 4, r.oseq);
  setU32(d, 8, r.seq);
  setU32(d, 12, r.oseqHi);
  setU32(d, 16, r.seqHi);
  setU32(d, 20, r.replayWindow);
  r.bmp.forEach((w, i) => {
    setU32(d, 24 + 4 * i, w);
  });
  return b;
}

export function decodeXfrmReplayStateEsn(buf: Uint8Array): XfrmReplayStateEsn {
  need(buf, 0, SIZEOF_XFRM_REPLAY_STATE_ESN, 'xfrm_replay_state_esn');
  const d = view(buf);
  const n = u32(d, 0);
  need(buf, 24, 4 * n, 'xfrm_replay_state_esn bitmap');
  const bmp: number[] = [];
  for (let i = 0; i < n; i++) bmp.push(u32(d, 24 + 4 * i));
  return { oseq: u32(d, 4), seq: u32(d, 8), oseqHi: u32(d, 12), seqHi: u32(d, 16), replayWindow: u32(d, 20), bmp };
}

/** struct xfrm_userpolicy_type { __u8 type; __u16 reserved1; __u8 reserved2; } */
export function encodeXfrmUserpolicyType(type: number): Buffer {
  const b = Buffer.alloc(SIZEOF_XFRM_USERPOLICY_TYPE);
  b[0] = type;
  return b;
}

export function decodeXfrmUserpolicyType(buf: Uint8Array): number {
  need(buf, 0, 1, 'xfrm_userpolicy_type');
  return buf[0]!;
}

export function encodeU32(v: number): Buffer {
  const b = Buffer.alloc(4);
  setU32(view(b), 0, v);
  return b;
}

export function decodeU32(buf: Uint8Array): number {
  need(buf, 0, 4, 'u32');
  return u32(view(buf), 0);
}

export function decodeU64(buf: Uint8Array): bigint {
  need(buf, 0, 8, 'u64');
  return u64(view(buf), 0);
}
