/** Deleting the IKE SA (RFC 7296 §1.4.1): an INFORMATIONAL with Delete(IKE); its CHILD SAs go with it. */

import type { IkeMessage } from '../codec/message.js';
import { ExchangeType, PayloadType, ProtocolId } from '../constants.js';
import type { IkeSa } from '../sa/ike-sa.js';
import type { Task, TaskStatus } from './task.js';

export class IkeDeleteTask implements Task<IkeMessage, IkeMessage> {
  readonly name = 'ike-delete';

  constructor(
    private readonly sa: IkeSa,
    private readonly reason: string,
  ) {}

  exchange(): number {
    return ExchangeType.INFORMATIONAL;
  }

  ready(): boolean {
    return this.sa.state !== 'destroyed';
  }

  build(req: IkeMessage): void {
    if (this.sa.state === 'established') this.sa.state = 'deleting';
    req.encrypted!.push({ type: PayloadType.DELETE, protocol: ProtocolId.IKE, spiSize: 0, spis: [] });
  }

  process(): TaskStatus {
    this.sa.destroy(this.reason);
    return 'done';
  }

  abort(): void {
    // No answer (or the SA went away): it is deleted all the same.
    if (this.sa.state === 'deleting' || this.sa.state === 'rekeyed') this.sa.destroy(this.reason);
  }
}
