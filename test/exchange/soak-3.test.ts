import { describe, expect, it } from 'vitest';
import { soakSeed, summarize } from './soak.js';

// Part 4 of 4 of the 200-seed soak in `npm test` (split so the test workers share it); `npm run soak` runs more.
describe('engine soak, seeds 151-200 (20 % loss, duplication and reordering, one simulated day each)', () => {
  it('every seed settles to one IKE SA and the configured CHILD SAs with equal keys and no leftovers', async () => {
    const results = [];
    for (let seed = 151; seed <= 200; seed++) results.push(await soakSeed(seed));
    const summary = summarize(results);
    console.log(summary);
    expect(
      results.filter((r) => !r.ok).map((r) => `${r.seed}: ${r.reason}`),
      summary,
    ).toEqual([]);
    // The run really exercised the protocol: many rekeys of both kinds happened.
    expect(results.reduce((n, r) => n + r.childRekeys, 0)).toBeGreaterThan(50 * 200);
    expect(results.reduce((n, r) => n + r.ikeRekeys, 0)).toBeGreaterThan(50 * 40);
  }, 600_000);
});
