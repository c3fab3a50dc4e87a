/**
 * The ESP reception check between two engines (src/ike/tasks/esp-check.ts): our engine asks how many packets the
 * peer's inbound CHILD SA received; an ipsec-mesh peer answers from its kernel counters, a peer that does not know
 * the private notify answers empty (RFC 7296 §3.10.1), which still proves it alive. Either way the IKE SA stays.
 */
import { describe, expect, it } from 'vitest';
import { ExchangeType, MESH_NOTIFY_MAGIC, MeshNotify, PayloadType } from '../../src/ike/constants.js';
import { espReceivedCount, espReceivedQueries, espReceivedQuery } from '../../src/ike/tasks/esp-check.js';
import { established, installedChildren, pair, steady } from './fixtures.js';

async function up(o: Parameters<typeof pair>[1] = {}) {
  const p = pair('esp-check', { sim: { conditions: { delayMs: 5 } }, ...o });
  p.a.engine.initiate(p.configA);
  if (!(await p.sim.until(() => steady(p.a, p.b, 1), 10_000))) throw new Error(p.sim.world.report());
  return p;
}

describe('ESP reception check (private notify)', () => {
  it("an ipsec-mesh peer answers with its inbound SA's packet count, read from its kernel", async () => {
    const p = await up();
    const sa = established(p.a)[0]!;
    const child = installedChildren(p.a)[0]!;
    const peerChild = installedChildren(p.b)[0]!;
    expect(peerChild.spiIn).toBe(child.spiOut);
    const before = sa.lastInbound;

    p.a.engine.checkEspReceived(sa, child);
    await p.sim.until(() => child.peerReceived !== undefined, 5000);
    expect(child.peerReceived?.packets).toBe(0n);
    expect(sa.lastInbound).toBeGreaterThan(before);

    // 123 packets arrive on the peer's inbound SA.
    p.b.host.kernel.addTraffic(peerChild.spiIn, 123 * 100, 123, { destination: p.b.site.address });
    const first = child.peerReceived!.at;
    await p.sim.run(10);
    p.a.engine.checkEspReceived(sa, child);
    await p.sim.until(() => (child.peerReceived?.at ?? 0) > first, 5000);
    expect(child.peerReceived?.packets).toBe(123n);
    expect(established(p.a)).toHaveLength(1);
    expect(established(p.b)).toHaveLength(1);
  });

  it('a peer that does not know the notify answers empty: a liveness answer without a count', async () => {
    // Both engines ignore the query here (as a foreign implementation must); a is only the asker.
    const q = await up({ sim: { conditions: { delayMs: 5 }, engine: { answerEspQueries: false } } });
    const sa = established(q.a)[0]!;
    const child = installedChildren(q.a)[0]!;
    const before = sa.lastInbound;
    q.a.engine.checkEspReceived(sa, child);
    await q.sim.until(() => child.peerReceived !== undefined, 5000);
    expect(child.peerReceived).toBeDefined();
    expect(child.peerReceived?.packets).toBeUndefined();
    expect(sa.lastInbound).toBeGreaterThan(before);
    expect(established(q.b)).toHaveLength(1);
  });

  it('codec: the query and the answer round-trip; bad magic, wrong SPI or length are ignored', () => {
    const q = espReceivedQuery(0x01020304);
    expect(q.notifyType).toBe(MeshNotify.ESP_RECEIVED_QUERY);
    const msg = (payloads: unknown[]) =>
      ({
        initiatorSpi: new Uint8Array(8),
        responderSpi: new Uint8Array(8),
        exchangeType: ExchangeType.INFORMATIONAL,
        flags: 0,
        messageId: 1,
        payloads: [],
        encrypted: payloads,
      }) as unknown as Parameters<typeof espReceivedQueries>[0];
    expect(espReceivedQueries(msg([q]))).toEqual([0x01020304]);
    expect(espReceivedQueries(msg([{ ...q, data: Uint8Array.of(1, 2, 3, 4, 5) }]))).toEqual([]);
    expect(espReceivedQueries(msg([{ ...q, spi: Uint8Array.of(1, 2) }]))).toEqual([]);
    const data = new Uint8Array(MESH_NOTIFY_MAGIC.length + 8);
    data.set(MESH_NOTIFY_MAGIC);
    data[data.length - 1] = 7;
    const a = {
      type: PayloadType.NOTIFY,
      protocol: 3,
      spi: Uint8Array.of(1, 2, 3, 4),
      notifyType: MeshNotify.ESP_RECEIVED,
      data,
    };
    expect(espReceivedCount(msg([a]), 0x01020304)).toBe(7n);
    expect(espReceivedCount(msg([a]), 0x01020305)).toBeUndefined();
    expect(espReceivedCount(msg([{ ...a, data: data.slice(0, 10) }]), 0x01020304)).toBeUndefined();
  });
});
