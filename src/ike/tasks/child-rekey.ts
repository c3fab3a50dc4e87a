/**
 * Rekeying a CHILD SA (RFC 7296 §1.3.3, §2.8): CREATE_CHILD_SA with REKEY_SA creates the successor, then an
 * INFORMATIONAL deletes the old one. Collisions (§2.8.1): when both ends rekeyed the same CHILD SA at once, of the
 * two new CHILD SAs the one created with the lowest nonce is redundant and its initiator deletes it; the other
 * side's initiator deletes the old CHILD SA.
 */

import type { IkeMessage } from '../codec/message.js';
import { ExchangeType, PayloadType, ProtocolId } from '../constants.js';
import type { ChildSa } from '../sa/child-sa.js';
import { type IkeSa, spiToBytes } from '../sa/ike-sa.js';
import { ChildCreateTask, isLower } from './child-create.js';
import { handOver } from './child-delete.js';
import type { Task, TaskStatus } from './task.js';

export class ChildRekeyTask implements Task<IkeMessage, IkeMessage> {
  readonly name = 'child-rekey';
  private phase: 'create' | 'delete' = 'create';
  private create: ChildCreateTask | undefined;
  private toDelete: ChildSa[] = [];
  /** Outcome for tests and status: 'rekeyed', 'lost-collision', 'won-collision', 'failed'. */
  outcome: 'rekeyed' | 'lost-collision' | 'won-collision' | 'failed' | undefined;

  constructor(
    private readonly sa: IkeSa,
    readonly old: ChildSa,
  ) {}

  exchange(): number {
    return this.phase === 'create' ? ExchangeType.CREATE_CHILD_SA : ExchangeType.INFORMATIONAL;
  }

  ready(): boolean {
    if (this.phase === 'delete') return this.toDelete.some((c) => c.state !== 'deleted');
    // 'rekeying' when this task is retrying (INVALID_KE_PAYLOAD asked for another PFS group).
    const state = this.create ? this.old.state === 'rekeying' : this.old.state === 'installed' && !this.old.replacedBy;
    return state && this.sa.state === 'established' && this.sa.children.includes(this.old);
  }

  async build(req: IkeMessage): Promise<void> {
    if (this.phase === 'create') {
      this.old.state = 'rekeying';
      this.create ??= new ChildCreateTask(this.sa, { config: this.old.config, rekey: this.old, inAuth: false });
      await this.create.build(req);
      return;
    }
    const live = this.toDelete.filter((c) => c.state !== 'deleted');
    for (const c of live) c.state = 'deleting';
    req.encrypted!.push({
      type: PayloadType.DELETE,
      protocol: ProtocolId.ESP,
      spiSize: 4,
      spis: live.map((c) => spiToBytes(c.spiIn)),
    });
  }

  async process(res: IkeMessage): Promise<TaskStatus> {
    if (this.phase === 'delete') {
      for (const c of this.toDelete) if (c.state !== 'deleted') await this.sa.uninstall(c, 'rekeyed');
      return 'done';
    }
    const old = this.old;
    const status = await this.create!.process(res);
    if (status === 'again') return 'again';
    if (status === 'failed') {
      this.outcome = 'failed';
      const f = this.create!.failure;
      if (old.state === 'rekeying') old.state = 'installed';
      if (f?.notFound && old.state !== 'deleted') {
        // The peer lost this CHILD SA: remove ours and create it anew.
        await this.sa.uninstall(old, 'peer no longer has it');
        this.sa.ctx.scheduleChildCreate(this.sa, old.config, 0);
      } else if (old.state === 'installed') {
        // Try again later (TEMPORARY_FAILURE after a collision, or any other failure before the SA expires).
        this.sa.ctx.scheduleChildRekey(
          this.sa,
          old,
          f?.temporary ? 2000 + this.sa.jitter(8000) : 10_000 + this.sa.jitter(20_000),
        );
      }
      return 'failed';
    }
    const created = this.create!.child!;
    const theirs =
      old.replacedBy && old.replacedBy !== created && old.replacedBy.state !== 'deleted' ? old.replacedBy : undefined;
    if (!theirs && old.state === 'deleted') {
      // The peer deleted the old CHILD SA meanwhile (rekey vs delete): the new one simply stands.
      this.outcome = 'rekeyed';
      return 'done';
    }
    if (theirs && isLower(created.lowestNonce!, theirs.lowestNonce!)) {
      // We lost: ours is redundant; the peer deletes the old one and keeps its own.
      this.outcome = 'lost-collision';
      old.state = 'rekeyed';
      created.state = 'rekeyed';
      created.replacedBy = theirs;
      this.toDelete = [created];
      // The peer won: its CHILD SA may send once the old one is gone; ours never carried our traffic longer.
    } else {
      this.outcome = theirs ? 'won-collision' : 'rekeyed';
      // (the old one may already be gone if the peer, resolving the same collision, deleted it)
      this.toDelete = old.state === 'deleted' ? [] : [old];
      if (old.state !== 'deleted') old.state = 'rekeyed';
      old.replacedBy = created;
      if (theirs) theirs.state = 'rekeyed';
      if (this.toDelete.length === 0) return 'done';
    }
    this.phase = 'delete';
    return 'again';
  }

  abort(): void {
    this.create?.abort();
    if (this.old.state === 'rekeying') this.old.state = 'installed';
    if (this.phase === 'delete') {
      handOver(this.sa, this.toDelete, 'rekeyed');
    } else if (this.old.state === 'installed') {
      // Not rekeyed after all (e.g. the IKE SA moved on): rekey it soon through whichever IKE SA owns it now.
      const owner = (this.old.owner as IkeSa | undefined) ?? this.sa;
      if (owner.state === 'established') owner.ctx.scheduleChildRekey(owner, this.old, 1000 + owner.jitter(2000));
    }
  }
}
