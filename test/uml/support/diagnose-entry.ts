/**
 * Entry point of the diagnose bundle for the UML scenarios (`ipsec-mesh diagnose` only, see bundle.ts): the same
 * `runDiagnose` as `src/cli/main.ts diagnose`, without compiling every module through tsx inside UML.
 */
import { runDiagnose } from '../../../src/cli/diagnose.js';

const code = await runDiagnose(process.argv.slice(2));
process.exit(code);
