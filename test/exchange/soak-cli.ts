/**
 * `npm run soak -- [--seeds N] [--from S] [--seed S] [--hours H] [--verbose]`: the engine soak over many seeds.
 * Prints a summary (and each failing seed with its replay command); exits 1 when any seed fails.
 */
import { type SoakResult, soakSeed, summarize } from './soak.js';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const single = arg('seed');
const seeds =
  single !== undefined
    ? [Number(single)]
    : Array.from({ length: Number(arg('seeds') ?? 1000) }, (_, i) => Number(arg('from') ?? 1) + i);
const hours = Number(arg('hours') ?? 24);
const verbose = process.argv.includes('--verbose') || single !== undefined;
const start = Date.now();
const results: SoakResult[] = [];
for (const seed of seeds) {
  const r = await soakSeed(seed, { durationMs: hours * 3_600_000 });
  results.push(r);
  if (!r.ok && verbose) console.log(`seed ${seed}: ${r.reason}\n${r.report}`);
  if (results.length % 50 === 0)
    console.error(`... ${results.length}/${seeds.length} seeds, ${((Date.now() - start) / 1000).toFixed(0)} s`);
}
console.log(summarize(results));
console.log(`wall time ${((Date.now() - start) / 1000).toFixed(1)} s`);
process.exitCode = results.every((r) => r.ok) ? 0 : 1;
