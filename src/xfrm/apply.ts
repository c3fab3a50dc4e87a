/**
 * Idempotent apply: converge the kernel's OWNED SAs and policies to a desired set with the fewest changes.
 *
 *   planXfrm(desired, current, ownership) -> actions     pure, unit-tested without root
 *   applyXfrm(socket, desired, ownership)                dump, plan, execute (batched), on EEXIST replace
 *
 * Foreign state (not owned, see ownership.ts) is filtered out before the diff and therefore never touched.
 * Start-up garbage collection is applyXfrm with whatever the agent still wants (often nothing): every owned object
 * nobody wants is deleted.
 *
 * Identity (the kernel's own keys): an SA by (daddr, spi, proto, mark); a policy by (dir, type, selector, mark, if_id).
 * Change handling:
 *   SA: algorithms, keys, reqid, mode, flags, addresses or replay differ -> replace (delete + add): the kernel's
 *       UPDSA keeps the old keys of a live SA. Only lifetime/encap/selector differ -> update (UPDSA).
 *       A larval SA (allocated SPI, no algorithms yet) is completed with update.
 *   Policy: anything differs -> update (UPDPOLICY); a different caller-chosen index -> replace.
 * Order: SA adds/updates, policy adds/updates, policy deletes, SA deletes: a policy never points at a missing SA
 * longer than necessary, and a dropped packet is the failure mode, never plaintext.
 */
import { canonicalAddress } from './address.js';
import { XFRM_POLICY_TYPE_MAIN } from './constants.js';
import type { XfrmPolicy, XfrmSa } from './messages.js';
import { isOwnedPolicy, isOwnedSa, type Ownership } from './ownership.js';
import type { PolicyId, SaId, XfrmError, XfrmRequest } from './socket.js';
import { XfrmSocket } from './socket.js';
import type { XfrmLifetimeCfg, XfrmSelector, XfrmUserTmpl } from './structs.js';

export type XfrmAction =
  | { kind: 'addSa'; sa: XfrmSa }
  | { kind: 'updateSa'; sa: XfrmSa; reason: string }
  | { kind: 'replaceSa'; sa: XfrmSa; reason: string }
  | { kind: 'deleteSa'; id: SaId }
  | { kind: 'addPolicy'; policy: XfrmPolicy }
  | { kind: 'updatePolicy'; policy: XfrmPolicy; reason: string }
  | { kind: 'replacePolicy'; policy: XfrmPolicy; old: PolicyId; reason: string }
  | { kind: 'deletePolicy'; id: PolicyId };

export interface XfrmDesired {
  sas: XfrmSa[];
  policies: XfrmPolicy[];
}

export interface PlanOptions {
  /** Keep owned larval SAs (SPIs allocated for negotiations in progress) that are not desired. Default true. */
  keepLarval?: boolean;
}

const markKey = (m: { v: number; m: number } | undefined): string => (m ? `${m.v}/${m.m}` : '0/0');

export function saKey(sa: {
  info: { family: number; id: { daddr: string; spi: number; proto: number } };
  mark?: { v: number; m: number };
}): string {
  return `${sa.info.family}|${canonicalAddress(sa.info.id.daddr)}|${sa.info.id.spi >>> 0}|${sa.info.id.proto}|${markKey(sa.mark)}`;
}

function selKey(s: XfrmSelector): string {
  return `${s.family},${canonicalAddress(s.saddr)}/${s.prefixlenS},${canonicalAddress(s.daddr)}/${s.prefixlenD},${s.proto},${s.sport & s.sportMask}/${s.sportMask},${s.dport & s.dportMask}/${s.dportMask},${s.ifindex},${s.user}`;
}

export function policyKey(p: XfrmPolicy): string {
  return `${p.info.dir}|${p.type ?? XFRM_POLICY_TYPE_MAIN}|${selKey(p.info.sel)}|${markKey(p.mark)}|${p.ifId ?? 0}`;
}

export function saIdOf(sa: XfrmSa): SaId {
  const id: SaId = { daddr: sa.info.id.daddr, spi: sa.info.id.spi, proto: sa.info.id.proto, family: sa.info.family };
  if (sa.mark) id.mark = sa.mark;
  return id;
}

export function policyIdOf(p: XfrmPolicy): PolicyId {
  const id: PolicyId = { sel: p.info.sel, dir: p.info.dir };
  if (p.mark) id.mark = p.mark;
  if (p.ifId !== undefined) id.ifId = p.ifId;
  if (p.type !== undefined) id.type = p.type;
  return id;
}

export function isLarval(sa: XfrmSa): boolean {
  return !sa.aead && !sa.crypt && !sa.auth;
}

const bufEq = (a: Buffer | undefined, b: Buffer | undefined): boolean =>
  a === b || (a !== undefined && b !== undefined && a.equals(b));

function lftEq(a: XfrmLifetimeCfg, b: XfrmLifetimeCfg): boolean {
  return (
    a.softByteLimit === b.softByteLimit &&
    a.hardByteLimit === b.hardByteLimit &&
    a.softPacketLimit === b.softPacketLimit &&
    a.hardPacketLimit === b.hardPacketLimit &&
    a.softAddExpiresSeconds === b.softAddExpiresSeconds &&
    a.hardAddExpiresSeconds === b.hardAddExpiresSeconds &&
    a.softUseExpiresSeconds === b.softUseExpiresSeconds &&
    a.hardUseExpiresSeconds === b.hardUseExpiresSeconds
  );
}

/** Why the SA's keying differs (requires replace), or undefined. */
function saHardDiff(want: XfrmSa, have: XfrmSa): string | undefined {
  const w = want.info;
  const h = have.info;
  if (canonicalAddress(w.saddr) !== canonicalAddress(h.saddr)) return 'saddr';
  if (w.reqid !== h.reqid) return 'reqid';
  if (w.mode !== h.mode) return 'mode';
  if (w.flags !== h.flags) return 'flags';
  if (!want.replayEsn && w.replayWindow !== h.replayWindow) return 'replay window';
  if (want.replayEsn && want.replayEsn.replayWindow !== have.replayEsn?.replayWindow) return 'replay window';
  if (
    want.aead?.name !== have.aead?.name ||
    want.aead?.icvLen !== have.aead?.icvLen ||
    !bufEq(want.aead?.key, have.aead?.key)
  ) {
    return 'aead';
  }
  if (want.crypt?.name !== have.crypt?.name || !bufEq(want.crypt?.key, have.crypt?.key)) return 'crypt';
  if (
    want.auth?.name !== have.auth?.name ||
    want.auth?.truncLen !== have.auth?.truncLen ||
    !bufEq(want.auth?.key, have.auth?.key)
  ) {
    return 'auth';
  }
  if ((want.ifId ?? 0) !== (have.ifId ?? 0)) return 'if_id';
  if ((want.extraFlags ?? 0) !== (have.extraFlags ?? 0)) return 'extra flags';
  return undefined;
}

/** Differences UPDSA can apply in place. */
function saSoftDiff(want: XfrmSa, have: XfrmSa): string | undefined {
  if (!lftEq(want.info.lft, have.info.lft)) return 'lifetime';
  const we = want.encap;
  const he = have.encap;
  if (!!we !== !!he) return 'encap';
  if (we && he && (we.type !== he.type || we.sport !== he.sport || we.dport !== he.dport)) return 'encap';
  if (selKey(want.info.sel) !== selKey(have.info.sel)) return 'selector';
  return undefined;
}

function tmplEq(a: XfrmUserTmpl, b: XfrmUserTmpl): boolean {
  return (
    a.family === b.family &&
    a.id.spi >>> 0 === b.id.spi >>> 0 &&
    a.id.proto === b.id.proto &&
    a.reqid === b.reqid &&
    a.mode === b.mode &&
    a.share === b.share &&
    a.optional === b.optional &&
    a.aalgos >>> 0 === b.aalgos >>> 0 &&
    a.ealgos >>> 0 === b.ealgos >>> 0 &&
    a.calgos >>> 0 === b.calgos >>> 0 &&
    canonicalAddress(a.saddr) === canonicalAddress(b.saddr) &&
    canonicalAddress(a.id.daddr) === canonicalAddress(b.id.daddr)
  );
}

function policyDiff(want: XfrmPolicy, have: XfrmPolicy): string | undefined {
  const w = want.info;
  const h = have.info;
  if (w.priority !== h.priority) return 'priority';
  if (w.action !== h.action) return 'action';
  if (w.flags !== h.flags) return 'flags';
  if (w.share !== h.share) return 'share';
  if (!lftEq(w.lft, h.lft)) return 'lifetime';
  if (want.tmpls.length !== have.tmpls.length || want.tmpls.some((t, i) => !tmplEq(t, have.tmpls[i]!))) {
    return 'templates';
  }
  return undefined;
}

/** Pure diff: the actions that converge `current` (everything the kernel holds) to `desired`, touching owned state only. */
export function planXfrm(
  desired: XfrmDesired,
  current: XfrmDesired,
  own: Ownership,
  opts: PlanOptions = {},
): XfrmAction[] {
  const keepLarval = opts.keepLarval ?? true;
  for (const sa of desired.sas) {
    if (!isOwnedSa(sa, own)) throw new RangeError(`desired SA spi ${sa.info.id.spi} is not owned (reqid/mark)`);
  }
  for (const p of desired.policies) {
    if (!isOwnedPolicy(p, own)) throw new RangeError(`desired policy ${policyKey(p)} is not owned (reqid/index/mark)`);
  }
  const haveSas = new Map<string, XfrmSa>();
  for (const sa of current.sas) if (isOwnedSa(sa, own)) haveSas.set(saKey(sa), sa);
  const havePols = new Map<string, XfrmPolicy>();
  for (const p of current.policies) if (isOwnedPolicy(p, own)) havePols.set(policyKey(p), p);

  const saActions: XfrmAction[] = [];
  const polActions: XfrmAction[] = [];
  const polDeletes: XfrmAction[] = [];
  const saDeletes: XfrmAction[] = [];
  const wantedSa = new Set<string>();
  for (const sa of desired.sas) {
    const k = saKey(sa);
    if (wantedSa.has(k)) throw new RangeError(`duplicate desired SA ${k}`);
    wantedSa.add(k);
    const have = haveSas.get(k);
    if (!have) {
      saActions.push({ kind: 'addSa', sa });
      continue;
    }
    if (isLarval(have)) {
      saActions.push({ kind: 'updateSa', sa, reason: 'larval' });
      continue;
    }
    const hard = saHardDiff(sa, have);
    if (hard) {
      saActions.push({ kind: 'replaceSa', sa, reason: hard });
      continue;
    }
    const soft = saSoftDiff(sa, have);
    if (soft) saActions.push({ kind: 'updateSa', sa, reason: soft });
  }
  for (const [k, have] of haveSas) {
    if (wantedSa.has(k)) continue;
    if (keepLarval && isLarval(have)) continue;
    saDeletes.push({ kind: 'deleteSa', id: saIdOf(have) });
  }
  const wantedPol = new Set<string>();
  for (const p of desired.policies) {
    const k = policyKey(p);
    if (wantedPol.has(k)) throw new RangeError(`duplicate desired policy ${k}`);
    wantedPol.add(k);
    const have = havePols.get(k);
    if (!have) {
      polActions.push({ kind: 'addPolicy', policy: p });
      continue;
    }
    if (p.info.index !== 0 && p.info.index !== have.info.index) {
      polActions.push({ kind: 'replacePolicy', policy: p, old: policyIdOf(have), reason: 'index' });
      continue;
    }
    const d = policyDiff(p, have);
    if (d) polActions.push({ kind: 'updatePolicy', policy: p, reason: d });
  }
  for (const [k, have] of havePols) {
    if (!wantedPol.has(k)) polDeletes.push({ kind: 'deletePolicy', id: policyIdOf(have) });
  }
  return [...saActions, ...polActions, ...polDeletes, ...saDeletes];
}

export interface ApplyResult {
  actions: XfrmAction[];
  /** Failures that remained after the EEXIST fallback, with the action that failed. */
  errors: { action: XfrmAction; error: XfrmError }[];
  counts: Record<XfrmAction['kind'], number>;
}

function requestsFor(a: XfrmAction): XfrmRequest[] {
  const R = XfrmSocket.req;
  switch (a.kind) {
    case 'addSa':
      return [R.addSa(a.sa)];
    case 'updateSa':
      return [R.updateSa(a.sa)];
    case 'replaceSa':
      return [R.deleteSa(saIdOf(a.sa)), R.addSa(a.sa)];
    case 'deleteSa':
      return [R.deleteSa(a.id)];
    case 'addPolicy':
      return [R.addPolicy(a.policy)];
    case 'updatePolicy':
      return [R.updatePolicy(a.policy)];
    case 'replacePolicy':
      return [R.deletePolicy(a.old), R.addPolicy(a.policy)];
    case 'deletePolicy':
      return [R.deletePolicy(a.id)];
  }
}

/** Executes actions in order, in batches per phase; EEXIST on add -> replace; ENOENT/ESRCH on delete -> already gone. */
export async function executeXfrm(sock: XfrmSocket, actions: readonly XfrmAction[]): Promise<ApplyResult> {
  const counts = {
    addSa: 0,
    updateSa: 0,
    replaceSa: 0,
    deleteSa: 0,
    addPolicy: 0,
    updatePolicy: 0,
    replacePolicy: 0,
    deletePolicy: 0,
  } satisfies ApplyResult['counts'];
  const errors: ApplyResult['errors'] = [];
  // Phases keep the documented order while batching within a phase.
  const phase = (a: XfrmAction): number =>
    a.kind === 'deletePolicy' ? 2 : a.kind === 'deleteSa' ? 3 : a.kind.endsWith('Policy') ? 1 : 0;
  for (let ph = 0; ph < 4; ph++) {
    const list = actions.filter((a) => phase(a) === ph);
    if (list.length === 0) continue;
    const reqs: XfrmRequest[] = [];
    const owner: number[] = [];
    list.forEach((a, i) => {
      for (const r of requestsFor(a)) {
        reqs.push(r);
        owner.push(i);
      }
    });
    const res = await sock.batch(reqs);
    const failed = new Map<number, XfrmError>();
    res.forEach((e, j) => {
      if (!e) return;
      const i = owner[j]!;
      const r = reqs[j]!;
      // A replace's delete may find nothing (already gone); a delete of something already gone is success.
      if ((r.op === 'deleteSa' || r.op === 'deletePolicy') && (e.code === 'ESRCH' || e.code === 'ENOENT')) return;
      if (!failed.has(i)) failed.set(i, e);
    });
    for (const [i, e] of failed) {
      const a = list[i]!;
      let err: XfrmError | undefined = e;
      if (e.code === 'EEXIST' && (a.kind === 'addSa' || a.kind === 'replaceSa')) {
        const r = await sock.batch([XfrmSocket.req.deleteSa(saIdOf(a.sa)), XfrmSocket.req.addSa(a.sa)]);
        err = r[1];
      } else if (e.code === 'EEXIST' && (a.kind === 'addPolicy' || a.kind === 'replacePolicy')) {
        const r = await sock.batch([XfrmSocket.req.updatePolicy(a.policy)]);
        err = r[0];
      }
      if (err) errors.push({ action: a, error: err });
    }
    for (const a of list) counts[a.kind]++;
  }
  return { actions: [...actions], errors, counts };
}

/** Dumps the kernel's state, plans against `desired` and executes. */
export async function applyXfrm(
  sock: XfrmSocket,
  desired: XfrmDesired,
  own: Ownership,
  opts: PlanOptions = {},
): Promise<ApplyResult> {
  const sas = await sock.dumpSas();
  const policies = await sock.dumpPolicies();
  const actions = planXfrm(desired, { sas, policies }, own, opts);
  return executeXfrm(sock, actions);
}

/** Start-up garbage collection: removes every owned SA and policy not in `keep` (default: everything owned). */
export async function garbageCollect(
  sock: XfrmSocket,
  own: Ownership,
  keep: XfrmDesired = { sas: [], policies: [] },
): Promise<ApplyResult> {
  return applyXfrm(sock, keep, own, { keepLarval: false });
}
