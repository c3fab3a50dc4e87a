/**
 * NAT detection in IKE_SA_INIT (RFC 7296 §2.23): NAT_DETECTION_SOURCE_IP and _DESTINATION_IP notifies. When a NAT
 * is found (or forced) the initiator floats to UDP 4500 for everything after IKE_SA_INIT, and ESP is UDP-encapsulated
 * (RFC 3948). With `natt: force` we send a source hash that cannot match, as strongSwan does, so both sides encapsulate.
 */

import type { IkeMessage } from '../codec/message.js';
import { natDetectionHash, natDetectionNotify } from '../codec/payloads/notify.js';
import { ExchangeType, IKE_NATT_PORT, IKE_PORT, NotifyType, PayloadType } from '../constants.js';
import type { IkeSa, PacketMeta } from '../sa/ike-sa.js';
import { IkeSa as Sa } from '../sa/ike-sa.js';
import { detectNat, natdHash } from '../sa/natd.js';
import type { Task, TaskStatus } from './task.js';

export class IkeNatdTask implements Task<IkeMessage, IkeMessage> {
  readonly name = 'ike-natd';

  /** Whether the peer sent NAT detection notifies (it supports NAT-T). */
  private peerSent = false;

  constructor(private readonly sa: IkeSa) {}

  exchange(): number {
    return ExchangeType.IKE_SA_INIT;
  }

  private add(msg: IkeMessage): void {
    const sa = this.sa;
    if (sa.config.natt === 'off') return;
    const p = sa.ctx.provider;
    const spiR = (msg.flags & 0x20) !== 0 ? sa.spiR : new Uint8Array(8);
    const source =
      sa.config.natt === 'force' ? p.hash('sha1', sa.ctx.ports.random(20)) : natdHash(p, sa.spiI, spiR, sa.local);
    msg.payloads.push(natDetectionNotify(NotifyType.NAT_DETECTION_SOURCE_IP, source));
    msg.payloads.push(
      natDetectionNotify(NotifyType.NAT_DETECTION_DESTINATION_IP, natdHash(p, sa.spiI, spiR, sa.remote)),
    );
  }

  private evaluate(msg: IkeMessage, received: PacketMeta): void {
    const sa = this.sa;
    if (sa.config.natt === 'off') return;
    const sources: Uint8Array[] = [];
    let destination: Uint8Array | undefined;
    for (const pl of Sa.all(msg)) {
      if (pl.type !== PayloadType.NOTIFY) continue;
      if (pl.notifyType === NotifyType.NAT_DETECTION_SOURCE_IP) sources.push(natDetectionHash(pl));
      if (pl.notifyType === NotifyType.NAT_DETECTION_DESTINATION_IP) destination = natDetectionHash(pl);
    }
    if (sources.length === 0 && destination === undefined) return; // peer does no NAT-T
    this.peerSent = true;
    const spiR = (msg.flags & 0x20) !== 0 ? msg.responderSpi : new Uint8Array(8);
    const r = detectNat(
      sa.ctx.provider,
      sa.spiI,
      spiR,
      { source: received.from, destination: received.to },
      sources,
      destination,
    );
    sa.natLocal = r.localBehindNat;
    sa.natRemote = r.remoteBehindNat;
  }

  build(req: IkeMessage): void {
    this.add(req);
  }

  process(res: IkeMessage): TaskStatus {
    const sa = this.sa;
    // As initiator we see the response on the addresses we sent from and to.
    this.evaluate(res, { from: sa.remote, to: sa.local });
    if (sa.natDetected && sa.config.natt !== 'off' && sa.remote.port === IKE_PORT) {
      sa.remote = { ...sa.remote, port: IKE_NATT_PORT };
      if (sa.local.port === IKE_PORT) sa.local = { ...sa.local, port: IKE_NATT_PORT };
    }
    return 'done';
  }

  processRequest(req: IkeMessage): void {
    // The responder SA was created with the addresses the request arrived on.
    this.evaluate(req, { from: this.sa.remote, to: this.sa.local });
  }

  buildResponse(res: IkeMessage): TaskStatus {
    // Answer with hashes only when the initiator sent some (it supports NAT-T), and not in an error response.
    const errored = res.payloads.some((p) => p.type === PayloadType.NOTIFY && p.notifyType < 16384);
    if (this.peerSent && !errored) this.add(res);
    return 'done';
  }
}
