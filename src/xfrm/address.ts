/**
 * xfrm_address_t: a 16-byte union holding an IPv4 address in its first 4 bytes or an IPv6 address, network order.
 * Addresses are text in the decoded structs (IPv6 in the RFC 5952 canonical form `ip` prints).
 */
import { type AddressFamily, AF_INET, AF_INET6, SIZEOF_XFRM_ADDRESS } from './constants.js';

export function familyOf(addr: string): AddressFamily {
  return addr.includes(':') ? AF_INET6 : AF_INET;
}

export function anyAddress(family: number): string {
  return family === AF_INET6 ? '::' : '0.0.0.0';
}

function parseIPv4(s: string, out: Uint8Array, off: number): void {
  const parts = s.split('.');
  if (parts.length !== 4) throw new RangeError(`invalid IPv4 address '${s}'`);
  for (let i = 0; i < 4; i++) {
    const p = parts[i]!;
    if (!/^\d{1,3}$/.test(p)) throw new RangeError(`invalid IPv4 address '${s}'`);
    const n = Number(p);
    if (n > 255) throw new RangeError(`invalid IPv4 address '${s}'`);
    out[off + i] = n;
  }
}

function parseIPv6(s: string, out: Uint8Array, off: number): void {
  let text = s;
  // Embedded IPv4 tail (::ffff:192.0.2.1): rewrite it as two hex words.
  const lastColon = text.lastIndexOf(':');
  if (text.slice(lastColon + 1).includes('.')) {
    const v4 = new Uint8Array(4);
    parseIPv4(text.slice(lastColon + 1), v4, 0);
    const hi = ((v4[0]! << 8) | v4[1]!).toString(16);
    const lo = ((v4[2]! << 8) | v4[3]!).toString(16);
    text = `${text.slice(0, lastColon + 1)}${hi}:${lo}`;
  }
  const halves = text.split('::');
  if (halves.length > 2) throw new RangeError(`invalid IPv6 address '${s}'`);
  const parseHalf = (h: string): number[] =>
    h === ''
      ? []
      : h.split(':').map((w) => {
          if (!/^[0-9a-fA-F]{1,4}$/.test(w)) throw new RangeError(`invalid IPv6 address '${s}'`);
          return Number.parseInt(w, 16);
        });
  const head = parseHalf(halves[0]!);
  const words: number[] = [];
  if (halves.length === 2) {
    const back = parseHalf(halves[1]!);
    const fill = 8 - head.length - back.length;
    if (fill < 1) throw new RangeError(`invalid IPv6 address '${s}'`);
    words.push(...head, ...new Array<number>(fill).fill(0), ...back);
  } else {
    words.push(...head);
  }
  if (words.length !== 8) throw new RangeError(`invalid IPv6 address '${s}'`);
  for (let i = 0; i < 8; i++) {
    out[off + 2 * i] = words[i]! >> 8;
    out[off + 2 * i + 1] = words[i]! & 0xff;
  }
}

/** Writes `addr` as xfrm_address_t (16 bytes, zero-filled) at `off`. */
export function writeAddress(buf: Uint8Array, off: number, addr: string, family: number): void {
  buf.fill(0, off, off + SIZEOF_XFRM_ADDRESS);
  if (family === AF_INET) parseIPv4(addr, buf, off);
  else if (family === AF_INET6) parseIPv6(addr, buf, off);
  else if (family !== 0) throw new RangeError(`unsupported address family ${family}`);
}

export function addressBytes(addr: string, family: number = familyOf(addr)): Buffer {
  const b = Buffer.alloc(16);
  writeAddress(b, 0, addr, family);
  return family === AF_INET ? b.subarray(0, 4) : b;
}

export function formatIPv4(buf: Uint8Array, off: number): string {
  return `${buf[off]}.${buf[off + 1]}.${buf[off + 2]}.${buf[off + 3]}`;
}

/** RFC 5952 canonical text: lower case, longest run (>= 2) of zero words compressed, first on ties. */
export function formatIPv6(buf: Uint8Array, off: number): string {
  const w: number[] = [];
  for (let i = 0; i < 8; i++) w.push((buf[off + 2 * i]! << 8) | buf[off + 2 * i + 1]!);
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (w[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && w[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (a: number[]): string => a.map((x) => x.toString(16)).join(':');
  if (bestStart < 0) return hex(w);
  return `${hex(w.slice(0, bestStart))}::${hex(w.slice(bestStart + bestLen))}`;
}

/** Reads xfrm_address_t at `off` as text for `family` (AF_UNSPEC reads as IPv4 any). */
export function readAddress(buf: Uint8Array, off: number, family: number): string {
  return family === AF_INET6 ? formatIPv6(buf, off) : formatIPv4(buf, off);
}

const canonCache = new Map<string, string>();

/** Canonical text of an address (for comparisons): parses and re-formats (memoised: diffs compare many). */
export function canonicalAddress(addr: string): string {
  let c = canonCache.get(addr);
  if (c !== undefined) return c;
  const f = familyOf(addr);
  const b = new Uint8Array(16);
  writeAddress(b, 0, addr, f);
  c = readAddress(b, 0, f);
  if (canonCache.size >= 1 << 16) canonCache.clear();
  canonCache.set(addr, c);
  return c;
}
