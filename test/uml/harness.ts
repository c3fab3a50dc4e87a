/**
 * User-Mode Linux test harness: boots Debian's `linux.uml` with the host filesystem as its root (hostfs, read-only),
 * runs one Node script inside (TypeScript through tsx), and returns the script's exit code and output.
 *
 * Why UML: the host kernel has XFRM but no ESP; Debian's UML kernel has ESP, the AEAD/CBC/HMAC templates and veth as
 * modules (see shared/DESIGN.md, "Facts about these machines").
 *
 * Layout of one run (a private work directory under /var/tmp, never /tmp: the guest mounts a tmpfs over /tmp, which
 * hides the host's /tmp inside UML):
 *   init.sh      the guest's PID 1: mounts, module loader, loads modules, runs the script, powers off
 *   output.log   the script's stdout+stderr (the work directory is re-mounted read-write inside the guest)
 *   exit-code    the script's exit status, written after it ends
 *   uml/         UML's umid directory (mconsole socket, pid file)
 * The work directory is removed afterwards (unless `keep` is set); on timeout the whole UML process group (UML
 * forks one host process per guest address space) is killed by its group id.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const UML_KERNEL_CANDIDATES = ['/usr/bin/linux.uml', '/usr/bin/linux'];

/** Modules loaded before the script runs; further crypto templates are loaded on demand through the modprobe hook. */
export const UML_MODULES = [
  'xfrm_user',
  'xfrm_algo',
  'esp4',
  'esp6',
  'xfrm4_tunnel',
  'xfrm6_tunnel',
  'tunnel4',
  'tunnel6',
  'ipv6',
  'aead',
  'gcm',
  'ghash-generic',
  'seqiv',
  'echainiv',
  'authenc',
  'authencesn',
  'cbc',
  'hmac',
  'sha256_generic',
  'sha512_generic',
  'aes_generic',
  'chacha20poly1305',
  'chacha_generic',
  'poly1305_generic',
  'cryptomgr',
  'crypto_null',
  'ctr',
  'drbg',
  'veth',
  'af_packet',
];

export interface UmlRunOptions {
  /** Absolute path of the script to run inside (.ts through tsx, or .js/.mjs). */
  script: string;
  args?: string[];
  /** Wall-clock limit for boot + script + shutdown (default 120 s). */
  timeoutMs?: number;
  /** Guest memory (default 1G). */
  mem?: string;
  /** Environment variables for the script. */
  env?: Record<string, string>;
  /** Keep the work directory (for debugging). */
  keep?: boolean;
  /** Called with each chunk of the guest console (kernel + init messages), for live debugging. */
  onConsole?: (chunk: string) => void;
  /** Called with the script's output as it is written (polled), for live display. */
  onOutput?: (chunk: string) => void;
  /** Called once with the work directory (shared with the guest, read-write), e.g. to drop a stop file. */
  onStart?: (work: string) => void;
}

export interface UmlRunResult {
  /** The script's exit status; null if it never finished (timeout, crash). */
  exitCode: number | null;
  /** The script's stdout+stderr. */
  output: string;
  /** The guest console (kernel and init script messages). */
  console: string;
  timedOut: boolean;
  /** From spawn to UML exit. */
  durationMs: number;
  /** From spawn to the moment the init script started the Node script (read from the guest's marker). */
  bootMs: number | null;
  /** Host pid of the UML kernel process (also its process group id); gone when runInUml returns. */
  pid: number | undefined;
}

export function findUmlKernel(): string {
  for (const k of UML_KERNEL_CANDIDATES) if (existsSync(k)) return k;
  throw new Error(
    `User-Mode Linux kernel not found (${UML_KERNEL_CANDIDATES.join(', ')}); run scripts/install-deps.sh (Debian user-mode-linux)`,
  );
}

export function umlKernelVersion(): string {
  const dir = '/usr/lib/uml/modules';
  const versions = existsSync(dir) ? readdirSync(dir) : [];
  const v = versions[0];
  if (!v) throw new Error(`no UML modules under ${dir}; install Debian user-mode-linux`);
  return v;
}

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

function tsxLoaderPath(): string {
  const require = createRequire(join(repoRoot, 'package.json'));
  const pkg = require.resolve('tsx/package.json');
  return join(dirname(pkg), 'dist/loader.mjs');
}

function shellQuote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

function initScript(work: string, opts: UmlRunOptions): string {
  const kv = umlKernelVersion();
  const script = opts.script;
  const runner = /\.(c|m)?ts$/.test(script)
    ? `${shellQuote(process.execPath)} --import ${shellQuote(`file://${tsxLoaderPath()}`)}`
    : shellQuote(process.execPath);
  // '__WORK__' in an argument stands for the work directory (shared with the host, e.g. for a stop file).
  const args = (opts.args ?? []).map((a) => shellQuote(a.replaceAll('__WORK__', work))).join(' ');
  // Guest-side watchdog: the guest powers itself off even if the host side dies and never kills it.
  const guestLimit = Math.ceil((opts.timeoutMs ?? 120_000) / 1000) + 5;
  const env = Object.entries(opts.env ?? {})
    .map(([k, v]) => `export ${k}=${shellQuote(v)}`)
    .join('\n');
  return `#!/bin/sh
# PID 1 inside User-Mode Linux (generated by test/uml/harness.ts).
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/tmp
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null || mount -t tmpfs tmpfs /dev
mkdir -p /dev/shm /dev/pts && mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
${
  // A checkout under /tmp (CI may clone there) would vanish under that tmpfs: bring it back from the host.
  repoRoot.startsWith('/tmp/')
    ? `mkdir -p ${shellQuote(repoRoot)} && mount -t hostfs -o ${shellQuote(repoRoot)} hostfs ${shellQuote(repoRoot)} || echo "UML-HARNESS: cannot mount the checkout"`
    : ''
}
mount -t hostfs -o ${shellQuote(work)} hostfs ${shellQuote(work)} || echo "UML-HARNESS: cannot mount work dir"
mkdir -p /tmp/root/lib/modules
ln -s /usr/lib/uml/modules/${kv} /tmp/root/lib/modules/${kv}
printf '#!/bin/sh\\nexec /sbin/modprobe -d /tmp/root "$@"\\n' > /tmp/modprobe
chmod 755 /tmp/modprobe
echo /tmp/modprobe > /proc/sys/kernel/modprobe
for m in ${UML_MODULES.join(' ')}; do /sbin/modprobe -d /tmp/root $m 2>/dev/null; done
ip link set lo up
${env}
export IPSEC_MESH_IN_UML=1
cd ${shellQuote(repoRoot)}
echo "UML-HARNESS: start"
timeout -k 5 ${guestLimit} ${runner} ${shellQuote(script)} ${args} > ${shellQuote(join(work, 'output.log'))} 2>&1
echo $? > ${shellQuote(join(work, 'exit-code'))}
echo "UML-HARNESS: done"
sync
echo o > /proc/sysrq-trigger
sleep 5
`;
}

/** Polls until no process of group `pgid` is left (SIGKILL delivery and reaping are asynchronous). */
async function waitGroupGone(pgid: number | undefined, ms: number): Promise<void> {
  if (pgid === undefined) return;
  const until = performance.now() + ms;
  while (performance.now() < until) {
    try {
      process.kill(-pgid, 0);
    } catch {
      return;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function runInUml(opts: UmlRunOptions): Promise<UmlRunResult> {
  const kernel = findUmlKernel();
  const base = '/var/tmp';
  mkdirSync(base, { recursive: true });
  const work = mkdtempSync(join(base, 'ipsec-mesh-uml-'));
  const umlDir = join(work, 'uml');
  mkdirSync(umlDir);
  const init = join(work, 'init.sh');
  writeFileSync(init, initScript(work, opts), { mode: 0o755 });
  const timeoutMs = opts.timeoutMs ?? 120_000;
  const umid = `ipsec-mesh-${process.pid}-${Date.now()}`;
  const argv = [
    `mem=${opts.mem ?? '1G'}`,
    'root=/dev/root',
    'rootfstype=hostfs',
    'rootflags=/',
    'ro',
    `init=${init}`,
    `umid=${umid}`,
    `uml_dir=${umlDir}`,
    'con=null',
    'con0=fd:0,fd:1',
    'quiet',
  ];
  const start = performance.now();
  let bootMs: number | null = null;
  let consoleOut = '';
  // UML keeps its backing memory file in TMPDIR; /dev/shm is the fastest place for it.
  const child = spawn(kernel, argv, {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', TMPDIR: existsSync('/dev/shm') ? '/dev/shm' : base },
  });
  const onData = (b: Buffer): void => {
    const s = b.toString('utf8');
    consoleOut += s;
    if (bootMs === null && consoleOut.includes('UML-HARNESS: start')) bootMs = performance.now() - start;
    opts.onConsole?.(s);
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  let timedOut = false;
  opts.onStart?.(work);
  let shown = 0;
  const pump = (): void => {
    if (!opts.onOutput) return;
    try {
      const text = readFileSync(join(work, 'output.log'), 'utf8');
      if (text.length > shown) {
        opts.onOutput(text.slice(shown));
        shown = text.length;
      }
    } catch {
      // not written yet
    }
  };
  const poller = opts.onOutput ? setInterval(pump, 300) : undefined;
  const killGroup = (): void => {
    if (child.pid === undefined) return;
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  };
  const timer = setTimeout(() => {
    timedOut = true;
    killGroup();
  }, timeoutMs);
  try {
    await new Promise<void>((res, rej) => {
      child.once('error', rej);
      child.once('close', () => res());
    });
  } finally {
    clearTimeout(timer);
    if (poller) clearInterval(poller);
    pump();
    // UML helper processes (one per guest address space) share the group; make sure none survives.
    killGroup();
    await waitGroupGone(child.pid, 10_000);
  }
  const durationMs = performance.now() - start;
  const read = (f: string): string | null => (existsSync(join(work, f)) ? readFileSync(join(work, f), 'utf8') : null);
  const code = read('exit-code');
  const result: UmlRunResult = {
    exitCode: code === null ? null : Number.parseInt(code.trim(), 10),
    output: read('output.log') ?? '',
    console: consoleOut,
    timedOut,
    durationMs,
    bootMs,
    pid: child.pid,
  };
  if (!opts.keep) rmSync(work, { recursive: true, force: true });
  return result;
}
