/**
 * Rekeying the IKE SA (RFC 7296 §1.3.2, §2.18): CREATE_CHILD_SA carrying an IKE SA payload with the new SPI, a nonce
 * and KE. SKEYSEED = prf_old(SK_d old, g^ir new | Ni | Nr); the new SA's keys come from prf+ of its own PRF. The
 * CHILD SAs move to the new IKE SA, whose message IDs start at 0, and the rekey's initiator deletes the old one.
 * Collisions (§2.8.2): of two new IKE SAs the one created with the lowest nonce is redundant; its initiator deletes
 * it, after moving the CHILD SAs to the other one.
 */

import type { IkeMessage } from '../codec/message.js';
import { invalidKeGroup, notify } from '../codec/payloads/notify.js';
import type { Proposal } from '../codec/payloads/sa-types.js';
import { ExchangeType, KeId, NotifyType, PayloadType, TransformType } from '../constants.js';
import { rekeySkeyseed } from '../crypto/kdf.js';
import { NoProposalChosenError, selectProposal, verifyChosen } from '../crypto/proposals.js';
import type { KeyExchange } from '../crypto/provider.js';
import { IkeSa, IkeSa as Sa } from '../sa/ike-sa.js';
import { isLower, lowerNonce } from './child-create.js';
import { deriveKeys, suiteOf } from './ike-init.js';
import type { Task, TaskStatus } from './task.js';

/**
 * Mark an IKE SA as replaced. Whoever must delete it (RFC 7296 §2.18, §2.8.2) normally does so within a round trip;
 * if that DELETE never arrives, the SA goes quietly once every retransmission could have come and gone.
 */
function retire(sa: IkeSa): void {
  if (sa.state === 'destroyed') return;
  sa.state = 'rekeyed';
  const r = sa.config.retransmit;
  const window = (r.timeoutMs * (r.base ** (r.tries + 1) - 1)) / (r.base - 1);
  sa.setTimer(
    'retired',
    Math.min(window, r.maxTimeoutMs !== undefined ? r.maxTimeoutMs * (r.tries + 1) : window) + 10_000,
    () => {
      if (sa.state === 'rekeyed') sa.destroy('replaced by a rekeyed IKE SA');
    },
  );
}

/** Whether a CHILD SA of the IKE SA is between states (being created, rekeyed or deleted). */
function busy(sa: IkeSa): boolean {
  return sa.children.some(
    (c) => c.state !== 'installed' || c.pendingOutbound !== undefined || c.replacedBy !== undefined,
  );
}

/** Move the CHILD SAs of `from` to `to` (they keep their kernel state; only their owner changes). */
export function moveChildren(from: IkeSa, to: IkeSa): void {
  for (const c of from.children) {
    if (c.state === 'deleted') continue;
    c.owner = to;
    to.children.push(c);
  }
  from.children = [];
}

function newSpi(sa: IkeSa): Uint8Array {
  let spi = sa.ctx.ports.random(8);
  while (spi.every((b) => b === 0)) spi = sa.ctx.ports.random(8);
  return spi;
}

/** Make the new IKE SA that a rekey of `old` creates. */
function successor(old: IkeSa, weInitiate: boolean, spiI: Uint8Array, spiR: Uint8Array): IkeSa {
  const sa = new IkeSa(old.ctx, weInitiate, old.config, {
    spiI,
    spiR,
    local: old.local,
    remote: old.remote,
    responderTasks: old.responderTaskFactory,
  });
  sa.natLocal = old.natLocal;
  sa.natRemote = old.natRemote;
  sa.peerFragmentation = old.peerFragmentation;
  sa.peerChildless = old.peerChildless;
  sa.remoteIdBody = old.remoteIdBody;
  sa.rekeyOf = old.uid;
  sa.authUsed = old.authUsed;
  return sa;
}

/** Finish a new IKE SA: keys from the old SA's SK_d (with the old PRF), then prf+ with the new suite. */
function keyNewSa(old: IkeSa, sa: IkeSa, chosen: Proposal, shared: Uint8Array): void {
  sa.suite = suiteOf(chosen);
  sa.proposal = chosen;
  const seed = rekeySkeyseed(old.ctx.provider, old.suite!.prfId, old.keys!.skD, shared, sa.ni, sa.nr);
  deriveKeys(sa, seed);
  sa.lowestNonce = lowerNonce(sa.ni, sa.nr);
}

export class IkeRekeyTask implements Task<IkeMessage, IkeMessage> {
  readonly name = 'ike-rekey';
  private phase: 'create' | 'delete' = 'create';
  private next: IkeSa | undefined;
  private ke: KeyExchange | undefined;
  private group: number;
  private retries = 0;
  /** Which SA the delete phase removes (the old one, or our redundant new one after a lost collision). */
  private deleteTarget: IkeSa | undefined;
  outcome: 'rekeyed' | 'lost-collision' | 'won-collision' | 'failed' | undefined;
  // responder state
  private error: { notify: number; data?: Uint8Array } | undefined;
  private peerKe: Uint8Array | undefined;
  private chosen: Proposal | undefined;
  private peerSpi: Uint8Array | undefined;
  private peerNonce: Uint8Array | undefined;

  constructor(private readonly sa: IkeSa) {
    this.group = sa.suite?.keId ?? KeId.NONE;
  }

  exchange(): number {
    return this.phase === 'create' ? ExchangeType.CREATE_CHILD_SA : ExchangeType.INFORMATIONAL;
  }

  ready(): boolean {
    if (this.phase === 'delete') return this.deleteTarget !== undefined && this.deleteTarget.state !== 'destroyed';
    // Not while a CHILD SA is half-way through an exchange: it would be stranded on the old IKE SA (strongSwan
    // waits the same way). abort() schedules another try.
    return this.sa.state === 'established' && !busy(this.sa);
  }

  abort(): void {
    if (this.phase === 'create' && this.sa.state === 'established') {
      this.sa.ctx.scheduleIkeRekey(this.sa, 2000 + this.sa.jitter(3000));
    }
  }

  // ---- initiator -----------------------------------------------------------------------------------------------

  build(req: IkeMessage): void {
    const sa = this.sa;
    if (this.phase === 'delete') {
      req.encrypted!.push({ type: PayloadType.DELETE, protocol: 1, spiSize: 0, spis: [] });
      return;
    }
    this.next ??= successor(sa, true, newSpi(sa), new Uint8Array(8));
    const next = this.next;
    next.ni = sa.ctx.ports.random(sa.ctx.nonceLength);
    req.encrypted!.push({
      type: PayloadType.SA,
      proposals: sa.config.ikeProposals.map((p) => ({ ...p, spi: next.spiI })),
    });
    req.encrypted!.push({ type: PayloadType.NONCE, data: next.ni });
    this.ke = sa.ctx.provider.keyExchange(this.group).initiate(sa.ctx.ports.random);
    req.encrypted!.push({ type: PayloadType.KE, group: this.group, data: this.ke.publicValue });
  }

  async process(res: IkeMessage): Promise<TaskStatus> {
    const sa = this.sa;
    if (this.phase === 'delete') {
      // The old (or redundant) IKE SA is gone; its CHILD SAs moved before.
      const target = this.deleteTarget!;
      if (target === sa) sa.destroy('rekeyed');
      return 'done';
    }
    const err = Sa.errorNotify(res);
    if (err) {
      if (err.notifyType === NotifyType.INVALID_KE_PAYLOAD && this.retries++ < 2) {
        const wanted = invalidKeGroup(err);
        if (
          sa.config.ikeProposals.some((p) => p.transforms.some((t) => t.type === TransformType.KE && t.id === wanted))
        ) {
          this.group = wanted;
          return 'again';
        }
      }
      this.outcome = 'failed';
      sa.ctx.scheduleIkeRekey(
        sa,
        err.notifyType === NotifyType.TEMPORARY_FAILURE ? 2000 + sa.jitter(8000) : 30_000 + sa.jitter(30_000),
      );
      return 'failed';
    }
    const saP = Sa.payload(res, PayloadType.SA);
    const nonceP = Sa.payload(res, PayloadType.NONCE);
    const keP = Sa.payload(res, PayloadType.KE);
    const next = this.next!;
    try {
      if (!saP || !nonceP || !keP || saP.proposals.length !== 1) throw new Error('response lacks SA, Nonce or KE');
      const chosen = saP.proposals[0]!;
      if (chosen.spi.length !== 8 || chosen.spi.every((b) => b === 0)) throw new Error('bad responder SPI');
      verifyChosen(
        sa.config.ikeProposals.map((p) => ({ ...p, spi: next.spiI })),
        chosen,
      );
      if (keP.group !== this.group || suiteOf(chosen).keId !== this.group) throw new Error('KE group mismatch');
      next.spiR = chosen.spi.slice();
      next.nr = nonceP.data.slice();
      const shared = this.ke!.complete(keP.data);
      keyNewSa(sa, next, { ...chosen, spi: new Uint8Array(0) }, shared);
      shared.fill(0);
    } catch (e) {
      this.outcome = 'failed';
      sa.ctx.emit({
        type: 'kernel-error',
        sa: sa.ref(),
        operation: 'ike-rekey',
        message: e instanceof Error ? e.message : String(e),
      });
      sa.ctx.scheduleIkeRekey(sa, 30_000 + sa.jitter(30_000));
      return 'failed';
    }
    const theirs =
      sa.replacedBy && sa.replacedBy !== next && sa.replacedBy.state !== 'destroyed' ? sa.replacedBy : undefined;
    sa.ctx.register(next);
    if (theirs && isLower(next.lowestNonce!, theirs.lowestNonce!)) {
      // Lost the collision: ours is redundant. Children stay with the peer's new SA; we delete ours.
      this.outcome = 'lost-collision';
      retire(next);
      next.replacedBy = theirs;
      next.established();
      retire(next);
      next.queue([new IkeDeleteRedundant(next)]);
      return 'done';
    }
    if (theirs) {
      this.outcome = 'won-collision';
      moveChildren(theirs, next);
      retire(theirs);
      theirs.replacedBy = next;
    } else {
      this.outcome = 'rekeyed';
    }
    moveChildren(sa, next);
    retire(sa);
    sa.replacedBy = next;
    next.established();
    sa.ctx.emit({ type: 'ike-rekeyed', old: sa.ref(), sa: next.ref() });
    this.deleteTarget = sa;
    this.phase = 'delete';
    return 'again';
  }

  // ---- responder -----------------------------------------------------------------------------------------------

  processRequest(req: IkeMessage): void {
    const sa = this.sa;
    // RFC 7296 §2.25.2: refuse while CHILD SA exchanges are in flight (a simultaneous IKE rekey is a collision,
    // resolved by the nonces below).
    const othersInFlight = sa.tm.outstandingTasks().some((t) => !(t instanceof IkeRekeyTask));
    if (sa.state !== 'established' || busy(sa) || othersInFlight) {
      this.error = { notify: NotifyType.TEMPORARY_FAILURE };
      return;
    }
    const saP = Sa.payload(req, PayloadType.SA);
    const nonceP = Sa.payload(req, PayloadType.NONCE);
    const keP = Sa.payload(req, PayloadType.KE);
    if (!saP || !nonceP || !keP) {
      this.error = { notify: NotifyType.INVALID_SYNTAX };
      return;
    }
    try {
      this.chosen = selectProposal(sa.config.ikeProposals, saP.proposals).chosen;
    } catch (e) {
      this.error = { notify: NotifyType.NO_PROPOSAL_CHOSEN };
      sa.ctx.emit({
        type: 'kernel-error',
        sa: sa.ref(),
        operation: 'ike-rekey',
        message: e instanceof NoProposalChosenError ? `IKE rekey: ${e.explain('ike')}` : String(e),
      });
      return;
    }
    const suite = suiteOf(this.chosen);
    if (keP.group !== suite.keId) {
      this.error = {
        notify: NotifyType.INVALID_KE_PAYLOAD,
        data: new Uint8Array([suite.keId >>> 8, suite.keId & 0xff]),
      };
      return;
    }
    if (this.chosen.spi.length !== 8 || this.chosen.spi.every((b) => b === 0)) {
      this.error = { notify: NotifyType.INVALID_SYNTAX };
      return;
    }
    this.peerSpi = this.chosen.spi.slice();
    this.peerNonce = nonceP.data.slice();
    this.peerKe = keP.data;
  }

  buildResponse(res: IkeMessage): TaskStatus {
    const sa = this.sa;
    if (this.error) {
      res.encrypted!.push(notify(this.error.notify, this.error.data ? { data: this.error.data } : {}));
      return 'done';
    }
    const next = successor(sa, false, this.peerSpi!, newSpi(sa));
    next.ni = this.peerNonce!;
    next.nr = sa.ctx.ports.random(sa.ctx.nonceLength);
    let reply: { publicValue: Uint8Array; sharedSecret: Uint8Array };
    try {
      reply = sa.ctx.provider.keyExchange(suiteOf(this.chosen!).keId).respond(this.peerKe!, sa.ctx.ports.random);
    } catch {
      res.encrypted!.push(notify(NotifyType.INVALID_SYNTAX));
      return 'done';
    }
    const chosen = { ...this.chosen!, spi: new Uint8Array(0) };
    keyNewSa(sa, next, chosen, reply.sharedSecret);
    reply.sharedSecret.fill(0);
    res.encrypted!.push({ type: PayloadType.SA, proposals: [{ ...this.chosen!, spi: next.spiR }] });
    res.encrypted!.push({ type: PayloadType.NONCE, data: next.nr });
    res.encrypted!.push({
      type: PayloadType.KE,
      group: chosen.transforms.find((t) => t.type === TransformType.KE)!.id,
      data: reply.publicValue,
    });
    sa.ctx.register(next);
    // Collision: if our own rekey of this SA already produced a new SA, the nonces decide which one stays; the
    // initiator task sees `replacedBy` when its response arrives and resolves it there.
    const ours = sa.replacedBy;
    if (!ours || ours.state === 'destroyed') {
      moveChildren(sa, next);
      retire(sa);
      sa.replacedBy = next;
      next.established();
      sa.ctx.emit({ type: 'ike-rekeyed', old: sa.ref(), sa: next.ref() });
    } else {
      next.established();
      sa.replacedBy = next;
    }
    return 'done';
  }
}

/** Deleting a redundant IKE SA after a lost rekey collision; its CHILD SAs already live on the winner. */
class IkeDeleteRedundant implements Task<IkeMessage, IkeMessage> {
  readonly name = 'ike-delete-redundant';
  constructor(private readonly sa: IkeSa) {}
  exchange(): number {
    return ExchangeType.INFORMATIONAL;
  }
  build(req: IkeMessage): void {
    req.encrypted!.push({ type: PayloadType.DELETE, protocol: 1, spiSize: 0, spis: [] });
  }
  process(): TaskStatus {
    this.sa.destroy('redundant after rekey collision');
    return 'done';
  }
  abort(): void {
    this.sa.destroy('redundant after rekey collision');
  }
}
