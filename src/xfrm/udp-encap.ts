/**
 * NAT-T: setsockopt(fd, SOL_UDP, UDP_ENCAP, UDP_ENCAP_ESPINUDP) on the IKE port-4500 socket, so the kernel takes
 * ESP-in-UDP datagrams (RFC 3948) off that socket and decapsulates them, while IKE messages (non-ESP marker 0) still
 * reach the socket. Node's dgram cannot set this option.
 *
 * Choice: npm `sockopt` rather than an N-API addon of our own. It ships a prebuilt N-API (ABI-stable) linux-x64
 * binary that node-gyp-build loads at run time, so it needs no install script (denied in package.json allowScripts,
 * like `netlink`), no compiler and no node headers on CI or in the container image; its whole native surface is
 * integer get/setsockopt (~60 lines of C++), which is exactly what UDP_ENCAP takes. Its limit — integer values only —
 * rules out per-socket IP_XFRM_POLICY (a struct), which is why IKE bypass uses port-bypass policies (policies.ts).
 * An own addon would need a build step (node-gyp, headers) on every machine for the same one call.
 */
import type { Socket } from 'node:dgram';
import { createRequire } from 'node:module';
import { SOL_UDP, UDP_ENCAP, UDP_ENCAP_ESPINUDP } from './constants.js';

interface SockoptModule {
  setsockopt(socket: { _handle: { fd: number } }, level: number, name: number, value: number): void;
  getsockopt(socket: { _handle: { fd: number } }, level: number, name: number): number;
}

let mod: SockoptModule | undefined;
function sockopt(): SockoptModule {
  mod ??= createRequire(import.meta.url)('sockopt') as SockoptModule;
  return mod;
}

/**
 * The file descriptor of a bound dgram socket. dgram keeps its handle under a private symbol; `_handle` is the
 * deprecated public alias (DEP0112), used only as a fallback to avoid the deprecation warning.
 */
export function dgramFd(socket: Socket): number {
  const sym = Object.getOwnPropertySymbols(socket).find((s) => s.description === 'state symbol');
  const state = sym ? (socket as unknown as Record<symbol, { handle?: { fd?: number } }>)[sym] : undefined;
  const fd = state?.handle?.fd ?? (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) throw new Error('dgram socket has no file descriptor yet: bind() it first');
  return fd;
}

/** Enables kernel ESP-in-UDP decapsulation on a bound UDP socket (IPv4 or IPv6). */
export function enableEspInUdp(socket: Socket): void {
  sockopt().setsockopt({ _handle: { fd: dgramFd(socket) } }, SOL_UDP, UDP_ENCAP, UDP_ENCAP_ESPINUDP);
}

/** Reads the socket's UDP_ENCAP type (0 when off). */
export function udpEncapType(socket: Socket): number {
  return sockopt().getsockopt({ _handle: { fd: dgramFd(socket) } }, SOL_UDP, UDP_ENCAP);
}
