/** JSON with bigint and Buffer support, for the line protocol between the UML orchestrator and its netns workers. */
export function toWire(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) => {
    if (typeof x === 'bigint') return { $big: x.toString() };
    if (
      x &&
      typeof x === 'object' &&
      (x as { type?: string }).type === 'Buffer' &&
      Array.isArray((x as { data?: unknown }).data)
    ) {
      return { $buf: Buffer.from((x as { data: number[] }).data).toString('hex') };
    }
    return x;
  });
}

export function fromWire<T = unknown>(s: string): T {
  return JSON.parse(s, (_k, x: unknown) => {
    if (x && typeof x === 'object') {
      const o = x as { $big?: string; $buf?: string };
      if (typeof o.$big === 'string') return BigInt(o.$big);
      if (typeof o.$buf === 'string') return Buffer.from(o.$buf, 'hex');
    }
    return x;
  }) as T;
}

/**
 * Entry of a scenario script that runs inside User-Mode Linux: runs `main`, prints `RESULT <json>` for the test on
 * the host, and exits. Refuses to run on the host (it would build its namespaces there).
 */
export function runScenario<T>(main: () => Promise<T>): void {
  if (process.env.IPSEC_MESH_IN_UML !== '1') {
    throw new Error('this scenario runs inside User-Mode Linux (test/uml/harness.ts)');
  }
  main().then(
    (r) => {
      process.stdout.write(`RESULT ${toWire(r)}\n`);
      process.exit(0);
    },
    (e: unknown) => {
      console.error(e);
      process.exit(1);
    },
  );
}
