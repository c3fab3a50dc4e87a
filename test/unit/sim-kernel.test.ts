import { describe, expect, it } from 'vitest';
import type { KernelIpsec, KernelPolicy, KernelSa, KernelSelector } from '../../src/ike/ports.js';
import { FakeClock } from '../sim/clock.js';
import { equalKeys, KernelError, keyMismatch, RecordingKernel, verifyPairing } from '../sim/kernel.js';
import { SeededRandom } from '../sim/random.js';

const LEFT = '192.0.2.1';
const RIGHT = '203.0.113.2';

const subnet = (prefix: string): KernelSelector => ({
  family: 4,
  startAddress: `${prefix}.0`,
  endAddress: `${prefix}.255`,
  protocol: 0,
  startPort: 0,
  endPort: 65535,
});
const SITE_A = subnet('198.18.1');
const SITE_B = subnet('198.18.2');

function kernel(name = 'k', extra: Partial<ConstructorParameters<typeof RecordingKernel>[0]> = {}) {
  return new RecordingKernel({ random: new SeededRandom('kernel-test').fork(name), name, ...extra });
}

/** An SA of `side` for `spi` with keys drawn from `keySeed` (equal seeds: equal keys). */
function sa(spi: number, direction: 'in' | 'out', keySeed = 'keys', over: Partial<KernelSa> = {}): KernelSa {
  const keys = new SeededRandom(keySeed);
  return {
    spi,
    protocol: 'esp',
    mode: 'tunnel',
    source: direction === 'out' ? LEFT : RIGHT,
    destination: direction === 'out' ? RIGHT : LEFT,
    reqid: 1,
    encryption: { name: 'rfc4106(gcm(aes))', key: keys.bytes(36), icvBits: 128 },
    esn: true,
    replayWindow: 128,
    lifetime: { softBytes: 1000n, hardBytes: 2000n },
    selectors: { local: SITE_A, remote: SITE_B },
    direction,
    ...over,
  };
}

function policy(direction: 'in' | 'out' | 'fwd', over: Partial<KernelPolicy> = {}): KernelPolicy {
  return {
    direction,
    local: SITE_A,
    remote: SITE_B,
    reqid: 1,
    mode: 'tunnel',
    source: direction === 'out' ? LEFT : RIGHT,
    destination: direction === 'out' ? RIGHT : LEFT,
    ...over,
  };
}

async function rejection(p: Promise<unknown>): Promise<KernelError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(KernelError);
    return err as KernelError;
  }
  throw new Error('expected a rejection');
}

describe('RecordingKernel', () => {
  it('implements the KernelIpsec port', () => {
    const k: KernelIpsec = kernel();
    expect(typeof k.allocSpi).toBe('function');
  });

  describe('allocSpi', () => {
    it('returns unique non-zero SPIs >= 256, reproducible from the seed', async () => {
      const k = kernel('alloc');
      const spis: number[] = [];
      for (let i = 0; i < 2000; i++) {
        spis.push(await k.allocSpi({ source: RIGHT, destination: LEFT, protocol: 'esp', reqid: 1 }));
      }
      expect(new Set(spis).size).toBe(spis.length);
      expect(spis.every((s) => Number.isInteger(s) && s >= 256 && s <= 0xffffffff)).toBe(true);
      expect(spis.some((s) => s > 0x80000000)).toBe(true);
      const again = kernel('alloc');
      expect(await again.allocSpi({ source: RIGHT, destination: LEFT, protocol: 'esp', reqid: 1 })).toBe(spis[0]);
      expect(k.reservedSpis()).toHaveLength(2000);
      expect(k.calls[0]!.spi).toBe(spis[0]);
      expect(k.calls[0]!.summary).toMatch(/^allocSpi esp 203\.0\.113\.2->192\.0\.2\.1 reqid=1 -> 0x[0-9a-f]{8}$/);
    });

    it('never hands out an SPI twice, even with a tiny random space', async () => {
      // A generator that keeps repeating itself forces the retry path.
      const rng = new SeededRandom('repeat');
      let calls = 0;
      const original = rng.int.bind(rng);
      rng.int = (n: number) => (calls++ % 3 === 2 ? original(n) : 1000);
      const k = new RecordingKernel({ random: rng });
      const a = await k.allocSpi({ source: RIGHT, destination: LEFT, protocol: 'esp', reqid: 1 });
      const b = await k.allocSpi({ source: RIGHT, destination: LEFT, protocol: 'esp', reqid: 1 });
      expect(a).toBe(1256);
      expect(b).not.toBe(a);
    });

    it('a reserved SPI is filled by addSa (lenient) or updateSa, and released by deleteSa', async () => {
      const k = kernel();
      const spi = await k.allocSpi({ source: RIGHT, destination: LEFT, protocol: 'esp', reqid: 1 });
      await k.addSa(sa(spi, 'in'));
      expect(k.reservedSpis()).toEqual([]);
      const spi2 = await k.allocSpi({ source: RIGHT, destination: LEFT, protocol: 'esp', reqid: 2 });
      expect(await k.querySa({ spi: spi2, protocol: 'esp', destination: LEFT })).toEqual({ bytes: 0n, packets: 0n });
      await k.updateSa(sa(spi2, 'in'));
      const spi3 = await k.allocSpi({ source: RIGHT, destination: LEFT, protocol: 'esp', reqid: 3 });
      await k.deleteSa({ spi: spi3, protocol: 'esp', destination: LEFT });
      expect(k.reservedSpis()).toEqual([]);
      expect(k.sas().map((s) => s.spi)).toEqual([spi, spi2]);
    });

    it('strictLarval: addSa on a reserved SPI is EEXIST, like Linux NEWSA on a larval state', async () => {
      const k = kernel('strict', { strictLarval: true });
      const spi = await k.allocSpi({ source: RIGHT, destination: LEFT, protocol: 'esp', reqid: 1 });
      expect((await rejection(k.addSa(sa(spi, 'in')))).code).toBe('EEXIST');
      await k.updateSa(sa(spi, 'in'));
      expect(k.sas()).toHaveLength(1);
    });
  });

  describe('SAs', () => {
    it('add on an existing (destination, spi, protocol) is EEXIST; other keys coexist', async () => {
      const k = kernel();
      await k.addSa(sa(0x1000, 'out'));
      const err = await rejection(k.addSa(sa(0x1000, 'out')));
      expect(err.code).toBe('EEXIST');
      expect(err.errno).toBe(17);
      expect(err.op).toBe('addSa');
      await k.addSa(sa(0x1000, 'in')); // same SPI, other destination
      await k.addSa(
        sa(0x1000, 'out', 'keys', { protocol: 'ah', encryption: { name: 'ecb(cipher_null)', key: new Uint8Array(0) } }),
      );
      expect(k.sas()).toHaveLength(3);
      expect(k.calls.map((c) => c.result)).toEqual(['ok', 'EEXIST', 'ok', 'ok']);
    });

    it('delete or update of a missing SA is ENOENT (or ESRCH, as Linux says, when asked)', async () => {
      const k = kernel();
      expect((await rejection(k.deleteSa({ spi: 0x2000, protocol: 'esp', destination: RIGHT }))).code).toBe('ENOENT');
      expect((await rejection(k.updateSa(sa(0x2000, 'out')))).code).toBe('ENOENT');
      const linux = kernel('linux', { missingSaErrno: 'ESRCH' });
      const err = await rejection(linux.deleteSa({ spi: 0x2000, protocol: 'esp', destination: RIGHT }));
      expect(err.code).toBe('ESRCH');
      expect(err.errno).toBe(3);
    });

    it('delete removes exactly the keyed SA; matches IPv6 destinations in any spelling', async () => {
      const k = kernel();
      await k.addSa(sa(0x3000, 'out'));
      await k.addSa(sa(0x3001, 'out'));
      await k.deleteSa({ spi: 0x3000, protocol: 'esp', destination: RIGHT });
      expect(k.sas().map((s) => s.spi)).toEqual([0x3001]);
      await k.addSa(sa(0x3002, 'out', 'keys', { source: '2001:db8::1', destination: '2001:db8::2' }));
      await k.deleteSa({ spi: 0x3002, protocol: 'esp', destination: '2001:DB8:0::2' });
      expect(k.sas()).toHaveLength(1);
      expect((await rejection(k.deleteSa({ spi: 0x3001, protocol: 'ah', destination: RIGHT }))).code).toBe('ENOENT');
    });

    it('update replaces the SA and keeps its counters', async () => {
      const k = kernel();
      await k.addSa(sa(0x4000, 'out'));
      k.addTraffic(0x4000, 500, 5);
      await k.updateSa(sa(0x4000, 'out', 'keys', { encap: { sourcePort: 4500, destinationPort: 4500 } }));
      expect(k.sa(0x4000)?.encap).toEqual({ sourcePort: 4500, destinationPort: 4500 });
      expect(await k.querySa({ spi: 0x4000, protocol: 'esp', destination: RIGHT })).toEqual({
        bytes: 500n,
        packets: 5n,
      });
    });

    it('stores a copy: later changes to the caller object or its keys do not leak in', async () => {
      const k = kernel();
      const s = sa(0x5000, 'out');
      await k.addSa(s);
      s.encryption.key.fill(0);
      s.reqid = 99;
      const stored = k.sa(0x5000)!;
      expect(stored.reqid).toBe(1);
      expect(stored.encryption.key.some((b) => b !== 0)).toBe(true);
      stored.encryption.key.fill(1);
      expect(k.sa(0x5000)!.encryption.key.some((b) => b !== 1)).toBe(true);
    });

    it('rejects bad SPIs, bad key lengths and unknown algorithms like xfrm_user', async () => {
      const k = kernel();
      expect((await rejection(k.addSa(sa(0, 'out')))).code).toBe('EINVAL');
      const shortKey = sa(0x6000, 'out', 'keys', {
        encryption: { name: 'rfc4106(gcm(aes))', key: new Uint8Array(32), icvBits: 128 },
      });
      expect((await rejection(k.addSa(shortKey))).code).toBe('EINVAL'); // missing the 4 salt bytes
      const noIcv = sa(0x6001, 'out', 'keys', { encryption: { name: 'rfc4106(gcm(aes))', key: new Uint8Array(20) } });
      expect((await rejection(k.addSa(noIcv))).code).toBe('EINVAL');
      const unknown = sa(0x6002, 'out', 'keys', { encryption: { name: 'cbc(rot13)', key: new Uint8Array(16) } });
      expect((await rejection(k.addSa(unknown))).code).toBe('ENOSYS');
      const cbc = (integKey: number, trunc: number) =>
        sa(0x6003, 'out', 'keys', {
          encryption: { name: 'cbc(aes)', key: new Uint8Array(32) },
          integrity: { name: 'hmac(sha256)', key: new Uint8Array(integKey), truncationBits: trunc },
        });
      expect((await rejection(k.addSa(cbc(20, 128)))).code).toBe('EINVAL');
      expect((await rejection(k.addSa(cbc(32, 96 + 8)))).code).toBe('EINVAL');
      await k.addSa(cbc(32, 128));
      const aeadPlusInteg = sa(0x6004, 'out', 'keys', {
        integrity: { name: 'hmac(sha256)', key: new Uint8Array(32), truncationBits: 128 },
      });
      expect((await rejection(k.addSa(aeadPlusInteg))).code).toBe('EINVAL');
      await k.addSa(
        sa(0x6005, 'out', 'keys', {
          encryption: { name: 'rfc7539esp(chacha20,poly1305)', key: new Uint8Array(36), icvBits: 128 },
        }),
      );
      const lax = kernel('lax', { validateAlgorithms: false });
      await lax.addSa(unknown);
      expect(k.sas().map((s) => s.spi)).toEqual([0x6003, 0x6005]);
    });
  });

  describe('policies', () => {
    it('keyed by (direction, selectors, mark, if_id): duplicate is EEXIST, others coexist', async () => {
      const k = kernel();
      await k.addPolicy(policy('out'));
      expect((await rejection(k.addPolicy(policy('out', { priority: 5, reqid: 9 })))).code).toBe('EEXIST');
      await k.addPolicy(policy('in'));
      await k.addPolicy(policy('fwd'));
      await k.addPolicy(policy('out', { mark: { value: 1, mask: 0xff } }));
      await k.addPolicy(policy('out', { ifId: 7 }));
      await k.addPolicy(policy('out', { remote: subnet('198.18.3') }));
      await k.addPolicy(policy('out', { local: { ...SITE_A, protocol: 17, startPort: 500, endPort: 500 } }));
      // Same mark after masking is the same key.
      expect((await rejection(k.addPolicy(policy('out', { mark: { value: 0x101, mask: 0xff } })))).code).toBe('EEXIST');
      expect(k.policies()).toHaveLength(7);
    });

    it('delete of a missing policy is ENOENT; delete matches on the key only', async () => {
      const k = kernel();
      await k.addPolicy(policy('out', { mark: { value: 1, mask: 0xff } }));
      expect((await rejection(k.deletePolicy({ direction: 'out', local: SITE_A, remote: SITE_B }))).code).toBe(
        'ENOENT',
      );
      await k.deletePolicy({ direction: 'out', local: SITE_A, remote: SITE_B, mark: { value: 1, mask: 0xff } });
      expect(k.policies()).toEqual([]);
      expect((await rejection(k.deletePolicy(policy('in')))).code).toBe('ENOENT');
    });
  });

  describe('counters', () => {
    it('querySa returns counters bumped by addTraffic; missing SA gives undefined', async () => {
      const clock = new FakeClock();
      const k = kernel('traffic', { clock, enforceLifetimes: false });
      await k.addSa(sa(0x7000, 'out'));
      expect(await k.querySa({ spi: 0x7000, protocol: 'esp', destination: RIGHT })).toEqual({ bytes: 0n, packets: 0n });
      clock.advance(1234);
      const t = k.addTraffic(0x7000, 1500, 3);
      expect(t).toEqual({ bytes: 1500n, packets: 3n, lastUsed: 1234, softExceeded: true, hardExceeded: false });
      expect(k.addTraffic(0x7000, 600n, 1n).hardExceeded).toBe(true);
      expect(await k.querySa({ spi: 0x7000, protocol: 'esp', destination: RIGHT })).toEqual({
        bytes: 2100n,
        packets: 4n,
        lastUsed: 1234,
      });
      expect(await k.querySa({ spi: 0x7001, protocol: 'esp', destination: RIGHT })).toBeUndefined();
      expect(() => k.addTraffic(0x7001, 1, 1)).toThrow(/no SA/);
    });

    it('addTraffic needs a destination when an SPI is installed twice', async () => {
      const k = kernel();
      await k.addSa(sa(0x7100, 'out'));
      await k.addSa(sa(0x7100, 'in'));
      expect(() => k.addTraffic(0x7100, 1, 1)).toThrow(/more than one/);
      expect(k.addTraffic(0x7100, 1, 1, { destination: LEFT }).bytes).toBe(1n);
    });
  });

  describe('hard lifetimes', () => {
    /** Sets lifetime.hardSeconds through a structural type (the field is newer than some versions of the port). */
    const withHardSeconds = (s: KernelSa, seconds: number): KernelSa => {
      (s.lifetime as Record<string, unknown>).hardSeconds = seconds;
      return s;
    };

    it('removes an SA hardSeconds after installation and reports it', async () => {
      const clock = new FakeClock();
      const seen: string[] = [];
      const k = kernel('life', { clock, onExpire: (e) => seen.push(`${e.reason}:${e.spi}`) });
      await k.addSa(withHardSeconds(sa(0xe000, 'out'), 60));
      await k.addSa(sa(0xe001, 'out')); // no time limit
      clock.advance(59_999);
      expect(k.sas()).toHaveLength(2);
      clock.advance(1);
      expect(k.sas().map((s) => s.spi)).toEqual([0xe001]);
      expect(k.expirations).toEqual([
        {
          at: 60_000,
          spi: 0xe000,
          protocol: 'esp',
          destination: RIGHT,
          direction: 'out',
          reqid: 1,
          reason: 'hard-seconds',
        },
      ]);
      expect(seen).toEqual([`hard-seconds:${0xe000}`]);
      expect(clock.pendingTimers()).toEqual([]);
    });

    it('a deleted or re-added SA is not expired by the old timer; update keeps the installation time', async () => {
      const clock = new FakeClock();
      const k = kernel('life2', { clock });
      await k.addSa(withHardSeconds(sa(0xe100, 'out'), 10));
      await k.deleteSa({ spi: 0xe100, protocol: 'esp', destination: RIGHT });
      expect(clock.pendingTimers()).toEqual([]);
      clock.advance(5_000);
      await k.addSa(withHardSeconds(sa(0xe100, 'out'), 10));
      clock.advance(6_000); // 11 s after the first add, 6 s after the second
      expect(k.sas()).toHaveLength(1);
      await k.updateSa(withHardSeconds(sa(0xe100, 'out'), 20));
      clock.advance(13_999); // 19.999 s after the second add
      expect(k.sas()).toHaveLength(1);
      clock.advance(1);
      expect(k.sas()).toEqual([]);
      expect(k.expirations.map((e) => e.at)).toEqual([25_000]);
    });

    it('removes an SA when traffic reaches its hard byte or packet limit', async () => {
      const k = kernel('bytes');
      await k.addSa(sa(0xe200, 'out')); // softBytes 1000, hardBytes 2000
      expect(k.addTraffic(0xe200, 1999, 1).hardExceeded).toBe(false);
      expect(k.sas()).toHaveLength(1);
      expect(k.addTraffic(0xe200, 1, 1).hardExceeded).toBe(true);
      expect(k.sas()).toEqual([]);
      await k.addSa(sa(0xe201, 'out', 'keys', { lifetime: { hardPackets: 3n } }));
      k.addTraffic(0xe201, 10, 3);
      expect(k.expirations.map((e) => e.reason)).toEqual(['hard-bytes', 'hard-packets']);
    });

    it('enforceLifetimes: false keeps everything', async () => {
      const clock = new FakeClock();
      const k = kernel('keep', { clock, enforceLifetimes: false });
      await k.addSa(withHardSeconds(sa(0xe300, 'out'), 1));
      clock.advance(10_000);
      k.addTraffic(0xe300, 5000, 1);
      expect(k.sas()).toHaveLength(1);
      expect(k.expirations).toEqual([]);
    });
  });

  describe('call record', () => {
    it('records every call in order with a summary and detail that never contain key bytes', async () => {
      const k = kernel();
      const out = sa(0x8000, 'out', 'secret', {
        encryption: { name: 'cbc(aes)', key: new SeededRandom('secret-enc').bytes(32) },
        integrity: { name: 'hmac(sha256)', key: new SeededRandom('secret-int').bytes(32), truncationBits: 128 },
      });
      await k.addSa(out);
      await k.addPolicy(policy('out'));
      await k.querySa({ spi: 0x8000, protocol: 'esp', destination: RIGHT });
      await k.deleteSa({ spi: 0x8000, protocol: 'esp', destination: RIGHT });
      await k.deletePolicy(policy('out'));
      expect(k.calls.map((c) => c.op)).toEqual(['addSa', 'addPolicy', 'querySa', 'deleteSa', 'deletePolicy']);
      expect(k.calls.map((c) => c.seq)).toEqual([0, 1, 2, 3, 4]);
      expect(k.log(['addSa'])).toEqual([
        'addSa esp out spi=0x00008000 192.0.2.1->203.0.113.2 reqid=1 tunnel cbc(aes)/256 hmac(sha256)/128 esn ' +
          '198.18.1.0-198.18.1.255==198.18.2.0-198.18.2.255',
      ]);
      expect(k.log(['deletePolicy'])).toEqual(['deletePolicy out 198.18.1.0-198.18.1.255==198.18.2.0-198.18.2.255']);
      const detail = k.calls[0]!.detail;
      expect(detail.encryption).toEqual({ name: 'cbc(aes)', keyBits: 256, icvBits: undefined });
      expect(detail.integrity).toEqual({ name: 'hmac(sha256)', keyBits: 256, truncationBits: 128 });
      // No key bytes anywhere in the record, in any encoding we might print.
      const text = JSON.stringify(k.calls, (_, v) => (typeof v === 'bigint' ? v.toString() : v));
      for (const key of [out.encryption.key, out.integrity!.key]) {
        const hex = Buffer.from(key).toString('hex');
        expect(text).not.toContain(hex.slice(0, 16));
        expect(text).not.toContain(Buffer.from(key).toString('base64').slice(0, 12));
        expect(text).not.toContain(Array.from(key.subarray(0, 6)).join(','));
      }
      expect(k.describe()).not.toContain(Buffer.from(out.encryption.key).toString('hex').slice(0, 16));
    });
  });

  describe('latency', () => {
    it('takes effect and resolves only after the latency, in FIFO order', async () => {
      const clock = new FakeClock();
      const k = kernel('slow', { clock, latencyMs: 5 });
      const events: string[] = [];
      const p1 = k.addSa(sa(0x9000, 'in')).then(() => events.push(`in@${clock.now()}`));
      const p2 = k.addSa(sa(0x9001, 'out')).then(() => events.push(`out@${clock.now()}`));
      expect(k.sas()).toEqual([]);
      expect(k.pendingRequests).toBe(2);
      expect(k.calls.map((c) => c.result)).toEqual(['pending', 'pending']);
      await clock.advanceAsync(4);
      expect(k.sas()).toEqual([]);
      expect(events).toEqual([]);
      await clock.advanceAsync(1);
      await Promise.all([p1, p2]);
      expect(events).toEqual(['in@5', 'out@5']);
      expect(k.sas().map((s) => s.spi)).toEqual([0x9000, 0x9001]);
      expect(k.calls.map((c) => [c.at, c.settledAt, c.result])).toEqual([
        [0, 5, 'ok'],
        [0, 5, 'ok'],
      ]);
    });

    it('per-operation latency never lets a later request overtake an earlier one', async () => {
      const clock = new FakeClock();
      const k = kernel('fifo', { clock, latencyMs: (op) => (op === 'addSa' ? 50 : 1) });
      const order: string[] = [];
      void k.addSa(sa(0xa000, 'out')).then(() => order.push('addSa'));
      void k.addPolicy(policy('out')).then(() => order.push('addPolicy'));
      await clock.advanceAsync(49);
      expect(order).toEqual([]);
      await clock.advanceAsync(1);
      expect(order).toEqual(['addSa', 'addPolicy']);
      expect(clock.pendingTimers()).toEqual([]);
    });

    it('errors arrive after the latency too', async () => {
      const clock = new FakeClock();
      const k = kernel('slow-err', { clock, latencyMs: 10 });
      const settled: string[] = [];
      k.deleteSa({ spi: 0xb000, protocol: 'esp', destination: RIGHT }).catch((e: KernelError) =>
        settled.push(`${e.code}@${clock.now()}`),
      );
      await clock.advanceAsync(9);
      expect(settled).toEqual([]);
      await clock.advanceAsync(1);
      expect(settled).toEqual(['ENOENT@10']);
    });

    it('without latency, state changes before the call returns', () => {
      const k = kernel();
      void k.addPolicy(policy('in'));
      expect(k.policies()).toHaveLength(1);
    });

    it('latency without a clock is a configuration error', () => {
      expect(() => kernel('x', { latencyMs: 3 })).toThrow(/needs a clock/);
    });
  });

  describe('failure injection', () => {
    it('failNext fails the next call of that op with the errno and no effect', async () => {
      const k = kernel();
      k.failNext('addSa', 'ENOMEM');
      const err = await rejection(k.addSa(sa(0xc000, 'out')));
      expect(err.code).toBe('ENOMEM');
      expect(err.errno).toBe(12);
      expect(err.message).toContain('injected');
      expect(k.sas()).toEqual([]);
      await k.addSa(sa(0xc000, 'out'));
      expect(k.sas()).toHaveLength(1);
      expect(k.calls.map((c) => c.result)).toEqual(['ENOMEM', 'ok']);
    });

    it('counts, predicates and per-op queues', async () => {
      const k = kernel();
      k.failNext('addPolicy', 'ENOBUFS', { count: 2 });
      k.failNext('addSa', 'EAGAIN', { when: (c) => c.summary.includes(' in ') });
      expect((await rejection(k.addPolicy(policy('out')))).code).toBe('ENOBUFS');
      await k.addSa(sa(0xd000, 'out')); // predicate does not match: succeeds, injection stays armed
      expect((await rejection(k.addPolicy(policy('out')))).code).toBe('ENOBUFS');
      await k.addPolicy(policy('out'));
      expect((await rejection(k.addSa(sa(0xd001, 'in')))).code).toBe('EAGAIN');
      await k.addSa(sa(0xd001, 'in'));
      expect(k.calls.map((c) => `${c.op}:${c.result}`)).toEqual([
        'addPolicy:ENOBUFS',
        'addSa:ok',
        'addPolicy:ENOBUFS',
        'addPolicy:ok',
        'addSa:EAGAIN',
        'addSa:ok',
      ]);
    });

    it('injected failures on allocSpi do not reserve anything', async () => {
      const k = kernel();
      k.failNext('allocSpi', 'ENOSPC');
      expect((await rejection(k.allocSpi({ source: RIGHT, destination: LEFT, protocol: 'esp', reqid: 1 }))).code).toBe(
        'ENOSPC',
      );
      expect(k.reservedSpis()).toEqual([]);
    });
  });

  describe('equalKeys', () => {
    /** The SA carrying traffic from `from` to `to`, as installed on either end. */
    const flow = (spi: number, direction: 'in' | 'out', from: string, to: string, keys: string, over = {}) =>
      sa(spi, direction, keys, { source: from, destination: to, ...over });

    async function pair(keysAtoB: string, keysBtoA: string) {
      const a = kernel('A');
      const b = kernel('B');
      // A -> B uses B's SPI 0x100; B -> A uses A's SPI 0x200.
      await a.addSa(flow(0x100, 'out', LEFT, RIGHT, keysAtoB));
      await b.addSa(flow(0x100, 'in', LEFT, RIGHT, keysAtoB));
      await b.addSa(flow(0x200, 'out', RIGHT, LEFT, keysBtoA));
      await a.addSa(flow(0x200, 'in', RIGHT, LEFT, keysBtoA));
      return { a, b };
    }

    it('true when A out and B in carry the same keys', async () => {
      const { a, b } = await pair('k1', 'k2');
      expect(equalKeys(a, b, 0x100)).toBe(true);
      expect(equalKeys(b, a, 0x200)).toBe(true);
      expect(verifyPairing(a, b)).toEqual([]);
      // Direction matters: A's inbound 0x200 is not compared with B's inbound.
      expect(equalKeys(a, b, 0x200)).toBe(false);
    });

    it('false, with a reason that names no key bytes, when the keys differ', async () => {
      const a = kernel('A');
      const b = kernel('B');
      await a.addSa(flow(0x100, 'out', LEFT, RIGHT, 'one'));
      await b.addSa(flow(0x100, 'in', LEFT, RIGHT, 'two'));
      expect(equalKeys(a, b, 0x100)).toBe(false);
      const why = keyMismatch(a, b, 0x100)!;
      expect(why).toMatch(/encryption keys differ/);
      expect(why).not.toContain(Buffer.from(a.sa(0x100)!.encryption.key).toString('hex').slice(0, 8));
      expect(verifyPairing(a, b)).toEqual([why]);
    });

    it('compares integrity keys too', async () => {
      const cbc = (keys: string) => ({
        encryption: { name: 'cbc(aes)', key: new SeededRandom('same').bytes(32) },
        integrity: { name: 'hmac(sha256)', key: new SeededRandom(keys).bytes(32), truncationBits: 128 },
      });
      const a = kernel('A');
      const b = kernel('B');
      await a.addSa(flow(0x100, 'out', LEFT, RIGHT, 'k', cbc('i1')));
      await b.addSa(flow(0x100, 'in', LEFT, RIGHT, 'k', cbc('i2')));
      expect(keyMismatch(a, b, 0x100)).toMatch(/integrity keys differ/);
    });

    it('false when the SA is missing, in the wrong direction, or parameters differ', async () => {
      const a = kernel('A');
      const b = kernel('B');
      await a.addSa(flow(0x100, 'out', LEFT, RIGHT, 'k'));
      expect(keyMismatch(a, b, 0x100)).toMatch(/B has 0 inbound/);
      expect(keyMismatch(b, a, 0x100)).toMatch(/B has 0 outbound/);
      const key = flow(0, 'in', LEFT, RIGHT, 'k').encryption.key;
      await b.addSa(
        flow(0x100, 'in', LEFT, RIGHT, 'k', { encryption: { name: 'rfc4106(gcm(aes))', key, icvBits: 64 } }),
      );
      expect(keyMismatch(a, b, 0x100)).toMatch(/ICV/);
      expect(equalKeys(a, b, 0x100)).toBe(false);
      const c = kernel('C');
      await c.addSa(flow(0x100, 'in', LEFT, RIGHT, 'k', { esn: false }));
      expect(keyMismatch(a, c, 0x100)).toMatch(/ESN/);
      const d = kernel('D');
      await d.addSa(flow(0x100, 'in', RIGHT, LEFT, 'k'));
      expect(keyMismatch(a, d, 0x100)).toMatch(/source/);
    });

    it('verifyPairing reports an inbound SA nobody sends on', async () => {
      const { a, b } = await pair('k1', 'k2');
      await b.addSa(flow(0x300, 'in', LEFT, RIGHT, 'k3'));
      expect(verifyPairing(a, b)).toEqual(['B has inbound SPI 0x00000300 that A does not send on']);
    });
  });
});
