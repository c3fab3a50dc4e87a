/** Child-process entry for the integration tests and the bench: `node --import tsx run-operator.ts <flags>`. */
import { runOperator } from '../../src/cli/operator.js';

runOperator(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
