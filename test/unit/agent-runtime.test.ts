import { describe, expect, it } from 'vitest';
import { pooledRandom, SystemClock } from '../../src/agent/runtime.js';

describe('agent runtime ports', () => {
  it('pooled randomness gives the requested lengths, never the same bytes twice, and large requests directly', () => {
    const r = pooledRandom(64);
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const b = r(8);
      expect(b).toHaveLength(8);
      const hex = Buffer.from(b).toString('hex');
      expect(seen.has(hex)).toBe(false);
      seen.add(hex);
    }
    expect(r(1000)).toHaveLength(1000);
    // A returned value is a copy: later draws do not change it.
    const a = r(16);
    const copy = a.slice();
    r(60);
    expect(a).toEqual(copy);
  });

  it('the system clock is monotonic and its timers can be cancelled', async () => {
    const c = new SystemClock();
    const t0 = c.now();
    let fired = 0;
    c.setTimer(5, () => fired++);
    const cancel = c.setTimer(5, () => fired++);
    cancel();
    await new Promise((res) => setTimeout(res, 30));
    expect(fired).toBe(1);
    expect(c.now()).toBeGreaterThan(t0);
    expect(Math.abs(c.wallNow() - Date.now())).toBeLessThan(1000);
  });
});
