/**
 * Ownership of kernel XFRM state: we only ever read-modify-delete what carries our tags; foreign state is invisible.
 *
 * - An SA is ours when its reqid lies in the reserved reqid range (and, when a mark is configured, it carries exactly
 *   that mark).
 * - A policy is ours when one of its templates has a reqid in that range, or (template-less policies: IKE bypass and
 *   fail-closed block policies) when its index lies in the reserved policy index range (and the mark matches, if set).
 *   The kernel accepts a caller-chosen index when (index & XFRM_POLICY_MAX) === dir (verify_newpolicy_info); its own
 *   generated indexes count up from 0 in steps of 8, far below the default range.
 */
import { XFRM_POLICY_MAX } from './constants.js';
import type { XfrmPolicy, XfrmSa } from './messages.js';
import type { XfrmMark } from './structs.js';

export interface Ownership {
  reqidMin: number;
  reqidMax: number;
  /** Index range for our template-less policies (bypass, block). */
  policyIndexMin: number;
  policyIndexMax: number;
  /** When set, every owned SA/policy carries exactly this mark and only marked objects are ours. */
  mark?: XfrmMark;
}

/** Defaults: reqids 0x4d490000-0x4d49ffff ("MI"), policy indexes 0x4d490000-0x4d49fff8 (+ dir). */
export const DEFAULT_OWNERSHIP: Ownership = {
  reqidMin: 0x4d49_0000,
  reqidMax: 0x4d49_ffff,
  policyIndexMin: 0x4d49_0000,
  policyIndexMax: 0x4d49_ffff,
};

export function markEquals(a: XfrmMark | undefined, b: XfrmMark | undefined): boolean {
  const av = a ?? { v: 0, m: 0 };
  const bv = b ?? { v: 0, m: 0 };
  return av.v === bv.v && av.m === bv.m;
}

function markOk(m: XfrmMark | undefined, own: Ownership): boolean {
  return own.mark === undefined || markEquals(m, own.mark);
}

export function ownsReqid(reqid: number, own: Ownership): boolean {
  return reqid >= own.reqidMin && reqid <= own.reqidMax;
}

export function isOwnedSa(sa: XfrmSa, own: Ownership): boolean {
  return ownsReqid(sa.info.reqid, own) && markOk(sa.mark, own);
}

export function isOwnedPolicy(p: XfrmPolicy, own: Ownership): boolean {
  if (!markOk(p.mark, own)) return false;
  if (p.tmpls.some((t) => ownsReqid(t.reqid, own))) return true;
  return p.tmpls.length === 0 && p.info.index >= own.policyIndexMin && p.info.index <= own.policyIndexMax;
}

/** The index of the policy in `slot` for direction `dir` within our range (slot 0, 1, 2, ... → 8 apart). */
export function ownedPolicyIndex(own: Ownership, slot: number, dir: number): number {
  const base = (own.policyIndexMin + 7) & ~7;
  const index = base + slot * 8 + (dir & XFRM_POLICY_MAX);
  if (index > own.policyIndexMax || slot < 0) {
    throw new RangeError(`policy slot ${slot} outside the owned index range`);
  }
  return index >>> 0;
}
