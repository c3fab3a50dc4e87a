/**
 * ESP reception check: an INFORMATIONAL request asking the peer how many packets one of its inbound CHILD SAs (our
 * outbound) has received (MeshNotify.ESP_RECEIVED_QUERY, a private-use status notify). An ipsec-mesh peer answers
 * with the count; any other peer ignores the unknown status notify (RFC 7296 §3.10.1) and answers empty. Either way
 * the answer proves the peer alive, like a liveness check (RFC 7296 §2.4).
 *
 * The agent's ESP-blocked detector uses it to tell "ESP is dropped on the path" (the peer received nothing) from
 * "traffic only flows one way" (the peer received our packets and has nothing to send back).
 */

import type { IkeMessage } from '../codec/message.js';
import { ExchangeType, MESH_NOTIFY_MAGIC, MeshNotify, PayloadType, ProtocolId } from '../constants.js';
import type { ChildSa } from '../sa/child-sa.js';
import { bytesToSpi, IkeSa, spiToBytes } from '../sa/ike-sa.js';
import type { Task, TaskStatus } from './task.js';

const hasMagic = (d: Uint8Array) =>
  d.length >= MESH_NOTIFY_MAGIC.length && MESH_NOTIFY_MAGIC.every((b, i) => d[i] === b);

/** The query notify for the peer's inbound SA `spi`. */
export function espReceivedQuery(spi: number) {
  return {
    type: PayloadType.NOTIFY as const,
    protocol: ProtocolId.ESP,
    spi: spiToBytes(spi),
    notifyType: MeshNotify.ESP_RECEIVED_QUERY,
    data: Uint8Array.from(MESH_NOTIFY_MAGIC),
  };
}

/** The SPIs (our inbound) a request asks about. */
export function espReceivedQueries(req: IkeMessage): number[] {
  const out: number[] = [];
  for (const p of IkeSa.all(req)) {
    if (p.type !== PayloadType.NOTIFY || p.notifyType !== MeshNotify.ESP_RECEIVED_QUERY) continue;
    if (p.protocol !== ProtocolId.ESP || p.spi.length !== 4 || !hasMagic(p.data)) continue;
    if (out.length < 16) out.push(bytesToSpi(p.spi));
  }
  return out;
}

/** The answer for our inbound SA `spi`. */
export function espReceivedAnswer(spi: number, packets: bigint) {
  const data = new Uint8Array(MESH_NOTIFY_MAGIC.length + 8);
  data.set(MESH_NOTIFY_MAGIC);
  new DataView(data.buffer).setBigUint64(MESH_NOTIFY_MAGIC.length, packets);
  return {
    type: PayloadType.NOTIFY as const,
    protocol: ProtocolId.ESP,
    spi: spiToBytes(spi),
    notifyType: MeshNotify.ESP_RECEIVED,
    data,
  };
}

/** The count a response gives for the peer's inbound SA `spi`, if it gives one. */
export function espReceivedCount(res: IkeMessage, spi: number): bigint | undefined {
  for (const p of IkeSa.all(res)) {
    if (p.type !== PayloadType.NOTIFY || p.notifyType !== MeshNotify.ESP_RECEIVED) continue;
    if (p.protocol !== ProtocolId.ESP || p.spi.length !== 4 || bytesToSpi(p.spi) !== spi) continue;
    if (p.data.length !== MESH_NOTIFY_MAGIC.length + 8 || !hasMagic(p.data)) continue;
    return new DataView(p.data.buffer, p.data.byteOffset, p.data.length).getBigUint64(MESH_NOTIFY_MAGIC.length);
  }
  return undefined;
}

export class EspCheckTask implements Task<IkeMessage, IkeMessage> {
  readonly name = 'esp-check';

  constructor(
    private readonly sa: IkeSa,
    private readonly child: ChildSa,
  ) {}

  exchange(): number {
    return ExchangeType.INFORMATIONAL;
  }

  ready(): boolean {
    return this.sa.state === 'established';
  }

  build(req: IkeMessage): void {
    // A CHILD SA deleted meanwhile still makes this a plain liveness check.
    if (this.child.state === 'installed') req.encrypted!.push(espReceivedQuery(this.child.spiOut));
  }

  process(res: IkeMessage): TaskStatus {
    const packets = espReceivedCount(res, this.child.spiOut);
    const at = this.sa.ctx.ports.clock.now();
    this.child.peerReceived = packets === undefined ? { at } : { at, packets };
    return 'done';
  }
}
