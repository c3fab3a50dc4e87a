/**
 * `ipsec-mesh bench <suite> [--json]`: runs a benchmark suite from test/bench/<suite>.ts.
 * Suites live beside the tests because several need the test harnesses (network namespaces, User-Mode Linux);
 * the command therefore runs from a source checkout (`npm run bench -- <suite>`).
 */
import { existsSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type BenchContext, createBenchContext } from './bench-report.js';

const benchDir = fileURLToPath(new URL('../../test/bench/', import.meta.url));

export function listSuites(): string[] {
  if (!existsSync(benchDir)) return [];
  return readdirSync(benchDir)
    .filter((f) => f.endsWith('.ts') && !f.startsWith('_'))
    .map((f) => f.slice(0, -3))
    .sort();
}

export async function runBench(argv: string[], out: (line: string) => void = (l) => console.log(l)): Promise<number> {
  const json = argv.includes('--json');
  const rest = argv.filter((a) => a !== '--json');
  const suite = rest[0];
  const suites = listSuites();
  if (!suite || !suites.includes(suite)) {
    console.error(
      `${suite ? `unknown bench suite '${suite}'` : 'no bench suite given'}; available: ${suites.join(', ') || '(none: run from a source checkout)'}`,
    );
    console.error('usage: npm run bench -- <suite> [--json]');
    return 2;
  }
  const mod = (await import(new URL(`${suite}.ts`, `file://${benchDir}`).href)) as {
    run(ctx: BenchContext): Promise<void>;
  };
  const ctx = createBenchContext(json, rest.slice(1), out);
  await mod.run(ctx);
  return 0;
}
