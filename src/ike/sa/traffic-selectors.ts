/**
 * Traffic selector negotiation (RFC 7296 §2.9): the responder narrows the initiator's proposal to the intersection
 * with its own policy; the initiator checks that what came back is inside what it proposed.
 * Only address-range selectors (TS_IPV4_ADDR_RANGE, TS_IPV6_ADDR_RANGE) take part; other types are ignored.
 */
import {
  type AddressRangeSelector,
  formatSelector,
  isAddressRange,
  type TrafficSelector,
} from '../codec/payloads/ts.js';

function cmp(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < a.length; i++) {
    const d = a[i]! - b[i]!;
    if (d !== 0) return d;
  }
  return 0;
}

/** Intersection of two selectors, or undefined when they do not overlap (including different families). */
export function intersect(a: AddressRangeSelector, b: AddressRangeSelector): AddressRangeSelector | undefined {
  if (a.tsType !== b.tsType || a.startAddress.length !== b.startAddress.length) return undefined;
  if (a.ipProtocol !== 0 && b.ipProtocol !== 0 && a.ipProtocol !== b.ipProtocol) return undefined;
  const startAddress = cmp(a.startAddress, b.startAddress) >= 0 ? a.startAddress : b.startAddress;
  const endAddress = cmp(a.endAddress, b.endAddress) <= 0 ? a.endAddress : b.endAddress;
  if (cmp(startAddress, endAddress) > 0) return undefined;
  const startPort = Math.max(a.startPort, b.startPort);
  const endPort = Math.min(a.endPort, b.endPort);
  // An OPAQUE port range (start 65535, end 0) is an empty range on purpose (RFC 7296 §3.13.1); it never matches.
  if (startPort > endPort) return undefined;
  return {
    tsType: a.tsType,
    ipProtocol: a.ipProtocol !== 0 ? a.ipProtocol : b.ipProtocol,
    startPort,
    endPort,
    startAddress: startAddress.slice(),
    endAddress: endAddress.slice(),
  };
}

/** Whether `inner` lies entirely within `outer`. */
export function contains(outer: AddressRangeSelector, inner: AddressRangeSelector): boolean {
  return (
    outer.tsType === inner.tsType &&
    outer.startAddress.length === inner.startAddress.length &&
    (outer.ipProtocol === 0 || outer.ipProtocol === inner.ipProtocol) &&
    cmp(outer.startAddress, inner.startAddress) <= 0 &&
    cmp(inner.endAddress, outer.endAddress) <= 0 &&
    outer.startPort <= inner.startPort &&
    inner.endPort <= outer.endPort
  );
}

function sameSelector(a: AddressRangeSelector, b: AddressRangeSelector): boolean {
  return contains(a, b) && contains(b, a);
}

/**
 * Responder narrowing: every pairwise intersection of the proposed selectors with our configured ones, without
 * duplicates, in the order of the proposal. Empty when nothing overlaps (answer TS_UNACCEPTABLE).
 */
export function narrow(
  proposed: readonly TrafficSelector[],
  configured: readonly AddressRangeSelector[],
): AddressRangeSelector[] {
  const out: AddressRangeSelector[] = [];
  for (const p of proposed) {
    if (!isAddressRange(p)) continue;
    for (const c of configured) {
      const i = intersect(p, c);
      if (i && !out.some((o) => sameSelector(o, i))) out.push(i);
    }
  }
  return out;
}

/** Initiator check: every selector the responder chose lies inside one we proposed. */
export function allWithin(chosen: readonly TrafficSelector[], proposed: readonly AddressRangeSelector[]): boolean {
  return chosen.length > 0 && chosen.every((c) => isAddressRange(c) && proposed.some((p) => contains(p, c)));
}

export function describeSelectors(list: readonly TrafficSelector[]): string {
  return list.length === 0 ? '(none)' : list.map(formatSelector).join(', ');
}

/** A rough size of a selector set (addresses x ports x protocols), to prefer the most specific configuration. */
export function selectorVolume(list: readonly AddressRangeSelector[]): number {
  let total = 0;
  for (const ts of list) {
    let addresses = 1;
    for (let i = 0; i < ts.startAddress.length; i++) {
      addresses = addresses * 256 + (ts.endAddress[i]! - ts.startAddress[i]!);
    }
    const ports = ts.endPort - ts.startPort + 1;
    total += (addresses + 1) * ports * (ts.ipProtocol === 0 ? 256 : 1);
  }
  return total;
}
