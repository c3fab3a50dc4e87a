/**
 * Entry point of the agent bundle the UML scenarios run (`ipsec-mesh agent` only, see bundle.ts): the same
 * `runAgent` as `src/cli/main.ts agent`, without the operator and bench code that the full command loads.
 */
import { runAgent } from '../../../src/cli/agent.js';

const code = await runAgent(process.argv.slice(2));
process.exit(code);
