/**
 * Network namespaces for tests (root): a pair of namespaces joined by a veth, with IPv4 (and optionally IPv6)
 * addresses from the documentation ranges. Names carry a prefix and the process id so parallel test files never
 * collide, and `cleanupStale(prefix)` removes leftovers of crashed runs.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';

export function sh(cmd: string, args: string[], input?: string): string {
  return execFileSync(cmd, args, {
    encoding: 'utf8',
    stdio: ['pipe', 'pipe', 'pipe'],
    ...(input !== undefined ? { input } : {}),
  });
}

export function requireRoot(): void {
  if (process.getuid?.() !== 0) throw new Error('this test needs root (network namespaces); CI runs as root');
}

export function listNamespaces(): string[] {
  return sh('ip', ['netns', 'list'])
    .split('\n')
    .map((l) => l.split(' ')[0]!)
    .filter(Boolean);
}

export function cleanupStale(prefix: string): void {
  for (const ns of listNamespaces()) if (ns.startsWith(prefix)) deleteNamespace(ns);
}

export function deleteNamespace(ns: string): void {
  try {
    // Kill whatever still runs inside, then remove the namespace.
    const pids = sh('ip', ['netns', 'pids', ns]).split('\n').filter(Boolean);
    for (const pid of pids) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // gone already
      }
    }
    sh('ip', ['netns', 'del', ns]);
  } catch {
    // not there
  }
}

export interface NsPair {
  a: string;
  b: string;
  addressA: string;
  addressB: string;
  address6A: string;
  address6B: string;
  exec(ns: string, cmd: string, args: string[]): string;
  spawn(ns: string, cmd: string, args: string[], env?: NodeJS.ProcessEnv): ChildProcess;
  destroy(): void;
}

let counter = 0;

/** Two namespaces joined by veth: a has 192.0.2.1 / 2001:db8::1, b has 192.0.2.2 / 2001:db8::2 (both /24, /64). */
export function makePair(prefix: string, o: { ipv6?: boolean; addressA?: string; addressB?: string } = {}): NsPair {
  requireRoot();
  const id = `${process.pid % 100000}${counter++}`;
  const a = `${prefix}a${id}`;
  const b = `${prefix}b${id}`;
  const addressA = o.addressA ?? '192.0.2.1';
  const addressB = o.addressB ?? '192.0.2.2';
  const address6A = '2001:db8::1';
  const address6B = '2001:db8::2';
  sh('ip', ['netns', 'add', a]);
  sh('ip', ['netns', 'add', b]);
  const va = `v${id}a`.slice(0, 15);
  const vb = `v${id}b`.slice(0, 15);
  try {
    sh('ip', ['link', 'add', va, 'netns', a, 'type', 'veth', 'peer', 'name', vb, 'netns', b]);
    for (const [ns, dev, v4, v6] of [
      [a, va, addressA, address6A],
      [b, vb, addressB, address6B],
    ] as const) {
      sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
      sh('ip', ['-n', ns, 'addr', 'add', `${v4}/24`, 'dev', dev]);
      if (o.ipv6) sh('ip', ['-n', ns, 'addr', 'add', `${v6}/64`, 'dev', dev, 'nodad']);
      sh('ip', ['-n', ns, 'link', 'set', dev, 'up']);
    }
  } catch (e) {
    deleteNamespace(a);
    deleteNamespace(b);
    throw e;
  }
  const children: ChildProcess[] = [];
  return {
    a,
    b,
    addressA,
    addressB,
    address6A,
    address6B,
    exec: (ns, cmd, args) => sh('ip', ['netns', 'exec', ns, cmd, ...args]),
    spawn: (ns, cmd, args, env) => {
      const c = spawn('ip', ['netns', 'exec', ns, cmd, ...args], {
        env: { ...process.env, ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      children.push(c);
      return c;
    },
    destroy: () => {
      for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
      deleteNamespace(a);
      deleteNamespace(b);
    },
  };
}
