import { describe, expect, it } from 'vitest';
import type { Clock } from '../../src/ike/ports.js';
import { DEFAULT_EPOCH_MS, FakeClock } from '../sim/clock.js';
import { SeededRandom } from '../sim/random.js';

describe('FakeClock', () => {
  it('is a Clock: now, wallNow and two-argument setTimer', () => {
    const clock: Clock = new FakeClock({ start: 5, epochMs: 1_000_000 });
    expect(clock.now()).toBe(5);
    expect(clock.wallNow()).toBe(1_000_005);
    const fired: number[] = [];
    clock.setTimer(10, () => fired.push(clock.now()));
    (clock as FakeClock).advance(9);
    expect(fired).toEqual([]);
    expect(clock.now()).toBe(14);
    (clock as FakeClock).advance(1);
    expect(fired).toEqual([15]);
    expect(new FakeClock().wallNow()).toBe(DEFAULT_EPOCH_MS);
  });

  it('runs due timers in time order, equal times in scheduling order', () => {
    const clock = new FakeClock();
    const order: string[] = [];
    clock.setTimer(30, () => order.push('c30'));
    clock.setTimer(10, () => order.push('a10'));
    clock.setTimer(20, () => order.push('b20-1'));
    clock.setTimer(20, () => order.push('b20-2'));
    clock.setTimer(10, () => order.push('a10-2'));
    clock.setTimer(31, () => order.push('late'));
    expect(clock.advance(30)).toBe(5);
    expect(order).toEqual(['a10', 'a10-2', 'b20-1', 'b20-2', 'c30']);
    expect(clock.now()).toBe(30);
    expect(clock.nextTimerAt()).toBe(31);
  });

  it('sets now() to each timer time while its callback runs', () => {
    const clock = new FakeClock();
    const seen: number[] = [];
    for (const d of [7, 3, 5]) clock.setTimer(d, () => seen.push(clock.now()));
    clock.advance(100);
    expect(seen).toEqual([3, 5, 7]);
    expect(clock.now()).toBe(100);
  });

  it('runs timers scheduled by callbacks during advance when they fall due', () => {
    const clock = new FakeClock();
    const log: string[] = [];
    clock.setTimer(10, () => {
      log.push(`outer@${clock.now()}`);
      clock.setTimer(0, () => log.push(`zero@${clock.now()}`));
      clock.setTimer(5, () => log.push(`five@${clock.now()}`));
      clock.setTimer(50, () => log.push(`fifty@${clock.now()}`));
    });
    clock.setTimer(12, () => log.push(`twelve@${clock.now()}`));
    clock.advance(20);
    expect(log).toEqual(['outer@10', 'zero@10', 'twelve@12', 'five@15']);
    expect(clock.pendingTimers()).toEqual([{ at: 60 }]);
  });

  it('a timer scheduled for the current instant runs after those already due at that instant', () => {
    const clock = new FakeClock();
    const log: string[] = [];
    clock.setTimer(10, () => {
      log.push('a');
      clock.setTimer(0, () => log.push('c'));
    });
    clock.setTimer(10, () => log.push('b'));
    clock.advance(10);
    expect(log).toEqual(['a', 'b', 'c']);
  });

  it('cancel prevents the callback, twice is harmless, after firing is harmless', () => {
    const clock = new FakeClock();
    const log: string[] = [];
    const c1 = clock.setTimer(10, () => log.push('one'));
    const c2 = clock.setTimer(20, () => log.push('two'));
    c1();
    c1();
    expect(clock.pendingCount).toBe(1);
    clock.advance(25);
    c2();
    c2();
    expect(log).toEqual(['two']);
    expect(clock.pendingCount).toBe(0);
    expect(clock.nextTimerAt()).toBeUndefined();
  });

  it('a callback can cancel a timer due at the same instant', () => {
    const clock = new FakeClock();
    const log: string[] = [];
    let cancelB = (): void => {};
    clock.setTimer(10, () => {
      log.push('a');
      cancelB();
    });
    cancelB = clock.setTimer(10, () => log.push('b'));
    clock.advance(10);
    expect(log).toEqual(['a']);
  });

  it('pendingTimers lists live timers in firing order with labels', () => {
    const clock = new FakeClock();
    clock.setTimer(30, () => {}, 'retransmit');
    const cancel = clock.setLabeledTimer('dpd', 10, () => {});
    clock.setTimer(20, () => {});
    clock.setLabeledTimer('rekey', 20, () => {});
    expect(clock.pendingTimers()).toEqual([
      { at: 10, label: 'dpd' },
      { at: 20 },
      { at: 20, label: 'rekey' },
      { at: 30, label: 'retransmit' },
    ]);
    cancel();
    expect(clock.pendingTimers().map((t) => t.label)).toEqual([undefined, 'rekey', 'retransmit']);
    expect(clock.nextTimerAt()).toBe(20);
  });

  it('setTimerAt schedules at an absolute time, clamped to now', () => {
    const clock = new FakeClock({ start: 100 });
    const log: number[] = [];
    clock.setTimerAt(150, () => log.push(clock.now()));
    clock.setTimerAt(50, () => log.push(clock.now()));
    clock.advance(100);
    expect(log).toEqual([100, 150]);
  });

  it('negative delays run at now; non-finite delays and bad durations throw', () => {
    const clock = new FakeClock();
    let ran = false;
    clock.setTimer(-5, () => {
      ran = true;
    });
    clock.advance(0);
    expect(ran).toBe(true);
    expect(() => clock.setTimer(Number.NaN, () => {})).toThrow(RangeError);
    expect(() => clock.setTimer(Number.POSITIVE_INFINITY, () => {})).toThrow(RangeError);
    expect(() => clock.setTimer(undefined as unknown as number, () => {})).toThrow(RangeError);
    expect(() => clock.advance(-1)).toThrow(RangeError);
    expect(() => clock.advanceTo(-1)).toThrow(RangeError);
  });

  it('runNext jumps to the next timer only', () => {
    const clock = new FakeClock();
    const log: number[] = [];
    clock.setTimer(40, () => log.push(40));
    clock.setTimer(70, () => log.push(70));
    expect(clock.runNext()).toBe(true);
    expect(clock.now()).toBe(40);
    expect(log).toEqual([40]);
    expect(clock.runNext()).toBe(true);
    expect(clock.runNext()).toBe(false);
    expect(clock.now()).toBe(70);
  });

  it('runUntil stops as soon as the predicate holds', () => {
    const clock = new FakeClock();
    let count = 0;
    const tick = (): void => {
      count++;
      clock.setTimer(100, tick);
    };
    clock.setTimer(100, tick);
    expect(clock.runUntil(() => count === 3, 10_000)).toBe(true);
    expect(clock.now()).toBe(300);
    expect(count).toBe(3);
  });

  it('runUntil checks the predicate first and gives up at the deadline', () => {
    const clock = new FakeClock();
    let ran = 0;
    clock.setTimer(10, () => ran++);
    expect(clock.runUntil(() => true, 1000)).toBe(true);
    expect(ran).toBe(0);
    expect(clock.now()).toBe(0);
    expect(clock.runUntil(() => false, 1000)).toBe(false);
    expect(ran).toBe(1);
    expect(clock.now()).toBe(1000);
  });

  it('an exception in a callback propagates and leaves time at that timer', () => {
    const clock = new FakeClock();
    const log: string[] = [];
    clock.setTimer(10, () => {
      throw new Error('boom');
    });
    clock.setTimer(20, () => log.push('later'));
    expect(() => clock.advance(100)).toThrow('boom');
    expect(clock.now()).toBe(10);
    clock.advance(90);
    expect(log).toEqual(['later']);
  });

  it('refuses to advance from inside a callback', () => {
    const clock = new FakeClock();
    clock.setTimer(1, () => clock.advance(5));
    expect(() => clock.advance(10)).toThrow(/inside a timer callback/);
  });

  it('detects a runaway zero-delay timer loop', () => {
    const clock = new FakeClock({ maxTimersPerInstant: 1000 });
    const again = (): void => {
      clock.setTimer(0, again, 'spin');
    };
    clock.setTimer(5, again);
    expect(() => clock.advance(10)).toThrow(/more than 1000 timers fired at t=5.*spin/);
  });

  it('handles 200k timers in order with the heap, and many cancellations', () => {
    const clock = new FakeClock();
    const rng = new SeededRandom('clock-heap');
    const n = 200_000;
    let last = -1;
    let lastSeq = -1;
    let fired = 0;
    let outOfOrder = 0;
    const cancels: (() => void)[] = [];
    for (let i = 0; i < n; i++) {
      const at = rng.int(1000);
      const seq = i;
      cancels.push(
        clock.setTimer(at, () => {
          const now = clock.now();
          if (now < last || (now === last && seq < lastSeq)) outOfOrder++;
          last = now;
          lastSeq = seq;
          fired++;
        }),
      );
    }
    // Cancel every third timer (forces compaction of the lazily deleted entries).
    for (let i = 0; i < n; i += 3) cancels[i]!();
    const expected = n - Math.ceil(n / 3);
    expect(clock.pendingCount).toBe(expected);
    const started = performance.now();
    expect(clock.advance(1000)).toBe(expected);
    expect(performance.now() - started).toBeLessThan(5000);
    expect(fired).toBe(expected);
    expect(outOfOrder).toBe(0);
    expect(clock.pendingCount).toBe(0);
  });

  it('pendingCount stays right across compaction', () => {
    const clock = new FakeClock();
    const cancels = Array.from({ length: 5000 }, (_, i) => clock.setTimer(i, () => {}));
    for (let i = 0; i < 4000; i++) cancels[i]!();
    expect(clock.pendingCount).toBe(1000);
    expect(clock.nextTimerAt()).toBe(4000);
    expect(clock.pendingTimers()).toHaveLength(1000);
    expect(clock.advance(10_000)).toBe(1000);
  });

  describe('async', () => {
    it('advanceAsync lets promise continuations run between timers', async () => {
      const clock = new FakeClock();
      const log: string[] = [];
      const sleep = (ms: number) => new Promise<void>((resolve) => clock.setTimer(ms, resolve));
      const task = async () => {
        await sleep(10);
        log.push(`a@${clock.now()}`);
        await sleep(10);
        log.push(`b@${clock.now()}`);
      };
      void task();
      expect(await clock.advanceAsync(25)).toBe(2);
      expect(log).toEqual(['a@10', 'b@20']);
      expect(clock.now()).toBe(25);
    });

    it('sync advance does not run continuations in between (why the async variant exists)', async () => {
      const clock = new FakeClock();
      const log: string[] = [];
      const sleep = (ms: number) => new Promise<void>((resolve) => clock.setTimer(ms, resolve));
      void (async () => {
        await sleep(10);
        log.push('a');
        await sleep(10);
        log.push('b');
      })();
      clock.advance(25);
      await clock.flush();
      expect(log).toEqual(['a']);
      expect(clock.nextTimerAt()).toBe(35);
    });

    it('runUntilAsync waits for a condition reached through promises', async () => {
      const clock = new FakeClock();
      let done = false;
      void (async () => {
        for (let i = 0; i < 5; i++) await new Promise<void>((r) => clock.setTimer(100, r));
        done = true;
      })();
      expect(await clock.runUntilAsync(() => done, 10_000)).toBe(true);
      expect(clock.now()).toBe(500);
      expect(await clock.runUntilAsync(() => false, 50)).toBe(false);
      expect(clock.now()).toBe(550);
    });

    it('refuses overlapping async runs', async () => {
      const clock = new FakeClock();
      const first = clock.advanceAsync(10);
      await expect(clock.advanceAsync(10)).rejects.toThrow(/in progress/);
      await first;
      expect(clock.now()).toBe(10);
    });
  });
});
