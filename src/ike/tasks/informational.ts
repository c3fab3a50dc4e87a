/**
 * The responder side of INFORMATIONAL exchanges (RFC 7296 §1.4): Delete payloads for CHILD SAs or the IKE SA,
 * notifications, and empty requests (liveness checks, §1.4 / §2.4), which are answered with an empty response.
 * An ESP_RECEIVED_QUERY (src/ike/tasks/esp-check.ts) is answered with the inbound packet count of the CHILD SA it
 * names, read from the kernel.
 */

import type { IkeMessage } from '../codec/message.js';
import { ExchangeType, NotifyType, PayloadType, ProtocolId } from '../constants.js';
import type { ChildSa } from '../sa/child-sa.js';
import { bytesToSpi, type IkeSa, IkeSa as Sa, spiToBytes } from '../sa/ike-sa.js';
import { espReceivedAnswer, espReceivedQueries } from './esp-check.js';
import type { Task, TaskStatus } from './task.js';

export class InformationalResponder implements Task<IkeMessage, IkeMessage> {
  readonly name = 'informational';
  private deleteIke = false;
  private answer: ChildSa[] = [];
  private removeNow: ChildSa[] = [];
  private espQueries: number[] = [];

  constructor(private readonly sa: IkeSa) {}

  exchange(): number {
    return ExchangeType.INFORMATIONAL;
  }

  build(): void {
    throw new Error('InformationalResponder is responder-only');
  }

  process(): TaskStatus {
    throw new Error('InformationalResponder is responder-only');
  }

  processRequest(req: IkeMessage): void {
    const sa = this.sa;
    for (const p of Sa.all(req)) {
      if (p.type !== PayloadType.DELETE) continue;
      if (p.protocol === ProtocolId.IKE) {
        this.deleteIke = true;
        continue;
      }
      if (p.protocol !== ProtocolId.ESP && p.protocol !== ProtocolId.AH) continue;
      for (const spiBytes of p.spis) {
        if (spiBytes.length !== 4) continue;
        const child = sa.findChildByOutbound(bytesToSpi(spiBytes));
        if (!child || this.removeNow.includes(child)) continue;
        this.removeNow.push(child);
        // Simultaneous deletes: do not answer for CHILD SAs we are deleting ourselves (RFC 7296 §1.4.1).
        if (child.state !== 'deleting') this.answer.push(child);
      }
    }
    if (sa.ctx.answerEspQueries) this.espQueries = espReceivedQueries(req);
    const err = Sa.errorNotify(req);
    if (err) {
      sa.ctx.emit({
        type: 'kernel-error',
        sa: sa.ref(),
        operation: 'peer-notify',
        message: `peer sent ${NotifyType[err.notifyType] ?? err.notifyType} in an INFORMATIONAL request`,
      });
    }
  }

  async buildResponse(res: IkeMessage): Promise<TaskStatus> {
    const sa = this.sa;
    if (this.deleteIke) {
      // Answer (empty), then go: the peer has already forgotten this IKE SA (RFC 7296 §1.4.1).
      void sa.tm.serialise(() => {
        const wasUp = sa.state === 'established';
        sa.destroy('deleted by peer');
        // A tunnel meant to stay up (start action start) is negotiated again, with the usual back-off: the peer
        // may have deleted it to apply a new configuration. Nothing is started if another IKE SA of the tunnel
        // is up by then (a reauthentication, the peer initiating itself).
        if (wasUp && sa.config.children.some((c) => c.startAction === 'start')) {
          sa.ctx.scheduleRestart(sa.config, 'deleted by peer');
        }
      }, 'ike-deleted');
      return 'done';
    }
    for (const spi of this.espQueries) {
      const child = sa.findChildByInbound(spi);
      if (!child?.inboundInstalled || this.removeNow.includes(child)) continue;
      try {
        const c = await sa.ctx.ports.kernel.querySa({ spi, protocol: 'esp', destination: sa.local.address });
        if (c) res.encrypted!.push(espReceivedAnswer(spi, c.packets));
      } catch {
        // No count then: the asker treats the answer as a plain liveness check.
      }
    }
    if (this.answer.length > 0) {
      res.encrypted!.push({
        type: PayloadType.DELETE,
        protocol: ProtocolId.ESP,
        spiSize: 4,
        spis: this.answer.map((c) => spiToBytes(c.spiIn)),
      });
    }
    for (const child of this.removeNow) {
      // We answered a rekey of this CHILD SA: its successor may now send (make-before-break, responder side).
      const next = child.replacedBy;
      if (next?.pendingOutbound && next.state === 'installed') await sa.activateOutbound(next);
      await sa.uninstall(child, 'deleted by peer');
    }
    return 'done';
  }
}
