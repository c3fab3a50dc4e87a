#!/usr/bin/env node
/** The `ipsec-mesh` command: operator | agent | demo | status | bench. */
import { runBench } from './bench.js';

const USAGE = `usage: ipsec-mesh <command> [options]

commands:
  bench <suite> [--json]   run a benchmark suite (crypto, ...)
  demo                     local three-site demo mesh (not yet available)
  operator                 run the Kubernetes operator (not yet available)
  agent                    run the node agent (not yet available)
  status [--json]          show a running agent's tunnels (not yet available)
`;

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'bench':
      return runBench(rest);
    case 'demo':
    case 'operator':
    case 'agent':
    case 'status':
      console.error(`ipsec-mesh ${command}: not yet available in this version (see the README's roadmap)`);
      return 3;
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(USAGE);
      return command === undefined ? 2 : 0;
    default:
      console.error(`ipsec-mesh: unknown command '${command}'\n${USAGE}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
    process.exitCode = 1;
  },
);
