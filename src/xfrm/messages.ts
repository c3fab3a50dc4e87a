/**
 * XFRM message bodies: an SA (xfrm_usersa_info + attributes) and a policy (xfrm_userpolicy_info + attributes),
 * plus the event bodies (EXPIRE, ACQUIRE, POLEXPIRE). Pure: Buffer in, objects out, and back.
 */
import {
  SIZEOF_XFRM_USER_ACQUIRE,
  SIZEOF_XFRM_USER_EXPIRE,
  SIZEOF_XFRM_USERPOLICY_INFO,
  SIZEOF_XFRM_USERSA_INFO,
  XFRM_POLICY_TYPE_MAIN,
  XFRMA_ALG_AEAD,
  XFRMA_ALG_AUTH,
  XFRMA_ALG_AUTH_TRUNC,
  XFRMA_ALG_CRYPT,
  XFRMA_ENCAP,
  XFRMA_IF_ID,
  XFRMA_LASTUSED,
  XFRMA_LTIME_VAL,
  XFRMA_MARK,
  XFRMA_POLICY_TYPE,
  XFRMA_REPLAY_ESN_VAL,
  XFRMA_SA_EXTRA_FLAGS,
  XFRMA_TMPL,
} from './constants.js';
import { decodeAttrs, encodeAttrs, type NlAttr } from './netlink.js';
import {
  decodeU32,
  decodeU64,
  decodeXfrmAlgo,
  decodeXfrmAlgoAead,
  decodeXfrmAlgoAuth,
  decodeXfrmEncapTmpl,
  decodeXfrmLifetimeCur,
  decodeXfrmMark,
  decodeXfrmReplayStateEsn,
  decodeXfrmUserAcquire,
  decodeXfrmUserExpire,
  decodeXfrmUserPolexpire,
  decodeXfrmUserpolicyInfo,
  decodeXfrmUserpolicyType,
  decodeXfrmUsersaInfo,
  decodeXfrmUserTmpls,
  encodeU32,
  encodeXfrmAlgo,
  encodeXfrmAlgoAead,
  encodeXfrmAlgoAuth,
  encodeXfrmEncapTmpl,
  encodeXfrmMark,
  encodeXfrmReplayStateEsn,
  encodeXfrmUserpolicyInfo,
  encodeXfrmUserpolicyType,
  encodeXfrmUsersaInfo,
  encodeXfrmUserTmpls,
  type XfrmAlgo,
  type XfrmAlgoAead,
  type XfrmAlgoAuth,
  type XfrmEncapTmpl,
  type XfrmLifetimeCur,
  type XfrmMark,
  type XfrmReplayStateEsn,
  type XfrmUserAcquire,
  type XfrmUserpolicyInfo,
  type XfrmUsersaInfo,
  type XfrmUserTmpl,
} from './structs.js';

/** An SA as the kernel holds it: XFRM_MSG_NEWSA/UPDSA body, and what GETSA/dumps return. */
export interface XfrmSa {
  info: XfrmUsersaInfo;
  aead?: XfrmAlgoAead;
  crypt?: XfrmAlgo;
  /** Integrity with an explicit truncation length (XFRMA_ALG_AUTH_TRUNC). */
  auth?: XfrmAlgoAuth;
  encap?: XfrmEncapTmpl;
  mark?: XfrmMark;
  ifId?: number;
  replayEsn?: XfrmReplayStateEsn;
  extraFlags?: number;
  /** Kernel → user only: XFRMA_LTIME_VAL (current lifetime) and XFRMA_LASTUSED. */
  curLifetime?: XfrmLifetimeCur;
  lastUsed?: bigint;
  /** Kernel → user only: the legacy XFRMA_ALG_AUTH the kernel also reports for an AUTH_TRUNC SA (ignored on input). */
  legacyAuth?: XfrmAlgo;
}

export function encodeSaBody(sa: XfrmSa): Buffer {
  const attrs: NlAttr[] = [];
  if (sa.aead) attrs.push({ type: XFRMA_ALG_AEAD, data: encodeXfrmAlgoAead(sa.aead) });
  if (sa.crypt) attrs.push({ type: XFRMA_ALG_CRYPT, data: encodeXfrmAlgo(sa.crypt) });
  if (sa.auth) attrs.push({ type: XFRMA_ALG_AUTH_TRUNC, data: encodeXfrmAlgoAuth(sa.auth) });
  if (sa.encap) attrs.push({ type: XFRMA_ENCAP, data: encodeXfrmEncapTmpl(sa.encap, sa.info.family) });
  if (sa.mark) attrs.push({ type: XFRMA_MARK, data: encodeXfrmMark(sa.mark) });
  if (sa.ifId !== undefined) attrs.push({ type: XFRMA_IF_ID, data: encodeU32(sa.ifId) });
  if (sa.replayEsn) attrs.push({ type: XFRMA_REPLAY_ESN_VAL, data: encodeXfrmReplayStateEsn(sa.replayEsn) });
  if (sa.extraFlags !== undefined) attrs.push({ type: XFRMA_SA_EXTRA_FLAGS, data: encodeU32(sa.extraFlags) });
  return Buffer.concat([encodeXfrmUsersaInfo(sa.info), encodeAttrs(attrs)]);
}

/** Applies the SA attributes in `attrs` to `sa` (shared by NEWSA bodies and EXPIRE events). */
function applySaAttrs(sa: XfrmSa, attrs: NlAttr[]): void {
  const family = sa.info.family;
  for (const a of attrs) {
    switch (a.type) {
      case XFRMA_ALG_AEAD:
        sa.aead = decodeXfrmAlgoAead(a.data);
        break;
      case XFRMA_ALG_CRYPT:
        sa.crypt = decodeXfrmAlgo(a.data);
        break;
      case XFRMA_ALG_AUTH_TRUNC:
        sa.auth = decodeXfrmAlgoAuth(a.data);
        break;
      case XFRMA_ALG_AUTH:
        sa.legacyAuth = decodeXfrmAlgo(a.data);
        break;
      case XFRMA_ENCAP:
        sa.encap = decodeXfrmEncapTmpl(a.data, family);
        break;
      case XFRMA_MARK:
        sa.mark = decodeXfrmMark(a.data);
        break;
      case XFRMA_IF_ID:
        sa.ifId = decodeU32(a.data);
        break;
      case XFRMA_REPLAY_ESN_VAL:
        sa.replayEsn = decodeXfrmReplayStateEsn(a.data);
        break;
      case XFRMA_SA_EXTRA_FLAGS:
        sa.extraFlags = decodeU32(a.data);
        break;
      case XFRMA_LTIME_VAL:
        sa.curLifetime = decodeXfrmLifetimeCur(a.data);
        break;
      case XFRMA_LASTUSED:
        sa.lastUsed = decodeU64(a.data);
        break;
      default:
        break; // attributes we do not model (XFRMA_REPLAY_VAL, XFRMA_SA_DIR, ...)
    }
  }
}

export function decodeSaBody(data: Buffer): XfrmSa {
  const sa: XfrmSa = { info: decodeXfrmUsersaInfo(data, 0) };
  applySaAttrs(sa, decodeAttrs(data.subarray(SIZEOF_XFRM_USERSA_INFO)));
  return sa;
}

/** A policy: XFRM_MSG_NEWPOLICY/UPDPOLICY body, and what GETPOLICY/dumps return. */
export interface XfrmPolicy {
  info: XfrmUserpolicyInfo;
  tmpls: XfrmUserTmpl[];
  mark?: XfrmMark;
  ifId?: number;
  /** XFRM_POLICY_TYPE_MAIN unless set (sent only when not MAIN). */
  type?: number;
}

export function encodePolicyBody(p: XfrmPolicy): Buffer {
  const attrs: NlAttr[] = [];
  if (p.tmpls.length > 0) attrs.push({ type: XFRMA_TMPL, data: encodeXfrmUserTmpls(p.tmpls) });
  if (p.mark) attrs.push({ type: XFRMA_MARK, data: encodeXfrmMark(p.mark) });
  if (p.ifId !== undefined) attrs.push({ type: XFRMA_IF_ID, data: encodeU32(p.ifId) });
  if (p.type !== undefined && p.type !== XFRM_POLICY_TYPE_MAIN) {
    attrs.push({ type: XFRMA_POLICY_TYPE, data: encodeXfrmUserpolicyType(p.type) });
  }
  return Buffer.concat([encodeXfrmUserpolicyInfo(p.info), encodeAttrs(attrs)]);
}

function policyFromAttrs(info: XfrmUserpolicyInfo, attrs: NlAttr[]): XfrmPolicy {
  const p: XfrmPolicy = { info, tmpls: [] };
  for (const a of attrs) {
    switch (a.type) {
      case XFRMA_TMPL:
        p.tmpls = decodeXfrmUserTmpls(a.data);
        break;
      case XFRMA_MARK:
        p.mark = decodeXfrmMark(a.data);
        break;
      case XFRMA_IF_ID:
        p.ifId = decodeU32(a.data);
        break;
      case XFRMA_POLICY_TYPE:
        p.type = decodeXfrmUserpolicyType(a.data);
        break;
      default:
        break;
    }
  }
  return p;
}

export function decodePolicyBody(data: Buffer): XfrmPolicy {
  return policyFromAttrs(decodeXfrmUserpolicyInfo(data, 0), decodeAttrs(data.subarray(SIZEOF_XFRM_USERPOLICY_INFO)));
}

/** XFRM_MSG_EXPIRE (multicast on XFRMNLGRP_EXPIRE): the SA that reached a soft (hard=0) or hard (hard=1) limit. */
export interface XfrmExpireEvent {
  kind: 'expire';
  sa: XfrmSa;
  hard: boolean;
}

export function decodeExpireBody(data: Buffer): XfrmExpireEvent {
  const e = decodeXfrmUserExpire(data, 0);
  const sa: XfrmSa = { info: e.state };
  if (data.length > SIZEOF_XFRM_USER_EXPIRE) applySaAttrs(sa, decodeAttrs(data.subarray(SIZEOF_XFRM_USER_EXPIRE)));
  return { kind: 'expire', sa, hard: e.hard !== 0 };
}

/** XFRM_MSG_ACQUIRE (multicast on XFRMNLGRP_ACQUIRE): a packet hit a policy whose template has no SA. */
export interface XfrmAcquireEvent {
  kind: 'acquire';
  acquire: XfrmUserAcquire;
  tmpls: XfrmUserTmpl[];
  mark?: XfrmMark;
  ifId?: number;
}

export function decodeAcquireBody(data: Buffer): XfrmAcquireEvent {
  const acquire = decodeXfrmUserAcquire(data, 0);
  const p = policyFromAttrs(acquire.policy, decodeAttrs(data.subarray(SIZEOF_XFRM_USER_ACQUIRE)));
  const ev: XfrmAcquireEvent = { kind: 'acquire', acquire, tmpls: p.tmpls };
  if (p.mark) ev.mark = p.mark;
  if (p.ifId !== undefined) ev.ifId = p.ifId;
  return ev;
}

/** XFRM_MSG_POLEXPIRE: a policy lifetime ran out. */
export interface XfrmPolexpireEvent {
  kind: 'polexpire';
  policy: XfrmPolicy;
  hard: boolean;
}

export function decodePolexpireBody(data: Buffer): XfrmPolexpireEvent {
  const e = decodeXfrmUserPolexpire(data, 0);
  const rest = data.length > 176 ? decodeAttrs(data.subarray(176)) : [];
  return { kind: 'polexpire', policy: policyFromAttrs(e.pol, rest), hard: e.hard !== 0 };
}
