/**
 * The agent's UDP transport on loopback: the non-ESP marker on the NAT-T port, NAT keepalives, non-IKE datagrams
 * on 4500, and the per-source rate limit of new IKE_SA_INITs.
 */
import { createSocket, type Socket } from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { UdpTransport } from '../../src/agent/transport.js';
import type { Endpoint } from '../../src/ike/ports.js';

const transports: UdpTransport[] = [];
const sockets: Socket[] = [];

afterEach(async () => {
  for (const t of transports.splice(0)) await t.stop();
  for (const s of sockets.splice(0)) s.close();
});

async function freePorts(n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const s = createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
    out.push(s.address().port);
    s.close();
  }
  return out;
}

/** A fake IKE header: exchange `exchange`, response flag, responder SPI zero or not. */
function ike(exchange: number, opts: { response?: boolean; spiR?: boolean } = {}): Buffer {
  const b = Buffer.alloc(28);
  b[7] = 1; // initiator SPI non-zero
  if (opts.spiR) b[15] = 1;
  b[17] = 0x20;
  b[18] = exchange;
  b[19] = 0x08 | (opts.response ? 0x20 : 0);
  b.writeUInt32BE(28, 24);
  return b;
}

async function setup(initRate = 50) {
  const [ikePort, nattPort] = await freePorts(2);
  const t = new UdpTransport({ addresses: ['127.0.0.1'], ikePort: ikePort!, nattPort: nattPort!, initRate });
  transports.push(t);
  const got: { packet: Uint8Array; from: Endpoint; to: Endpoint }[] = [];
  t.onReceive((packet, from, to) => got.push({ packet, from, to }));
  await t.start();
  const peer = createSocket('udp4');
  sockets.push(peer);
  await new Promise<void>((r) => peer.bind(0, '127.0.0.1', () => r()));
  const send = (b: Buffer, port: number) => new Promise<void>((r) => peer.send(b, port, '127.0.0.1', () => r()));
  const settle = () => new Promise((r) => setTimeout(r, 50));
  return { t, got, peer, send, settle, ikePort: ikePort!, nattPort: nattPort! };
}

describe('UDP transport', () => {
  it('delivers IKE on 500 as is and strips the non-ESP marker on 4500', async () => {
    const { got, send, settle, ikePort, nattPort } = await setup();
    await send(ike(37, { spiR: true }), ikePort);
    await send(Buffer.concat([Buffer.alloc(4), ike(37, { spiR: true })]), nattPort);
    await settle();
    expect(got).toHaveLength(2);
    expect(got[0]!.packet.length).toBe(28);
    expect(got[1]!.packet.length).toBe(28);
    expect(got[1]!.to.port).toBe(nattPort);
  });

  it('ignores NAT keepalives and ESP (no marker) on the NAT-T port, counting them', async () => {
    const { t, got, send, settle, nattPort } = await setup();
    await send(Buffer.from([0xff]), nattPort);
    await send(Buffer.from([0x00, 0x00, 0x12, 0x34, 1, 2, 3, 4]), nattPort); // an ESP SPI, not the marker
    await settle();
    expect(got).toHaveLength(0);
    expect(t.stats.keepalivesReceived).toBe(1);
    expect(t.stats.droppedNonIke).toBe(1);
  });

  it('adds the marker when sending from the NAT-T port and sends keepalives from it', async () => {
    const { t, peer, nattPort } = await setup();
    const received: Buffer[] = [];
    peer.on('message', (m) => received.push(m));
    const to = { address: '127.0.0.1', port: peer.address().port };
    t.send(ike(37, { spiR: true }), { address: '127.0.0.1', port: nattPort }, to);
    t.keepalive({ address: '127.0.0.1', port: nattPort }, to);
    await new Promise((r) => setTimeout(r, 50));
    expect(received).toHaveLength(2);
    expect([...received[0]!.subarray(0, 4)]).toEqual([0, 0, 0, 0]);
    expect(received[0]!.length).toBe(32);
    expect([...received[1]!]).toEqual([0xff]);
  });

  it('rate-limits new IKE_SA_INITs per source (burst twice the rate), not other messages', async () => {
    const { t, got, send, settle, ikePort } = await setup(5);
    for (let i = 0; i < 30; i++) await send(ike(34), ikePort);
    for (let i = 0; i < 5; i++) await send(ike(37, { spiR: true }), ikePort);
    await settle();
    const inits = got.filter((g) => g.packet[18] === 34).length;
    expect(inits).toBeGreaterThanOrEqual(10);
    expect(inits).toBeLessThanOrEqual(12);
    expect(t.stats.rateLimited).toBe(30 - inits);
    expect(got.filter((g) => g.packet[18] === 37)).toHaveLength(5);
  });

  it('fails to start with a clear error when the port is taken', async () => {
    const { ikePort, nattPort } = await setup();
    const second = new UdpTransport({ addresses: ['127.0.0.1'], ikePort, nattPort, initRate: 50 });
    await expect(second.start()).rejects.toThrow(/EADDRINUSE/);
    await second.stop();
  });
});
