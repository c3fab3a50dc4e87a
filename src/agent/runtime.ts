/** Real-world ports for the engine: a monotonic clock with Node timers, and OpenSSL randomness. */
import { randomFillSync } from 'node:crypto';
import type { Cancel, Clock, Random } from '../ike/ports.js';

export class SystemClock implements Clock {
  private readonly origin = performance.now();
  now(): number {
    return performance.now() - this.origin;
  }
  wallNow(): number {
    return Date.now();
  }
  setTimer(delayMs: number, fn: () => void): Cancel {
    // Node caps timers at 2^31-1 ms; longer lifetimes are re-armed in steps.
    const max = 0x7fffffff;
    let handle: NodeJS.Timeout;
    let cancelled = false;
    const arm = (remaining: number) => {
      handle = setTimeout(
        () => {
          if (cancelled) return;
          if (remaining > max) arm(remaining - max);
          else fn();
        },
        Math.min(Math.max(0, remaining), max),
      );
      handle.unref?.();
    };
    arm(delayMs);
    return () => {
      cancelled = true;
      clearTimeout(handle);
    };
  }
}

export const systemRandom: Random = (length) => randomFillSync(new Uint8Array(length));
