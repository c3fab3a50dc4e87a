/**
 * Liveness check (dead peer detection, RFC 7296 §2.4): an empty INFORMATIONAL request. An answer proves the peer
 * alive; no answer after all retransmissions makes the IKE SA dead and runs the configured DPD action.
 */

import type { IkeMessage } from '../codec/message.js';
import { ExchangeType } from '../constants.js';
import type { IkeSa } from '../sa/ike-sa.js';
import type { Task, TaskStatus } from './task.js';

export class IkeDpdTask implements Task<IkeMessage, IkeMessage> {
  readonly name = 'ike-dpd';

  constructor(private readonly sa: IkeSa) {}

  exchange(): number {
    return ExchangeType.INFORMATIONAL;
  }

  ready(): boolean {
    return this.sa.state === 'established';
  }

  build(): void {}

  process(): TaskStatus {
    return 'done';
  }
}
