#!/usr/bin/env node
/** The `ipsec-mesh` command: operator | agent | demo | status | bench. */
import { runAgent } from './agent.js';
import { runBench } from './bench.js';
import { runDemo } from './demo.js';
import { runOperator } from './operator.js';
import { runStatus } from './status.js';

const USAGE = `usage: ipsec-mesh <command> [options]

commands:
  bench <suite> [--json]   run a benchmark suite (crypto, ...)
  demo [--duration S]      local three-site mesh with kernel ESP (User-Mode Linux here), live table
  operator                 run the Kubernetes operator
  agent --config-dir DIR   run the node agent (standalone: Kubernetes-style YAML in DIR)
  status [--json]          show a running agent's tunnels and SAs
`;

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'bench':
      return runBench(rest);
    case 'agent':
      return runAgent(rest);
    case 'status':
      return runStatus(rest);
    case 'operator':
      return runOperator(rest);
    case 'demo':
      return runDemo(rest);
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
