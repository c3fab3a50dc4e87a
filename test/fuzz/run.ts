/**
 * Codec fuzz runner: `npx tsx test/fuzz/run.ts [--count N] [--seed S] [--hang-ms MS]` (default 1,000,000 inputs,
 * seed 1). Feeds random and mutated inputs (test/fuzz/mutate.ts) through decode, payload rules, re-encoding,
 * decryption with fixed test ciphers and fragment reassembly (test/fuzz/harness.ts). Counts inputs, successes and
 * typed errors by code. Exits 1 and prints the input's hex on any exception that is not a DecodeError, or when one
 * input runs longer than --hang-ms (a watchdog thread regenerates the stuck input from its index).
 */
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { runOne } from './harness.js';
import { buildCorpus, makeInput } from './mutate.js';

interface Options {
  count: number;
  seed: number;
  hangMs: number;
}

type FromWorker =
  | { type: 'progress'; done: number }
  | { type: 'untyped'; index: number; hex: string; error: string }
  | { type: 'done'; done: number; ok: number; codes: Record<string, number>; maxMs: number; slowest: number };

const CORPUS_MESSAGES = 200;

function parseArgs(argv: string[]): Options {
  const o: Options = { count: 1_000_000, seed: 1, hangMs: 5_000 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const v = Number(argv[i + 1]);
    if (a === '--count' || a === '--seed' || a === '--hang-ms') {
      if (!Number.isInteger(v) || v < 0) throw new Error(`${a} needs a non-negative integer`);
      if (a === '--count') o.count = v;
      else if (a === '--seed') o.seed = v;
      else o.hangMs = v;
      i++;
    } else {
      throw new Error(`unknown argument ${a}; usage: run.ts [--count N] [--seed S] [--hang-ms MS]`);
    }
  }
  return o;
}

function hexOf(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}

function workerMain(o: Options, progress: Int32Array): void {
  const port = parentPort!;
  const corpus = buildCorpus(o.seed, CORPUS_MESSAGES);
  const codes: Record<string, number> = {};
  let ok = 0;
  let maxMs = 0;
  let slowest = -1;
  for (let i = 0; i < o.count; i++) {
    Atomics.store(progress, 0, i);
    const input = makeInput(corpus, o.seed, i);
    const t0 = performance.now();
    const out = runOne(input);
    const dt = performance.now() - t0;
    if (dt > maxMs) {
      maxMs = dt;
      slowest = i;
    }
    if (out.kind === 'ok') ok++;
    else if (out.kind === 'typed') codes[out.code] = (codes[out.code] ?? 0) + 1;
    else {
      const e = out.error;
      const error = e instanceof Error ? `${e.name}: ${e.message}\n${e.stack ?? ''}` : String(e);
      port.postMessage({ type: 'untyped', index: i, hex: hexOf(input), error } satisfies FromWorker);
      return;
    }
    if ((i + 1) % 100_000 === 0) port.postMessage({ type: 'progress', done: i + 1 } satisfies FromWorker);
  }
  Atomics.store(progress, 1, 1);
  port.postMessage({ type: 'done', done: o.count, ok, codes, maxMs, slowest } satisfies FromWorker);
}

function main(): void {
  const o = parseArgs(process.argv.slice(2));
  const shared = new SharedArrayBuffer(8);
  const progress = new Int32Array(shared);
  const started = performance.now();
  console.log(`fuzz: seed=${o.seed} count=${o.count} hang-ms=${o.hangMs}`);
  // tsx's loader is not inherited by worker threads: the worker registers it before importing this file
  const api = import.meta.resolve('tsx/esm/api');
  const bootstrap = `import { register } from ${JSON.stringify(api)}; register(); await import(${JSON.stringify(import.meta.url)});`;
  const worker = new Worker(new URL(`data:text/javascript,${encodeURIComponent(bootstrap)}`), {
    workerData: { o, shared },
  });
  let last = -1;
  let lastChange = performance.now();
  let finished = false;

  const watchdog = setInterval(() => {
    const cur = Atomics.load(progress, 0);
    if (cur !== last) {
      last = cur;
      lastChange = performance.now();
      return;
    }
    if (performance.now() - lastChange > o.hangMs && Atomics.load(progress, 1) === 0 && !finished) {
      finished = true;
      clearInterval(watchdog);
      void worker.terminate();
      const input = makeInput(buildCorpus(o.seed, CORPUS_MESSAGES), o.seed, cur);
      console.error(`HANG: input ${cur} ran longer than ${o.hangMs} ms`);
      console.error(`input hex: ${hexOf(input)}`);
      console.log(`fuzz summary: seed=${o.seed} inputs=${cur} untyped=0 hangs=1 FAILED`);
      process.exit(1);
    }
  }, 250);

  worker.on('message', (m: FromWorker) => {
    if (m.type === 'progress') {
      const s = (performance.now() - started) / 1000;
      console.log(`  ${m.done} inputs, ${s.toFixed(1)} s`);
    } else if (m.type === 'untyped') {
      finished = true;
      clearInterval(watchdog);
      console.error(`UNTYPED EXCEPTION at input ${m.index}:\n${m.error}`);
      console.error(`input hex: ${m.hex}`);
      console.log(`fuzz summary: seed=${o.seed} inputs=${m.index + 1} untyped=1 hangs=0 FAILED`);
      void worker.terminate().then(() => process.exit(1));
    } else {
      finished = true;
      clearInterval(watchdog);
      const s = (performance.now() - started) / 1000;
      const typed = Object.values(m.codes).reduce((a, b) => a + b, 0);
      const byCode = Object.entries(m.codes)
        .sort((a, b) => b[1] - a[1])
        .map(([c, n]) => `${c}=${n}`)
        .join(' ');
      console.log(`  typed errors by code: ${byCode}`);
      console.log(`  slowest input: #${m.slowest} ${m.maxMs.toFixed(2)} ms`);
      console.log(
        `fuzz summary: seed=${o.seed} inputs=${m.done} ok=${m.ok} typed=${typed} untyped=0 hangs=0 time=${s.toFixed(1)}s PASSED`,
      );
      void worker.terminate().then(() => process.exit(0));
    }
  });
  worker.on('error', (e) => {
    finished = true;
    clearInterval(watchdog);
    console.error('fuzz worker crashed:', e);
    console.log(`fuzz summary: seed=${o.seed} inputs=${Atomics.load(progress, 0)} FAILED (worker crash)`);
    process.exit(1);
  });
}

if (isMainThread) {
  main();
} else {
  const { o, shared } = workerData as { o: Options; shared: SharedArrayBuffer };
  workerMain(o, new Int32Array(shared));
}
