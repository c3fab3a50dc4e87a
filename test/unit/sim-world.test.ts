/**
 * The harness pieces together, driven by a toy two-message key exchange (not IKE): an initiator retransmits a
 * request until answered, a responder allocates an SPI and installs SAs through its (slow) kernel, and both sides
 * must end with matching kernel SAs despite loss, duplication and reordering. Also a usage example for engine tests.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { Endpoint, KernelSa } from '../../src/ike/ports.js';
import { equalKeys, verifyPairing } from '../sim/kernel.js';
import type { LinkConditions } from '../sim/network.js';
import { type SimHost, SimWorld } from '../sim/world.js';

const SEL = {
  family: 4 as const,
  startAddress: '198.18.0.0',
  endAddress: '198.18.255.255',
  protocol: 0,
  startPort: 0,
  endPort: 65535,
};

function keyOf(label: string, n1: Uint8Array, n2: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha512').update(label).update(n1).update(n2).digest()).subarray(0, 36);
}

function childSa(spi: number, direction: 'in' | 'out', source: string, destination: string, key: Uint8Array) {
  const sa: KernelSa = {
    spi,
    protocol: 'esp',
    mode: 'tunnel',
    source,
    destination,
    reqid: 1,
    encryption: { name: 'rfc4106(gcm(aes))', key, icvBits: 128 },
    esn: true,
    replayWindow: 64,
    lifetime: {},
    selectors: { local: SEL, remote: SEL },
    direction,
  };
  return sa;
}

function encode(type: 1 | 2, spi: number, nonce: Uint8Array): Uint8Array {
  const b = new Uint8Array(21);
  b[0] = type;
  new DataView(b.buffer).setUint32(1, spi);
  b.set(nonce, 5);
  return b;
}

function decode(b: Uint8Array) {
  return { type: b[0], spi: new DataView(b.buffer, b.byteOffset).getUint32(1), nonce: b.slice(5, 21) };
}

/** Toy responder: idempotent under duplicated and retransmitted requests. */
function responder(world: SimWorld, host: SimHost) {
  const me = host.endpoint();
  const sessions = new Map<string, { reply?: Uint8Array }>();
  world.network.listen(me, (packet, from) => {
    const req = decode(packet);
    if (req.type !== 1) return;
    const id = Buffer.from(req.nonce).toString('hex');
    const known = sessions.get(id);
    if (known) {
      if (known.reply) world.network.send(known.reply, me, from);
      return; // still being set up: the retransmission will get the answer
    }
    const session: { reply?: Uint8Array } = {};
    sessions.set(id, session);
    void (async () => {
      const spi = await host.kernel.allocSpi({
        source: from.address,
        destination: me.address,
        protocol: 'esp',
        reqid: 1,
      });
      const nonce = host.random.bytes(16);
      await host.kernel.updateSa(childSa(spi, 'in', from.address, me.address, keyOf('i->r', req.nonce, nonce)));
      await host.kernel.addSa(childSa(req.spi, 'out', me.address, from.address, keyOf('r->i', req.nonce, nonce)));
      session.reply = encode(2, spi, nonce);
      world.network.send(session.reply, me, from);
    })();
  });
}

/** Toy initiator: resolves `done` once its SAs are installed; gives up after `tries` retransmissions. */
function initiator(world: SimWorld, host: SimHost, peer: Endpoint, tries = 20) {
  const me = host.endpoint();
  const state = { done: false, failed: false, sent: 0 };
  let answered = false;
  let cancel = (): void => {};
  void (async () => {
    const spi = await host.kernel.allocSpi({
      source: peer.address,
      destination: me.address,
      protocol: 'esp',
      reqid: 1,
    });
    const nonce = host.random.bytes(16);
    const request = encode(1, spi, nonce);
    const send = (): void => {
      if (state.sent++ >= tries) {
        state.failed = true;
        return;
      }
      world.network.send(request, me, peer);
      cancel = world.clock.setTimer(500, send, 'toy retransmit');
    };
    world.network.listen(me, (packet) => {
      const resp = decode(packet);
      if (resp.type !== 2 || answered) return;
      answered = true;
      cancel();
      void (async () => {
        await host.kernel.updateSa(childSa(spi, 'in', peer.address, me.address, keyOf('r->i', nonce, resp.nonce)));
        await host.kernel.addSa(childSa(resp.spi, 'out', me.address, peer.address, keyOf('i->r', nonce, resp.nonce)));
        state.done = true;
      })();
    });
    send();
  })();
  return state;
}

async function run(seed: string, conditions: Partial<LinkConditions>) {
  const world = new SimWorld({ seed, conditions, kernelLatencyMs: 2, kernel: { strictLarval: true } });
  const a = world.host('alice', '192.0.2.1');
  const b = world.host('bob', '203.0.113.2');
  responder(world, b);
  const state = initiator(world, a, b.endpoint());
  const ok = await world.clock.runUntilAsync(() => state.done || state.failed, 60_000);
  // Let stray retransmissions and duplicates drain.
  await world.clock.advanceAsync(5_000);
  return { world, a, b, ok, state };
}

describe('SimWorld with a toy exchange', () => {
  it('both sides install matching SAs on a perfect network', async () => {
    const { world, a, b, ok, state } = await run('toy-perfect', { delayMs: 10 });
    expect(ok && state.done).toBe(true);
    expect(state.sent).toBe(1);
    expect(verifyPairing(a.kernel, b.kernel)).toEqual([]);
    const [aOut] = a.kernel.sas().filter((s) => s.direction === 'out');
    expect(equalKeys(a.kernel, b.kernel, aOut!.spi)).toBe(true);
    expect(a.kernel.log()).toHaveLength(3);
    expect(world.clock.pendingCount).toBe(0);
  });

  it('converges under loss, duplication and reordering, and is reproducible from the seed', async () => {
    const bad: Partial<LinkConditions> = {
      loss: 0.4,
      duplicate: 0.2,
      delayMs: 20,
      jitterMs: 30,
      reorder: 0.3,
      reorderDelayMs: 400,
    };
    let retransmitted = false;
    let converged = 0;
    let duplicated = 0;
    for (let i = 0; i < 20; i++) {
      const seed = `toy-lossy-${i}`;
      const first = await run(seed, bad);
      if (!first.state.done) {
        // With 40 % loss each way, 20 tries can fail; that must be a clean, reported failure.
        expect(first.state.failed).toBe(true);
        continue;
      }
      converged++;
      duplicated += first.world.network.stats.duplicated;
      if (first.state.sent > 1) retransmitted = true;
      const problems = verifyPairing(first.a.kernel, first.b.kernel);
      expect(problems, first.world.report()).toEqual([]);
      expect(first.b.kernel.sas()).toHaveLength(2);
      expect(first.b.kernel.reservedSpis()).toEqual([]);
      const again = await run(seed, bad);
      expect(again.world.report()).toBe(first.world.report());
      expect(again.a.kernel.log()).toEqual(first.a.kernel.log());
    }
    expect(retransmitted).toBe(true);
    // P(20 tries all fail) is about 0.64^20 per seed: all should converge.
    expect(converged).toBe(20);
    expect(duplicated).toBeGreaterThan(0);
  });

  it('different seeds give different runs', async () => {
    const one = await run('toy-x', { loss: 0.2, jitterMs: 50 });
    const two = await run('toy-y', { loss: 0.2, jitterMs: 50 });
    expect(one.world.report()).not.toBe(two.world.report());
  });

  it('a partition makes the initiator give up; the report shows why without key bytes', async () => {
    const world = new SimWorld({ seed: 'toy-partition', keepTrace: 50 });
    const a = world.host('alice', '192.0.2.1');
    const b = world.host('bob', '203.0.113.2');
    world.network.partition(a.address, b.address);
    responder(world, b);
    const state = initiator(world, a, b.endpoint(), 5);
    expect(await world.clock.runUntilAsync(() => state.failed, 60_000)).toBe(true);
    const report = world.report();
    expect(report).toContain('seed=toy-partition');
    expect(report).toContain('"partition":5');
    expect(report).toMatch(/drop\(partition\) 192\.0\.2\.1:500 -> 203\.0\.113\.2:500 len=21/);
    expect(report).toContain('reserved esp spi=');
  });

  it('hosts are unique and their streams independent of other hosts', () => {
    const w1 = new SimWorld({ seed: 7 });
    const w2 = new SimWorld({ seed: 7 });
    w2.host('zed', '198.51.100.9');
    const a1 = w1.host('alice', '192.0.2.1');
    const a2 = w2.host('alice', '192.0.2.1');
    expect(a1.random.bytes(8)).toEqual(a2.random.bytes(8));
    expect(() => w1.host('alice', '192.0.2.7')).toThrow(/exists/);
    expect(() => w1.host('bob', '192.0.2.1')).toThrow(/taken/);
    const ports = a1.ports({ byAddresses: () => [], byIdentities: () => undefined });
    expect(ports.clock).toBe(w1.clock);
    expect(ports.kernel).toBe(a1.kernel);
    expect(ports.random(4)).toHaveLength(4);
    expect(w1.hosts.map((h) => h.name)).toEqual(['alice']);
  });
});
