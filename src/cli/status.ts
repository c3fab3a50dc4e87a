/** `ipsec-mesh status [--state-dir DIR] [--json]`: ask a running agent for its tunnels and SAs. */
import { formatStatus, readStatus, StatusUnavailableError } from '../agent/status.js';

export async function runStatus(argv: string[]): Promise<number> {
  let stateDir = '/run/ipsec-mesh';
  let json = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--json') json = true;
    else if (a === '--state-dir') stateDir = argv[++i] ?? stateDir;
    else if (a.startsWith('--state-dir=')) stateDir = a.slice('--state-dir='.length);
    else {
      process.stderr.write(
        `ipsec-mesh status: unknown flag '${a}'\nusage: ipsec-mesh status [--state-dir DIR] [--json]\n`,
      );
      return 2;
    }
  }
  try {
    const s = await readStatus(stateDir);
    process.stdout.write(json ? `${JSON.stringify(s, null, 2)}\n` : `${formatStatus(s)}\n`);
    return 0;
  } catch (e) {
    process.stderr.write(`ipsec-mesh status: ${(e as Error).message}\n`);
    return e instanceof StatusUnavailableError ? 3 : 1;
  }
}
