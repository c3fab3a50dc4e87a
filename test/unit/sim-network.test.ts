import { describe, expect, it } from 'vitest';
import type { Endpoint, Sender } from '../../src/ike/ports.js';
import { FakeClock } from '../sim/clock.js';
import { type LinkConditions, SimNetwork, type TraceEvent } from '../sim/network.js';
import { SeededRandom } from '../sim/random.js';

const A: Endpoint = { address: '192.0.2.1', port: 500 };
const B: Endpoint = { address: '198.51.100.2', port: 500 };
const C: Endpoint = { address: '203.0.113.3', port: 500 };

interface Received {
  at: number;
  data: Uint8Array;
  from: Endpoint;
  to: Endpoint;
}

function world(seed: string, conditions: Partial<LinkConditions> = {}, keepTrace = 0) {
  const clock = new FakeClock();
  const net = new SimNetwork({ clock, random: new SeededRandom(seed).fork('network'), conditions, keepTrace });
  const inbox = new Map<string, Received[]>();
  const bind = (e: Endpoint) => {
    const list: Received[] = [];
    inbox.set(`${e.address}:${e.port}`, list);
    net.listen(e, (data, from, to) => list.push({ at: clock.now(), data, from, to }));
    return list;
  };
  return { clock, net, bind, inbox };
}

/** Packet i carries its index in the first 4 bytes. */
function pkt(i: number, length = 100): Uint8Array {
  const b = new Uint8Array(length);
  new DataView(b.buffer).setUint32(0, i);
  return b;
}
const idx = (r: Received) => new DataView(r.data.buffer, r.data.byteOffset).getUint32(0);

describe('SimNetwork', () => {
  it('delivers through the Sender port, never synchronously, with (packet, from, to)', () => {
    const { clock, net, bind } = world('basic');
    const atB = bind(B);
    const sender: Sender = net.sender();
    sender.send(pkt(7), A, B);
    expect(atB).toHaveLength(0);
    expect(net.stats.inFlight).toBe(1);
    clock.advance(0);
    expect(atB).toHaveLength(1);
    expect(idx(atB[0]!)).toBe(7);
    expect(atB[0]!.from).toEqual(A);
    expect(atB[0]!.to).toEqual(B);
    expect(net.stats).toMatchObject({ sent: 1, delivered: 1, dropped: 0, duplicated: 0, inFlight: 0 });
  });

  it('copies the packet: the sender may reuse its buffer, the receiver may scribble on its copy', () => {
    const { clock, net, bind } = world('copy');
    const atB = bind(B);
    const buf = pkt(1);
    net.send(buf, A, B);
    buf.fill(0xff);
    clock.advance(0);
    expect(idx(atB[0]!)).toBe(1);
    atB[0]!.data.fill(0xee);
    expect(net.captured()[0]!.bytes[0]).toBe(0);
  });

  it('a handler that replies does not re-enter: the reply is scheduled', () => {
    const { clock, net, bind } = world('reply', { delayMs: 5 });
    const atA = bind(A);
    let depth = 0;
    net.listen(B, (data, from, to) => {
      depth++;
      expect(depth).toBe(1);
      net.send(data, to, from);
      depth--;
    });
    net.send(pkt(3), A, B);
    clock.advance(9);
    expect(atA).toHaveLength(0);
    clock.advance(1);
    expect(atA.map((r) => [r.at, idx(r)])).toEqual([[10, 3]]);
  });

  it('applies base delay and jitter, and keeps order on a pair without reordering', () => {
    const { clock, net, bind } = world('jitter', { delayMs: 20, jitterMs: 30 });
    const atB = bind(B);
    for (let i = 0; i < 500; i++) {
      net.send(pkt(i), A, B);
      clock.advance(1);
    }
    clock.advance(100);
    expect(atB.map(idx)).toEqual(Array.from({ length: 500 }, (_, i) => i));
    const latencies = atB.map((r) => r.at - idx(r));
    expect(Math.min(...latencies)).toBeGreaterThanOrEqual(20);
    expect(Math.max(...latencies)).toBeLessThan(20 + 30 + 30); // FIFO can add queueing behind a slow packet
    expect(new Set(latencies.map(Math.floor)).size).toBeGreaterThan(10); // jitter actually varies delays
  });

  it('reorders about the requested fraction of packets', () => {
    const { clock, net, bind } = world('reorder', { delayMs: 10, reorder: 0.2, reorderDelayMs: 50 });
    const atB = bind(B);
    const n = 2000;
    for (let i = 0; i < n; i++) {
      net.send(pkt(i), A, B);
      clock.advance(1);
    }
    clock.advance(100);
    expect(atB).toHaveLength(n);
    const order = atB.map(idx);
    expect([...order].sort((x, y) => x - y)).toEqual(Array.from({ length: n }, (_, i) => i));
    let inversions = 0;
    for (let i = 1; i < n; i++) if (order[i]! < order[i - 1]!) inversions++;
    expect(inversions).toBeGreaterThan(n * 0.05);
    expect(inversions).toBeLessThan(n * 0.3);
  });

  it('loses about `loss` of the packets (seeded bounds) and counts them', () => {
    const { clock, net, bind } = world('loss', { loss: 0.25 });
    const atB = bind(B);
    const n = 10_000;
    for (let i = 0; i < n; i++) net.send(pkt(i), A, B);
    clock.advance(1);
    const s = net.stats;
    // Binomial sd = sqrt(10000 * 0.25 * 0.75) ~ 43: 5 sd
    expect(Math.abs(s.dropped - 2500)).toBeLessThan(217);
    expect(s.dropsByReason.loss).toBe(s.dropped);
    expect(s.delivered).toBe(atB.length);
    expect(s.sent).toBe(n);
    expect(s.delivered + s.dropped).toBe(s.sent + s.duplicated);
  });

  it('duplicates about `duplicate` of the packets; each copy arrives separately', () => {
    const { clock, net, bind } = world('dup', { duplicate: 0.1, delayMs: 3, jitterMs: 4 });
    const atB = bind(B);
    const n = 10_000;
    for (let i = 0; i < n; i++) net.send(pkt(i), A, B);
    clock.advance(10);
    const s = net.stats;
    // sd ~ 30: 5 sd
    expect(Math.abs(s.duplicated - 1000)).toBeLessThan(150);
    expect(atB.length).toBe(n + s.duplicated);
    expect(s.delivered + s.dropped).toBe(s.sent + s.duplicated);
    const twice = net.captured().filter((p) => p.copies === 2);
    expect(twice).toHaveLength(s.duplicated);
    expect(twice.every((p) => p.deliveredAt.length === 2)).toBe(true);
  });

  it('loss and duplication together keep the counters consistent', () => {
    const { clock, net, bind } = world('both', { loss: 0.3, duplicate: 0.3 });
    bind(B);
    for (let i = 0; i < 5000; i++) net.send(pkt(i), A, B);
    clock.advance(1);
    const s = net.stats;
    expect(s.delivered + s.dropped).toBe(s.sent + s.duplicated);
    // A duplicated copy is lost independently: some packets have one copy delivered and one lost.
    expect(net.captured().some((p) => p.copies === 2 && p.deliveredAt.length === 1)).toBe(true);
  });

  it('drops packets above the MTU, counting IP/UDP headers and the non-ESP marker on 4500', () => {
    const { clock, net, bind } = world('mtu', { mtu: 1280 });
    const atB = bind(B);
    const B4500 = { address: B.address, port: 4500 };
    const atB4500 = bind(B4500);
    net.send(pkt(1, 1280 - 28), A, B); // exactly 1280 on the wire
    net.send(pkt(2, 1280 - 27), A, B);
    net.send(pkt(3, 1280 - 28), { address: A.address, port: 4500 }, B4500); // + 4 byte marker: too big
    net.send(pkt(4, 1280 - 32), { address: A.address, port: 4500 }, B4500);
    clock.advance(0);
    expect(atB.map(idx)).toEqual([1]);
    expect(atB4500.map(idx)).toEqual([4]);
    expect(net.stats.dropsByReason.mtu).toBe(2);
    // IPv6 has a 40-byte header.
    const v6a = { address: '2001:db8::1', port: 500 };
    const v6b = { address: '2001:db8::2', port: 500 };
    const at6 = bind(v6b);
    net.send(pkt(5, 1280 - 48), v6a, v6b);
    net.send(pkt(6, 1280 - 47), v6a, v6b);
    clock.advance(0);
    expect(at6.map(idx)).toEqual([5]);
  });

  it('per-link conditions override the global ones, both ways or one way', () => {
    const { clock, net, bind } = world('links', { delayMs: 1 });
    const atB = bind(B);
    const atC = bind(C);
    const atA = bind(A);
    net.setLink(A.address, B.address, { delayMs: 50 });
    net.setLink(A.address, C.address, { loss: 1 }, { oneWay: true });
    net.send(pkt(1), A, B);
    net.send(pkt(2), B, A);
    net.send(pkt(3), A, C);
    net.send(pkt(4), C, A);
    clock.advance(49);
    expect(atB).toHaveLength(0);
    expect(atA.map(idx)).toEqual([4]);
    clock.advance(1);
    expect(atB.map(idx)).toEqual([1]);
    expect(atA.map(idx)).toEqual([4, 2]);
    expect(atC).toHaveLength(0);
    expect(net.conditionsFor(A.address, C.address).loss).toBe(1);
    expect(net.conditionsFor(C.address, A.address).loss).toBe(0);
    net.clearLink(A.address, C.address);
    net.send(pkt(5), A, C);
    clock.advance(1);
    expect(atC.map(idx)).toEqual([5]);
  });

  it('partition drops both directions until healed; packets already in flight still land', () => {
    const { clock, net, bind } = world('partition', { delayMs: 10 });
    const atA = bind(A);
    const atB = bind(B);
    const atC = bind(C);
    net.send(pkt(1), A, B);
    net.partition(B.address, A.address);
    expect(net.isPartitioned(A.address, B.address)).toBe(true);
    net.send(pkt(2), A, B);
    net.send(pkt(3), B, A);
    net.send(pkt(4), A, C);
    clock.advance(10);
    expect(atB.map(idx)).toEqual([1]);
    expect(atA).toHaveLength(0);
    expect(atC.map(idx)).toEqual([4]);
    expect(net.stats.dropsByReason.partition).toBe(2);
    net.heal();
    net.send(pkt(5), B, A);
    clock.advance(10);
    expect(atA.map(idx)).toEqual([5]);
    net.partition(A.address, B.address);
    net.partition(A.address, C.address);
    net.heal(B.address, A.address);
    expect(net.isPartitioned(A.address, B.address)).toBe(false);
    expect(net.isPartitioned(A.address, C.address)).toBe(true);
  });

  it('a downed host neither sends nor receives, and in-flight packets to it are lost', () => {
    const { clock, net, bind } = world('down', { delayMs: 10 });
    const atA = bind(A);
    const atB = bind(B);
    net.send(pkt(1), A, B);
    net.down(B.address);
    net.send(pkt(2), A, B);
    net.send(pkt(3), B, A);
    clock.advance(10);
    expect(atB).toHaveLength(0);
    expect(atA).toHaveLength(0);
    expect(net.stats.dropsByReason.down).toBe(3);
    net.up(B.address);
    expect(net.isDown(B.address)).toBe(false);
    net.send(pkt(4), A, B);
    clock.advance(10);
    expect(atB.map(idx)).toEqual([4]);
  });

  it('drops packets to an endpoint nobody listens on; listen twice is EADDRINUSE; unbind works', () => {
    const { clock, net } = world('unbound');
    const got: number[] = [];
    const unbind = net.listen(B, () => got.push(1));
    expect(() => net.listen(B, () => {})).toThrow(expect.objectContaining({ code: 'EADDRINUSE' }));
    net.send(pkt(1), A, { address: B.address, port: 4500 });
    net.send(pkt(2), A, B);
    clock.advance(0);
    expect(got).toEqual([1]);
    unbind();
    net.send(pkt(3), A, B);
    clock.advance(0);
    expect(got).toEqual([1]);
    expect(net.stats.dropsByReason.unreachable).toBe(2);
  });

  it('matches IPv6 addresses in any spelling', () => {
    const { clock, net, bind } = world('v6');
    const at = bind({ address: '2001:db8::2', port: 500 });
    net.send(pkt(1), { address: '2001:db8::1', port: 500 }, { address: '2001:DB8:0:0::2', port: 500 });
    clock.advance(0);
    expect(at).toHaveLength(1);
  });

  it('filters can drop chosen packets or replace their bytes', () => {
    const { clock, net, bind } = world('filter');
    const atB = bind(B);
    let seen = 0;
    const remove = net.addFilter((p) => {
      seen++;
      if (p.id === 1) return 'drop';
      if (p.id === 2) return pkt(99);
      return undefined;
    });
    for (let i = 0; i < 3; i++) net.send(pkt(i), A, B);
    clock.advance(0);
    expect(atB.map(idx)).toEqual([0, 99]);
    expect(net.stats.dropsByReason.filter).toBe(1);
    expect(net.captured()[1]!.dropped).toEqual(['filter']);
    expect(idx({ data: net.captured()[2]!.bytes } as Received)).toBe(99);
    remove();
    net.send(pkt(3), A, B);
    clock.advance(0);
    expect(seen).toBe(3);
    expect(atB.map(idx)).toEqual([0, 99, 3]);
  });

  it('captured() records fate and bytes, filterable by address or endpoint', () => {
    const { clock, net, bind } = world('capture', { delayMs: 2 });
    bind(B);
    net.send(pkt(1), A, B);
    net.send(pkt(2), A, C);
    net.send(pkt(3), B, A);
    clock.advance(2);
    const all = net.captured();
    expect(all.map((p) => p.id)).toEqual([0, 1, 2]);
    expect(all[0]).toMatchObject({ sentAt: 0, from: A, to: B, copies: 1, deliveredAt: [2], dropped: [] });
    expect(all[1]!.dropped).toEqual(['unreachable']);
    expect(net.captured({ from: A.address }).map((p) => p.id)).toEqual([0, 1]);
    expect(net.captured({ to: B }).map((p) => p.id)).toEqual([0]);
    expect(net.captured({ to: { address: B.address, port: 4500 } })).toEqual([]);
    net.clearCaptured();
    expect(net.captured()).toEqual([]);
  });

  it('captureLimit keeps only the newest packets', () => {
    const clock = new FakeClock();
    const net = new SimNetwork({ clock, random: new SeededRandom('lim'), captureLimit: 10 });
    for (let i = 0; i < 100; i++) net.send(pkt(i), A, B);
    const ids = net.captured().map((p) => p.id);
    expect(ids).toEqual(Array.from({ length: 10 }, (_, i) => 90 + i));
    const off = new SimNetwork({ clock, random: new SeededRandom('lim'), capture: false });
    off.send(pkt(0), A, B);
    expect(off.captured()).toEqual([]);
  });

  it('rejects nonsense conditions', () => {
    const { net } = world('bad');
    expect(() => net.setConditions({ loss: 1.5 })).toThrow(RangeError);
    expect(() => net.setConditions({ delayMs: -1 })).toThrow(RangeError);
    expect(() => net.setLink(A.address, B.address, { duplicate: -0.1 })).toThrow(RangeError);
    expect(() => net.setConditions({ mtu: 0 })).toThrow(RangeError);
  });

  describe('determinism and tracing', () => {
    const noisy: Partial<LinkConditions> = {
      loss: 0.1,
      duplicate: 0.05,
      delayMs: 5,
      jitterMs: 10,
      reorder: 0.1,
      reorderDelayMs: 40,
    };

    function run(seed: string, conditions = noisy): TraceEvent[] {
      const { clock, net } = world(seed, conditions);
      const events: TraceEvent[] = [];
      net.onTrace((e) => events.push(e));
      net.listen(B, (data, from, to) => {
        // Echo every other packet back, so the trace depends on deliveries as well.
        if (data[3]! % 2 === 0) net.send(data, to, from);
      });
      net.listen(A, () => {});
      for (let i = 0; i < 300; i++) {
        net.send(pkt(i, 60 + (i % 7)), A, B);
        clock.advance(3);
      }
      clock.advance(1000);
      return events;
    }

    it('same seed gives the same trace; another seed a different one', () => {
      const first = run('det-1');
      expect(first.length).toBeGreaterThan(600);
      expect(run('det-1')).toEqual(first);
      expect(run('det-2')).not.toEqual(first);
      const kinds = new Set(first.map((e) => e.event));
      expect(kinds).toEqual(new Set(['send', 'duplicate', 'deliver', 'drop']));
    });

    it('changing the loss rate does not change the delays of packets that survive both runs', () => {
      const times = (loss: number) => {
        const { clock, net, bind } = world('stable', { ...noisy, loss, duplicate: 0 });
        const atB = bind(B);
        for (let i = 0; i < 500; i++) net.send(pkt(i), A, B);
        clock.advance(1000);
        return new Map(atB.map((r) => [idx(r), r.at]));
      };
      const clean = times(0);
      const lossy = times(0.3);
      expect(lossy.size).toBeLessThan(400);
      // FIFO queueing behind a packet that is now lost may move a packet earlier, never later.
      let same = 0;
      for (const [i, at] of lossy) {
        expect(at).toBeLessThanOrEqual(clean.get(i)!);
        if (at === clean.get(i)) same++;
      }
      expect(same).toBeGreaterThan(lossy.size * 0.5);
    });

    it('trace events carry time, endpoints, length and the first bytes in hex', () => {
      const { clock, net, bind } = world('trace', { delayMs: 4 }, 5);
      bind(B);
      const events: TraceEvent[] = [];
      net.onTrace((e) => events.push(e));
      const p = Uint8Array.from({ length: 40 }, (_, i) => i);
      net.send(p, A, B);
      clock.advance(4);
      expect(events).toEqual([
        { time: 0, id: 0, copy: 0, event: 'send', from: A, to: B, length: 40, head: expect.any(String) },
        { time: 4, id: 0, copy: 0, event: 'deliver', from: A, to: B, length: 40, head: expect.any(String) },
      ]);
      expect(events[0]!.head).toBe(Array.from({ length: 28 }, (_, i) => i.toString(16).padStart(2, '0')).join(''));
      for (let i = 0; i < 10; i++) net.send(pkt(i), A, C);
      clock.advance(4);
      expect(net.trace()).toHaveLength(5);
      const dump = net.dumpTrace();
      expect(dump.split('\n')[0]).toBe('# seed trace/network');
      expect(dump).toContain('drop(unreachable) 192.0.2.1:500 -> 203.0.113.3:500 len=100');
    });
  });

  it('schedules deliveries as labelled clock timers', () => {
    const { clock, net } = world('labels', { delayMs: 7 });
    net.send(pkt(0), A, B);
    expect(clock.pendingTimers()).toEqual([{ at: 7, label: 'net #0' }]);
  });
});
