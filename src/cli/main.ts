#!/usr/bin/env node
/** The `ipsec-mesh` command: operator | agent | demo | status | diagnose | swanctl | bench. */
// Each command is imported when it runs: `ipsec-mesh status` must not load the operator's Kubernetes client.

const USAGE = `usage: ipsec-mesh <command> [options]

commands:
  bench <suite> [--json]   run a benchmark suite (crypto, ...)
  demo [--duration S]      local three-site mesh with kernel ESP (User-Mode Linux here), live table
  operator                 run the Kubernetes operator
  agent --config-dir DIR   run the node agent (standalone: Kubernetes-style YAML in DIR)
  status [--json]          show a running agent's tunnels and SAs
  diagnose [--tunnel NS/NAME] [--peer-config-dir DIR] [--json]
                           explain one tunnel: reachability, ESP, MTU, kernel, clocks, both configs
  swanctl --mesh F --site S [--secret F]
                           swanctl.conf for a plain strongSwan site of an IPsecMesh
`;

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'bench':
      return (await import('./bench.js')).runBench(rest);
    case 'agent':
      return (await import('./agent.js')).runAgent(rest);
    case 'status':
      return (await import('./status.js')).runStatus(rest);
    case 'diagnose':
      return (await import('./diagnose.js')).runDiagnose(rest);
    case 'operator':
      return (await import('./operator.js')).runOperator(rest);
    case 'swanctl':
      return (await import('./swanctl.js')).runSwanctl(rest);
    case 'demo':
      return (await import('./demo.js')).runDemo(rest);
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
