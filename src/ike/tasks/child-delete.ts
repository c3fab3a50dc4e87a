/**
 * Deleting CHILD SAs (RFC 7296 §1.4.1): an INFORMATIONAL request with a Delete payload listing our inbound SPIs;
 * the peer answers with its inbound SPIs of the same CHILD SAs. Both sides then remove the kernel state.
 */

import type { IkeMessage } from '../codec/message.js';
import { ExchangeType, PayloadType, ProtocolId } from '../constants.js';
import type { ChildSa } from '../sa/child-sa.js';
import { type IkeSa, spiToBytes } from '../sa/ike-sa.js';
import type { Task, TaskStatus } from './task.js';

export class ChildDeleteTask implements Task<IkeMessage, IkeMessage> {
  readonly name = 'child-delete';
  private sent: ChildSa[] = [];

  constructor(
    private readonly sa: IkeSa,
    private readonly children: ChildSa[],
    private readonly reason: string,
  ) {}

  exchange(): number {
    return ExchangeType.INFORMATIONAL;
  }

  private pending(): ChildSa[] {
    return this.children.filter((c) => c.state !== 'deleted' && this.sa.children.includes(c));
  }

  ready(): boolean {
    return this.pending().length > 0;
  }

  build(req: IkeMessage): void {
    this.sent = this.pending();
    for (const c of this.sent) c.state = 'deleting';
    req.encrypted!.push({
      type: PayloadType.DELETE,
      protocol: ProtocolId.ESP,
      spiSize: 4,
      spis: this.sent.map((c) => spiToBytes(c.spiIn)),
    });
  }

  async process(): Promise<TaskStatus> {
    // Whatever the peer answers, these CHILD SAs are gone (RFC 7296 §1.4.1).
    for (const c of this.sent) if (c.state !== 'deleted') await this.sa.uninstall(c, this.reason);
    return 'done';
  }

  abort(): void {
    // The exchange never completed. If the CHILD SAs moved to a rekeyed IKE SA, delete them through it (the peer
    // must hear of it); otherwise their IKE SA is gone and so are they.
    handOver(this.sa, this.sent.length > 0 ? this.sent : this.pending(), this.reason);
  }
}

/** Delete CHILD SAs that an aborted task was removing: via their current IKE SA if it lives, else locally. */
export function handOver(from: IkeSa, children: ChildSa[], reason: string): void {
  const byOwner = new Map<IkeSa, ChildSa[]>();
  for (const c of children) {
    if (c.state === 'deleted') continue;
    const owner = (c.owner as IkeSa | undefined) ?? from;
    if (owner !== from && owner.state === 'established') {
      c.state = 'installed';
      byOwner.set(owner, [...(byOwner.get(owner) ?? []), c]);
    } else {
      void owner.uninstall(c, reason);
    }
  }
  for (const [owner, list] of byOwner) owner.queue([new ChildDeleteTask(owner, list, reason)]);
}
