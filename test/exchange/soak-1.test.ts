import { expect, it } from 'vitest';
import { expectSoakRange } from './soak.js';

// Part 2 of 4 of the 200-seed soak in `npm test` (split so the test workers share it); `npm run soak` runs more.
it('engine soak, seeds 51-100: 20 % loss, duplication and reordering for a simulated day; every seed settles', async () => {
  const r = await expectSoakRange(51, 100);
  console.log(r.summary);
  expect(r.failed, r.summary).toEqual([]);
  // The run really exercised the protocol: many rekeys of both kinds happened.
  expect(r.childRekeys).toBeGreaterThan(50 * 200);
  expect(r.ikeRekeys).toBeGreaterThan(50 * 40);
}, 600_000);
