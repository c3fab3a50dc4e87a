/** Running real agents (`ipsec-mesh agent`) in network namespaces, with config directories written by the test. */
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { type AgentStatus, readStatus } from '../../src/agent/status.js';
import type { Endpoint } from '../../src/ike/ports.js';
import type { NsPair } from '../support/netns.js';

export const REPO = resolve(import.meta.dirname, '../..');

export interface AgentDir {
  dir: string;
  stateDir: string;
  write(file: string, objects: unknown[]): void;
  remove(file: string): void;
}

export function agentDir(name: string, settings: Record<string, unknown>): AgentDir {
  const root = mkdtempSync(join(tmpdir(), `ipsec-mesh-${name}-`));
  const dir = join(root, 'config');
  const stateDir = join(root, 'state');
  mkdirSync(dir);
  const d: AgentDir = {
    dir,
    stateDir,
    write(file, objects) {
      writeFileSync(join(dir, file), objects.map((o) => stringify(o)).join('---\n'));
    },
    remove(file) {
      rmSync(join(dir, file), { force: true });
    },
  };
  d.write('agent.yaml', [
    {
      apiVersion: 'ipsecmesh.io/v1alpha1',
      kind: 'AgentSettings',
      nodeName: name,
      stateDir,
      logLevel: 'debug',
      ...settings,
    },
  ]);
  return d;
}

export function pskSecret(name: string, psk: string, namespace = 'default') {
  return { apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace }, stringData: { psk } };
}

export function tunnel(
  name: string,
  o: {
    localAddress: string;
    remoteAddress: string;
    localSubnets: string[];
    remoteSubnets: string[];
    localId?: string;
    remoteId?: string;
    ike?: string[];
    esp?: string[];
    startAction?: 'start' | 'trap' | 'none';
    secret?: string;
    ikeLifetime?: string;
    espLifetime?: string;
    dpd?: string;
    natt?: 'auto' | 'force' | 'off';
  },
) {
  return {
    apiVersion: 'ipsecmesh.io/v1alpha1',
    kind: 'IPsecTunnel',
    metadata: { name, namespace: 'default' },
    spec: {
      local: { address: o.localAddress, subnets: o.localSubnets, ...(o.localId ? { id: o.localId } : {}) },
      remote: { address: o.remoteAddress, subnets: o.remoteSubnets, ...(o.remoteId ? { id: o.remoteId } : {}) },
      auth: { psk: { secretRef: { name: o.secret ?? `${name}-psk`, key: 'psk' } } },
      ike: {
        proposals: o.ike ?? ['aes128gcm16-prfsha256-x25519'],
        lifetime: o.ikeLifetime ?? '4h',
        dpd: { interval: o.dpd ?? '30s', action: 'restart' },
      },
      esp: { proposals: o.esp ?? ['aes128gcm16'], lifetime: o.espLifetime ?? '1h' },
      startAction: o.startAction ?? 'start',
      natt: o.natt ?? 'auto',
    },
  };
}

export interface RunningAgent {
  process: ChildProcess;
  logs: string[];
  status(): Promise<AgentStatus>;
  stop(): Promise<number | null>;
}

export function startAgent(
  pair: NsPair,
  ns: string,
  dir: AgentDir,
  dataplane: 'none' | 'netlink' = 'none',
): RunningAgent {
  const child = pair.spawn(ns, process.execPath, [
    '--import',
    'tsx',
    join(REPO, 'src/cli/main.ts'),
    'agent',
    '--config-dir',
    dir.dir,
    '--dataplane',
    dataplane,
  ]);
  const logs: string[] = [];
  child.stdout?.setEncoding('utf8').on('data', (d: string) => logs.push(...d.split('\n').filter(Boolean)));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => logs.push(...d.split('\n').filter(Boolean)));
  return {
    process: child,
    logs,
    status: () => readStatus(dir.stateDir, 3000),
    stop: () =>
      new Promise((res) => {
        if (child.exitCode !== null) return res(child.exitCode);
        child.once('exit', (code) => res(code));
        // `ip netns exec` forwards signals to the agent.
        child.kill('SIGTERM');
      }),
  };
}

export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 20_000,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < end) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v as T;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ''}`);
}

/** Two in-process agents wired back to back (no sockets): `a.peer = b; b.peer = a`. */
export class LoopTransport {
  peer: LoopTransport | undefined;
  private receiver: (p: Uint8Array, from: Endpoint, to: Endpoint) => void = () => {};
  onReceive(r: (p: Uint8Array, from: Endpoint, to: Endpoint) => void): void {
    this.receiver = r;
  }
  async start(): Promise<void> {}
  async stop(): Promise<void> {}
  nattSockets(): [] {
    return [];
  }
  keepalive(): void {}
  send(p: Uint8Array, from: Endpoint, to: Endpoint): void {
    const copy = p.slice();
    setImmediate(() => this.peer?.receiver(copy, from, to));
  }
}
