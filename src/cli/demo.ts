/**
 * `ipsec-mesh demo [--duration SECONDS] [--sites N]` (`npm run demo`): a local mesh of N sites on this machine,
 * each a gateway running our agent with kernel ESP, with a live table of tunnels, SAs and counters and a proof of
 * encryption at the end. The host kernel here has XFRM but no ESP, so the mesh runs inside User-Mode Linux with
 * the host's filesystem; where the host kernel has ESP it runs directly in network namespaces.
 *
 * It runs from a source checkout (it uses the test lab in test/uml), needs root, and installs what it lacks on
 * the first run (Debian user-mode-linux, iproute2, tcpdump). Ctrl-C stops it cleanly.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('../../', import.meta.url));

function hostHasEsp(): boolean {
  const ns = `imdemo-probe-${process.pid}`;
  try {
    execFileSync('ip', ['netns', 'add', ns]);
    const r = spawnSync('ip', [
      '-n',
      ns,
      'xfrm',
      'state',
      'add',
      'src',
      '192.0.2.1',
      'dst',
      '192.0.2.2',
      'proto',
      'esp',
      'spi',
      '0x100',
      'aead',
      'rfc4106(gcm(aes))',
      `0x${'11'.repeat(20)}`,
      '128',
    ]);
    return r.status === 0;
  } catch {
    return false;
  } finally {
    spawnSync('ip', ['netns', 'del', ns]);
  }
}

export async function runDemo(argv: string[]): Promise<number> {
  let duration = 60;
  let sites = 3;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const v = () => Number(argv[++i]);
    if (a === '--duration') duration = v();
    else if (a === '--sites') sites = v();
    else {
      process.stderr.write(`usage: ipsec-mesh demo [--duration SECONDS (0: until Ctrl-C)] [--sites 2..6]\n`);
      return 2;
    }
  }
  if (!Number.isFinite(duration) || duration < 0 || !Number.isInteger(sites) || sites < 2 || sites > 6) {
    process.stderr.write('ipsec-mesh demo: --duration must be >= 0 and --sites between 2 and 6\n');
    return 2;
  }
  if (process.getuid?.() !== 0) {
    process.stderr.write('ipsec-mesh demo: needs root (network namespaces, XFRM, User-Mode Linux)\n');
    return 2;
  }
  if (!existsSync(join(REPO, 'test/uml/scenarios/demo.ts'))) {
    process.stderr.write('ipsec-mesh demo: runs from a source checkout (npm run demo)\n');
    return 2;
  }
  console.log('checking system packages (first run installs them)...');
  const deps = spawnSync('bash', [join(REPO, 'scripts/install-deps.sh'), '--system-only'], { stdio: 'inherit' });
  if (deps.status !== 0) return 1;
  const script = join(REPO, 'test/uml/scenarios/demo.ts');
  const bundleMod = (await import(new URL('../../test/uml/support/bundle.ts', import.meta.url).href)) as {
    buildAgentBundle(): string;
  };
  const bundle = bundleMod.buildAgentBundle();
  if (hostHasEsp()) {
    console.log('host kernel has ESP: running the mesh in network namespaces on the host');
    const stop = join('/run', `ipsec-mesh-demo-${process.pid}.stop`);
    const child = spawnSync(process.execPath, ['--import', 'tsx', script, String(duration), String(sites), stop], {
      stdio: 'inherit',
      cwd: REPO,
      env: { ...process.env, IPSEC_MESH_AGENT_BUNDLE: bundle },
    });
    return child.status ?? 1;
  }
  console.log('host kernel has no ESP: booting User-Mode Linux (a few seconds)...');
  const harness = (await import(new URL('../../test/uml/harness.ts', import.meta.url).href)) as {
    runInUml(o: {
      script: string;
      args: string[];
      env: Record<string, string>;
      timeoutMs: number;
      mem: string;
      onStart(work: string): void;
      onOutput(chunk: string): void;
    }): Promise<{ exitCode: number | null; timedOut: boolean; console: string }>;
  };
  let work: string | undefined;
  const onSignal = () => {
    if (work) {
      console.log('\nstopping the demo...');
      writeFileSync(join(work, 'stop'), '');
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const r = await harness.runInUml({
      script,
      args: [String(duration), String(sites), '__WORK__/stop'],
      env: { IPSEC_MESH_AGENT_BUNDLE: bundle },
      timeoutMs: (duration > 0 ? duration : 24 * 3600) * 1000 + 240_000,
      mem: '1536M',
      onStart: (w) => {
        work = w;
      },
      onOutput: (chunk) => process.stdout.write(chunk),
    });
    if (r.exitCode === null) {
      process.stderr.write(`the demo did not finish (timed out: ${r.timedOut})\n${r.console.slice(-2000)}\n`);
      return 1;
    }
    return r.exitCode;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
