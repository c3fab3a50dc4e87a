/**
 * Building blocks for agent scenarios that run INSIDE User-Mode Linux (real kernel ESP): sites (a gateway namespace
 * with an underlay address and a site subnet, a host namespace behind it), real `ipsec-mesh agent` processes with
 * config directories of Kubernetes-style YAML, strongSwan charon instances, UDP sequence flows, egress captures, and
 * one `Lab` that owns every namespace and process it made and removes them all in `destroy()` (also on failure).
 *
 * Addresses: underlay 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24; site N is 198.18.N.0/24 (gateway .1, host .2).
 */
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { type AgentStatus, readStatus, type TunnelView } from '../../../src/agent/status.js';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const here = dirname(fileURLToPath(import.meta.url));

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function sh(cmd: string): string {
  try {
    return execFileSync('sh', ['-c', cmd], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    const x = e as { stderr?: string; status?: number };
    throw new Error(`sh failed (${x.status}): ${cmd}\n${x.stderr ?? ''}`);
  }
}

/** Like sh, never throws; returns exit code and output. */
export function shTry(cmd: string): { code: number; out: string } {
  try {
    return { code: 0, out: execFileSync('sh', ['-c', cmd], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }) };
  } catch (e) {
    const x = e as { stdout?: string; stderr?: string; status?: number };
    return { code: x.status ?? 1, out: `${x.stdout ?? ''}${x.stderr ?? ''}` };
  }
}

/** The command line of `ipsec-mesh diagnose`: the prebuilt bundle when the test passed one, else tsx. */
export function diagnoseCommand(): string {
  const bundle = process.env.IPSEC_MESH_DIAGNOSE_BUNDLE;
  return bundle
    ? `${process.execPath} ${bundle}`
    : `${process.execPath} --import ${tsxLoader()} ${join(REPO, 'src/cli/main.ts')} diagnose`;
}

export function tsxLoader(): string {
  const req = createRequire(import.meta.url);
  return `file://${join(dirname(req.resolve('tsx/package.json')), 'dist/loader.mjs')}`;
}

export async function waitFor<T>(
  what: string | (() => string),
  fn: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 20_000,
  everyMs = 100,
): Promise<T> {
  const end = performance.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v as T;
      last = undefined;
    } catch (e) {
      last = e;
    }
    if (performance.now() > end) {
      const w = typeof what === 'string' ? what : what();
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${w}${last ? ` (last: ${(last as Error).message})` : ''}`,
      );
    }
    await sleep(everyMs);
  }
}

function waitExit(p: ChildProcess, ms: number): Promise<boolean> {
  if (p.exitCode !== null || p.signalCode !== null) return Promise.resolve(true);
  return new Promise((res) => {
    const t = setTimeout(() => res(false), ms);
    p.once('exit', () => {
      clearTimeout(t);
      res(true);
    });
  });
}

// ---- agents --------------------------------------------------------------------------------------------------

export interface TunnelOptions {
  localAddress: string;
  remoteAddress: string;
  localSubnets: string[];
  remoteSubnets: string[];
  localId?: string;
  remoteId?: string;
  ike?: string[];
  esp?: string[];
  startAction?: 'start' | 'trap' | 'none';
  ikeLifetime?: string;
  espLifetime?: string;
  dpd?: string;
  dpdAction?: 'clear' | 'restart' | 'hold';
  natt?: 'auto' | 'force' | 'off';
}

export function tunnelObject(name: string, o: TunnelOptions): unknown {
  return {
    apiVersion: 'ipsecmesh.io/v1alpha1',
    kind: 'IPsecTunnel',
    metadata: { name, namespace: 'default' },
    spec: {
      local: { address: o.localAddress, subnets: o.localSubnets, ...(o.localId ? { id: o.localId } : {}) },
      remote: { address: o.remoteAddress, subnets: o.remoteSubnets, ...(o.remoteId ? { id: o.remoteId } : {}) },
      auth: { psk: { secretRef: { name: `${name}-psk`, key: 'psk' } } },
      ike: {
        proposals: o.ike ?? ['aes128gcm16-prfsha256-x25519'],
        lifetime: o.ikeLifetime ?? '4h',
        dpd: { interval: o.dpd ?? '30s', action: o.dpdAction ?? 'restart' },
      },
      esp: { proposals: o.esp ?? ['aes128gcm16'], lifetime: o.espLifetime ?? '1h' },
      startAction: o.startAction ?? 'start',
      natt: o.natt ?? 'auto',
    },
  };
}

export function pskObject(name: string, psk: string): unknown {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: `${name}-psk`, namespace: 'default' },
    stringData: { psk },
  };
}

export interface AgentLogLine {
  level?: number;
  time?: number;
  event?: string;
  tunnel?: string;
  msg?: string;
  rekey?: boolean;
  spiIn?: string;
  spiOut?: string;
  code?: string;
  [k: string]: unknown;
}

export class AgentProc {
  readonly dir: string;
  readonly stateDir: string;
  /** Every log line of every run of this agent (JSON lines from pino; other lines as msg). */
  readonly logs: AgentLogLine[] = [];
  readonly raw: string[] = [];
  private proc: ChildProcess | undefined;
  private runs = 0;
  /** Command-line arguments instead of the standalone config directory (e.g. Kubernetes mode). */
  args: string[] | undefined;

  constructor(
    readonly lab: Lab,
    readonly name: string,
    readonly ns: string,
    settings: Record<string, unknown>,
  ) {
    const root = join(lab.base, `agent-${name}`);
    this.dir = join(root, 'config');
    this.stateDir = join(root, 'state');
    mkdirSync(this.dir, { recursive: true });
    this.write('agent.yaml', [
      {
        apiVersion: 'ipsecmesh.io/v1alpha1',
        kind: 'AgentSettings',
        nodeName: name,
        stateDir: this.stateDir,
        logLevel: 'debug',
        retransmit: { timeout: '1s', base: 1.5, tries: 3 },
        ...settings,
      },
    ]);
  }

  write(file: string, objects: unknown[]): void {
    writeFileSync(join(this.dir, file), objects.map((o) => stringify(o)).join('---\n'));
  }

  addTunnel(name: string, o: TunnelOptions, psk: string): void {
    this.write(`${name}.yaml`, [tunnelObject(name, o), pskObject(name, psk)]);
  }

  get running(): boolean {
    return !!this.proc && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  start(): void {
    if (this.running) throw new Error(`agent ${this.name} already running`);
    this.runs++;
    const run = this.runs;
    const p = spawn(
      'ip',
      [
        'netns',
        'exec',
        this.ns,
        process.execPath,
        // The prebuilt bundle (support/bundle.ts) when the test passed one, else the sources through tsx.
        ...(process.env.IPSEC_MESH_AGENT_BUNDLE
          ? [process.env.IPSEC_MESH_AGENT_BUNDLE]
          : ['--import', tsxLoader(), join(REPO, 'src/cli/main.ts'), 'agent']),
        ...(this.args ?? ['--config-dir', this.dir, '--dataplane', 'netlink']),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.proc = p;
    this.lab.track(p);
    const onLine = (line: string) => {
      if (!line) return;
      this.raw.push(`[${this.name}#${run}] ${line}`);
      try {
        const j = JSON.parse(line) as AgentLogLine;
        this.logs.push({ ...j, run });
      } catch {
        this.logs.push({ msg: line, run });
      }
    };
    createInterface({ input: p.stdout! }).on('line', onLine);
    createInterface({ input: p.stderr! }).on('line', onLine);
  }

  /** SIGTERM (clean stop: DELETEs, kernel state removed) or SIGKILL (a crash). */
  async stop(signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> {
    const p = this.proc;
    if (!p || !this.running) return;
    if (signal === 'SIGKILL') {
      // `ip netns exec` execs the command, so the child is the agent itself.
      p.kill('SIGKILL');
      await waitExit(p, 5000);
      return;
    }
    p.kill('SIGTERM');
    if (!(await waitExit(p, 8000))) {
      p.kill('SIGKILL');
      await waitExit(p, 5000);
    }
  }

  status(timeoutMs = 3000): Promise<AgentStatus> {
    return readStatus(this.stateDir, timeoutMs);
  }

  async tunnel(name: string): Promise<TunnelView | undefined> {
    return (await this.status()).tunnels.find((t) => t.name === name);
  }

  /**
   * Waits until the agent answers on its status socket with `tunnels` tunnels configured: from then on it answers
   * IKE with its configuration (before, a peer's IKE_SA_INIT may meet an agent that listens but has no tunnels yet).
   */
  waitReady(tunnels: number, timeoutMs = 60_000): Promise<AgentStatus> {
    return waitFor(
      () => `agent ${this.name} ready with ${tunnels} tunnels (logs: ${this.tail(10)})`,
      async () => {
        if (!this.running) throw new Error(`agent ${this.name} exited: ${this.tail(20)}`);
        const st = await this.status();
        return st.tunnels.length >= tunnels ? st : undefined;
      },
      timeoutMs,
      100,
    );
  }

  /** Waits until the tunnel has an established IKE SA and an installed CHILD SA; returns the view. */
  waitUp(name: string, timeoutMs = 30_000): Promise<TunnelView> {
    return waitFor(
      () => `tunnel ${name} of ${this.name} up (logs: ${this.tail(15)})`,
      async () => {
        const t = await this.tunnel(name);
        return t && t.ikeSA.state === 'Established' && t.childSAs.some((c) => c.state === 'installed') ? t : undefined;
      },
      timeoutMs,
      100,
    );
  }

  events(event: string, tunnel?: string): AgentLogLine[] {
    return this.logs.filter(
      (l) => l.event === event && (tunnel === undefined || l.tunnel === tunnel || l.tunnel?.endsWith(`/${tunnel}`)),
    );
  }

  /** Log lines worth quoting in a report: warnings and errors, plus the SA life-cycle events. */
  notable(): string[] {
    return this.raw.filter((l) => /"level":(40|50|60)|ike-|child-|peer-dead|stale|adopt|kernel|expire|acquire/.test(l));
  }

  tail(n: number): string {
    return this.raw.slice(-n).join('\n');
  }
}

// ---- strongSwan charon (kernel-netlink) --------------------------------------------------------------------------

const CHARON_BIN = '/usr/lib/ipsec/charon';
const CHARON_PLUGINS =
  'random nonce openssl aes sha1 sha2 hmac gcm chapoly curve25519 gmp kdf pem pkcs1 pubkey x509 kernel-netlink socket-default vici';

export class Charon {
  readonly dir: string;
  readonly vici: string;
  readonly conf: string;
  readonly logFile: string;
  private proc: ChildProcess | undefined;
  stderr = '';

  constructor(
    readonly lab: Lab,
    readonly name: string,
    readonly ns: string,
    readonly dev: string,
  ) {
    this.dir = join(lab.base, `charon-${name}`);
    mkdirSync(this.dir, { recursive: true });
    this.vici = join(this.dir, 'charon.vici');
    this.conf = join(this.dir, 'strongswan.conf');
    this.logFile = join(this.dir, 'charon.log');
    writeFileSync(
      this.conf,
      `charon {
  load_modular = no
  load = ${CHARON_PLUGINS}
  install_routes = no
  install_virtual_ip = no
  retransmit_timeout = 1
  retransmit_tries = 3
  retransmit_base = 1.4
  interfaces_use = ${dev}
  plugins {
    vici { socket = unix://${this.vici} }
  }
  filelog {
    log {
      path = ${this.logFile}
      append = yes
      flush_line = yes
      time_format = %H:%M:%S
      default = 1
      knl = 2
    }
  }
}
swanctl { socket = unix://${this.vici} }
`,
    );
  }

  get env(): NodeJS.ProcessEnv {
    return { ...process.env, STRONGSWAN_CONF: this.conf };
  }

  async start(): Promise<void> {
    rmSync(this.vici, { force: true });
    const p = spawn(
      'ip',
      [
        'netns',
        'exec',
        this.ns,
        'unshare',
        '-m',
        '--propagation',
        'private',
        'sh',
        '-c',
        `mount -t tmpfs tmpfs /run && exec ${CHARON_BIN}`,
      ],
      { env: this.env, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    p.stderr?.on('data', (d: Buffer) => {
      this.stderr = (this.stderr + d.toString()).slice(-4000);
    });
    this.proc = p;
    this.lab.track(p);
    await waitFor(
      () => `charon ${this.name} to answer on vici (${this.stderr})`,
      () => {
        if (p.exitCode !== null) throw new Error(`charon exited ${p.exitCode}: ${this.stderr}`);
        return this.swanctl(['--stats']).code === 0;
      },
      20_000,
      100,
    );
  }

  swanctl(args: string[]): { code: number; out: string } {
    try {
      return {
        code: 0,
        out: execFileSync('swanctl', [...args, '--uri', `unix://${this.vici}`], {
          encoding: 'utf8',
          env: this.env,
          stdio: ['ignore', 'pipe', 'pipe'],
          timeout: 30_000,
        }),
      };
    } catch (e) {
      const x = e as { stdout?: string; stderr?: string; status?: number };
      return { code: x.status ?? 1, out: `${x.stdout ?? ''}${x.stderr ?? ''}` };
    }
  }

  /** `swanctl --initiate --child NAME` without blocking the event loop; resolves with the exit code and output. */
  initiate(child: string, timeoutS = 30): Promise<{ code: number; out: string }> {
    return new Promise((resolve) => {
      execFile(
        'swanctl',
        ['--initiate', '--child', child, '--timeout', String(timeoutS), '--uri', `unix://${this.vici}`],
        { env: this.env, encoding: 'utf8', timeout: (timeoutS + 5) * 1000 },
        (err, stdout, stderr) => resolve({ code: err ? 1 : 0, out: `${stdout}${stderr}` }),
      );
    });
  }

  /** Writes swanctl.conf and loads it (`swanctl --load-all --file`). */
  load(swanctlConf: string): void {
    const f = join(this.dir, 'swanctl.conf');
    writeFileSync(f, swanctlConf);
    const r = this.swanctl(['--load-all', '--noprompt', '--file', f]);
    if (r.code !== 0) throw new Error(`swanctl --load-all failed: ${r.out}`);
  }

  log(): string {
    try {
      return readFileSync(this.logFile, 'utf8');
    } catch {
      return '';
    }
  }

  async stop(): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    p.kill('SIGTERM');
    if (!(await waitExit(p, 5000))) {
      p.kill('SIGKILL');
      await waitExit(p, 5000);
    }
  }
}

// ---- UDP sequence flows ------------------------------------------------------------------------------------------

export interface FlowStats {
  sent: number;
  sendErrors: number;
  received: number;
  unique: number;
  duplicates: number;
  lost: number;
  /** Missing sequence numbers as [first, last] ranges (at most 50). */
  gaps: [number, number][];
  /** Out-of-order arrivals (a sequence number lower than one already seen). */
  reordered: number;
  durationMs: number;
  /** Date.now() when the first datagram left (sequence number n left about n / rate seconds later). */
  startedAtEpoch: number;
  /** Receiving namespace's UDP receive-buffer overflows during the flow (/proc/net/snmp RcvbufErrors). */
  rcvbufErrors: number;
}

/** UDP RcvbufErrors of a namespace (drops at the receiving socket: the host, not the tunnel, lost those). */
export function udpRcvbufErrors(ns: string): number {
  const lines = shTry(`ip netns exec ${ns} cat /proc/net/snmp`)
    .out.split('\n')
    .filter((l) => l.startsWith('Udp:'));
  if (lines.length < 2) return 0;
  const keys = lines[0]!.split(/\s+/);
  const vals = lines[1]!.split(/\s+/);
  return Number(vals[keys.indexOf('RcvbufErrors')] ?? 0);
}

/** SPI, reqid and counters of every SA in a namespace (`ip -s xfrm state`, without the keys). */
export function xfrmSummary(ns: string): string[] {
  const out = shTry(`ip -n ${ns} -s xfrm state`).out;
  return out
    .split(/^(?=src )/m)
    .filter(Boolean)
    .map((b) => {
      const head = /^src (\S+) dst (\S+)/.exec(b);
      const spi = /spi (0x[0-9a-f]+)\S*\s+reqid (\d+)/.exec(b);
      const cnt = /(\d+)\(bytes\), (\d+)\(packets\)/.exec(b);
      return `${head?.[1]}>${head?.[2]} spi ${spi?.[1]} reqid ${spi?.[2]} ${cnt?.[1]}B ${cnt?.[2]}p`;
    });
}

/**
 * A sequence-numbered UDP flow from a host namespace to another (test/uml/support/flow.ts in each namespace).
 * `start()` begins sending `rate` datagrams/s until `count`; `result()` waits for the end and returns the counts.
 */
export class Flow {
  private recv: ChildProcess | undefined;
  private send: ChildProcess | undefined;
  private recvOut = '';
  private sendOut = '';
  readonly startedAt = performance.now();

  constructor(
    readonly lab: Lab,
    readonly o: { fromNs: string; toNs: string; from: string; to: string; port: number; rate: number; count: number },
  ) {}

  private spawnFlow(ns: string, args: string[]): ChildProcess {
    const p = spawn(
      'ip',
      ['netns', 'exec', ns, process.execPath, '--import', tsxLoader(), join(here, 'flow.ts'), ...args],
      {
        stdio: ['pipe', 'pipe', 'pipe'],
      },
    );
    this.lab.track(p);
    return p;
  }

  private static lineWith(p: ChildProcess, prefix: string, get: () => string, ms: number): Promise<string> {
    return waitFor(
      `flow line ${prefix}`,
      () => {
        const l = get()
          .split('\n')
          .find((x) => x.startsWith(prefix));
        if (!l && p.exitCode !== null) throw new Error(`flow process exited ${p.exitCode}: ${get().slice(-500)}`);
        return l;
      },
      ms,
      50,
    );
  }

  private startedAtEpoch = 0;
  private rcvbufBefore = 0;

  async start(): Promise<void> {
    const { fromNs, toNs, from, to, port, rate, count } = this.o;
    this.rcvbufBefore = udpRcvbufErrors(toNs);
    this.recv = this.spawnFlow(toNs, ['recv', to, String(port), String(count)]);
    this.recv.stdout!.on('data', (d: Buffer) => (this.recvOut += d.toString()));
    this.recv.stderr!.on('data', (d: Buffer) => (this.recvOut += d.toString()));
    await Flow.lineWith(this.recv, 'READY', () => this.recvOut, 20_000);
    this.send = this.spawnFlow(fromNs, ['send', from, to, String(port), String(rate), String(count)]);
    this.send.stdout!.on('data', (d: Buffer) => (this.sendOut += d.toString()));
    this.send.stderr!.on('data', (d: Buffer) => (this.sendOut += d.toString()));
    await Flow.lineWith(this.send, 'STARTED', () => this.sendOut, 20_000);
    this.startedAtEpoch = Date.now();
  }

  /** Datagrams received so far (the receiver prints progress every 100 ms). */
  progress(): number {
    const m = [...this.recvOut.matchAll(/^PROGRESS (\d+)/gm)].pop();
    return m ? Number(m[1]) : 0;
  }

  async result(timeoutMs: number): Promise<FlowStats> {
    const sendLine = await Flow.lineWith(this.send!, 'SENT ', () => this.sendOut, timeoutMs);
    const sent = JSON.parse(sendLine.slice(5)) as { sent: number; sendErrors: number; durationMs: number };
    // Let the last datagrams arrive, then ask the receiver for its counts.
    await sleep(1500);
    this.recv!.stdin!.write('stop\n');
    const recvLine = await Flow.lineWith(this.recv!, 'RECEIVED ', () => this.recvOut, 10_000);
    const r = JSON.parse(recvLine.slice(9)) as Omit<FlowStats, 'sent' | 'sendErrors' | 'durationMs'>;
    return {
      ...r,
      sent: sent.sent,
      sendErrors: sent.sendErrors,
      durationMs: sent.durationMs,
      startedAtEpoch: this.startedAtEpoch,
      rcvbufErrors: udpRcvbufErrors(this.o.toNs) - this.rcvbufBefore,
    };
  }
}

/** A UDP echo in `ns` (flow.ts echo). */
export async function udpEcho(lab: Lab, ns: string, addr: string, port: number): Promise<void> {
  const p = spawn(
    'ip',
    ['netns', 'exec', ns, process.execPath, '--import', tsxLoader(), join(here, 'flow.ts'), 'echo', addr, String(port)],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  lab.track(p);
  let o = '';
  p.stdout!.on('data', (d: Buffer) => (o += d.toString()));
  p.stderr!.on('data', (d: Buffer) => (o += d.toString()));
  await waitFor(
    () => `udp echo in ${ns}: ${o}`,
    () => {
      if (p.exitCode !== null) throw new Error(`echo exited: ${o}`);
      return o.includes('READY');
    },
  );
}

/**
 * Probes many (from, to) pairs at once (flow.ts probe-many): each pair is retried every 200 ms until its echo comes
 * back. Resolves with Date.now() of each pair's first echo and of the last one.
 */
export function probeMany(
  lab: Lab,
  ns: string,
  pairs: [string, string][],
  port: number,
  timeoutMs: number,
): Promise<{ up: number[]; all: number }> {
  const p = spawn(
    'ip',
    [
      'netns',
      'exec',
      ns,
      process.execPath,
      '--import',
      tsxLoader(),
      join(here, 'flow.ts'),
      'probe-many',
      pairs.map(([a, b]) => `${a}>${b}`).join(','),
      String(port),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  lab.track(p);
  const up: number[] = [];
  let err = '';
  p.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      p.kill('SIGKILL');
      reject(
        new Error(
          `${pairs.length - up.filter((x) => x).length} of ${pairs.length} pairs not echoed in ${timeoutMs} ms ${err}`,
        ),
      );
    }, timeoutMs);
    createInterface({ input: p.stdout! }).on('line', (l) => {
      const m = /^UP (\d+) (\d+)/.exec(l);
      if (m) up[Number(m[1])] = Number(m[2]);
      const a = /^ALL (\d+)/.exec(l);
      if (a) {
        clearTimeout(t);
        resolve({ up, all: Number(a[1]) });
      }
    });
  });
}

/** Continuous UDP pings (one every intervalMs) from a host to an echo: which came back, and when they were sent. */
export class Pinger {
  readonly echoes: { sentAt: number; rtt: number }[] = [];
  private p: ChildProcess | undefined;
  constructor(
    readonly lab: Lab,
    readonly ns: string,
    readonly from: string,
    readonly to: string,
    readonly port: number,
    readonly intervalMs = 100,
  ) {}

  async start(): Promise<void> {
    const p = spawn(
      'ip',
      [
        'netns',
        'exec',
        this.ns,
        process.execPath,
        '--import',
        tsxLoader(),
        join(here, 'flow.ts'),
        'ping',
        this.from,
        this.to,
        String(this.port),
        String(this.intervalMs),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.p = p;
    this.lab.track(p);
    let started = false;
    createInterface({ input: p.stdout! }).on('line', (l) => {
      if (l === 'STARTED') started = true;
      const m = /^ECHO (\S+) (\S+)/.exec(l);
      if (m) this.echoes.push({ sentAt: Number(m[1]), rtt: Number(m[2]) });
    });
    await waitFor('pinger started', () => {
      if (p.exitCode !== null) throw new Error('pinger exited');
      return started;
    });
  }

  /** Waits for an echo of a datagram sent at or after `since` (Date.now() ms); returns it. */
  waitEcho(since: number, timeoutMs: number): Promise<{ sentAt: number; rtt: number }> {
    return waitFor(
      `an echo of a ping sent after ${new Date(since).toISOString()}`,
      () => this.echoes.find((e) => e.sentAt >= since),
      timeoutMs,
      50,
    );
  }

  stop(): void {
    if (this.p && this.p.exitCode === null) this.p.kill('SIGKILL');
  }
}

// ---- captures ----------------------------------------------------------------------------------------------------

export class Capture {
  private proc: ChildProcess | undefined;
  readonly file: string;
  constructor(
    readonly lab: Lab,
    readonly ns: string,
    readonly dev: string,
    readonly dir: 'out' | 'in' | 'inout' = 'out',
  ) {
    this.file = join(lab.base, `cap-${ns}-${dev}-${dir}.pcap`);
  }

  async start(): Promise<void> {
    const p = spawn(
      'ip',
      [
        'netns',
        'exec',
        this.ns,
        'tcpdump',
        '-i',
        this.dev,
        '-Q',
        this.dir,
        '-B',
        '8192',
        '-U',
        '-s',
        '0',
        '-n',
        '-w',
        this.file,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    this.proc = p;
    this.lab.track(p);
    let err = '';
    p.stderr?.on('data', (d: Buffer) => {
      err += d.toString();
    });
    await waitFor(
      () => `tcpdump on ${this.ns}/${this.dev}: ${err}`,
      () => {
        if (p.exitCode !== null) throw new Error(`tcpdump exited: ${err}`);
        return err.includes('listening on');
      },
      15_000,
      50,
    );
  }

  async stop(): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null) return;
    await sleep(500);
    p.kill('SIGINT');
    await waitExit(p, 5000);
  }

  bytes(): Buffer {
    return readFileSync(this.file);
  }

  /** One line per packet, as `tcpdump -r -n` prints them. */
  text(): string[] {
    return shTry(`tcpdump -r ${this.file} -n -nn 2>/dev/null`).out.split('\n').filter(Boolean);
  }
}

// ---- the lab -----------------------------------------------------------------------------------------------------

export interface Site {
  n: number;
  gw: string;
  host: string;
  /** Gateway's underlay address. */
  underlay: string;
  /** Underlay device in the gateway namespace. */
  dev: string;
  subnet: string;
  gwInner: string;
  hostAddress: string;
}

export class Lab {
  readonly base: string;
  private readonly namespaces: string[] = [];
  private readonly procs: ChildProcess[] = [];
  readonly agents: AgentProc[] = [];
  readonly charons: Charon[] = [];

  constructor(readonly prefix: string) {
    // Inside UML /tmp is the guest's own tmpfs.
    this.base = join('/tmp', `lab-${prefix}-${process.pid}`);
    mkdirSync(this.base, { recursive: true });
    // Socket buffers big enough for the flows' 4 MiB requests (UML schedules the receiver late at times). These are
    // global settings: only ever inside UML's own kernel.
    if (process.env.IPSEC_MESH_IN_UML === '1') {
      shTry('sysctl -qw net.core.rmem_max=8388608 net.core.wmem_max=8388608 net.core.netdev_max_backlog=10000');
    }
  }

  track(p: ChildProcess): void {
    this.procs.push(p);
  }

  ns(name: string): string {
    const full = `${this.prefix}-${name}`;
    sh(`ip netns add ${full} && ip -n ${full} link set lo up`);
    this.namespaces.push(full);
    return full;
  }

  /**
   * A site: gateway namespace (underlay device `dev` with `underlay`/prefix, inner veth 198.18.n.1/24, forwarding on)
   * and host namespace 198.18.n.2/24 routed via the gateway. The underlay device is created as one end of a veth whose
   * other end `peerDev` is moved to `peerNs` (the caller addresses it or enslaves it to a bridge).
   */
  site(n: number, underlay: string, prefixLen: number, peerNs: string, peerDev: string): Site {
    const gw = this.ns(`gw${n}`);
    const host = this.ns(`h${n}`);
    const dev = `ul${n}`;
    sh(`ip link add ${dev} netns ${gw} type veth peer name ${peerDev} netns ${peerNs}
ip -n ${gw} link set ${dev} up && ip -n ${peerNs} link set ${peerDev} up
ip -n ${gw} addr add ${underlay}/${prefixLen} dev ${dev}
ip link add in${n} netns ${gw} type veth peer name eth0 netns ${host}
ip -n ${gw} link set in${n} up && ip -n ${host} link set eth0 up
ip -n ${gw} addr add 198.18.${n}.1/24 dev in${n} && ip -n ${host} addr add 198.18.${n}.2/24 dev eth0
ip -n ${host} route add default via 198.18.${n}.1
ip netns exec ${gw} sysctl -qw net.ipv4.ip_forward=1`);
    return {
      n,
      gw,
      host,
      underlay,
      dev,
      subnet: `198.18.${n}.0/24`,
      gwInner: `198.18.${n}.1`,
      hostAddress: `198.18.${n}.2`,
    };
  }

  agent(name: string, ns: string, settings: Record<string, unknown>): AgentProc {
    const a = new AgentProc(this, name, ns, settings);
    this.agents.push(a);
    return a;
  }

  charon(name: string, ns: string, dev: string): Charon {
    const c = new Charon(this, name, ns, dev);
    this.charons.push(c);
    return c;
  }

  /** Stops agents (SIGTERM), charons, every other process, then removes the namespaces. Never throws. */
  async destroy(): Promise<void> {
    await Promise.all(this.agents.map((a) => a.stop().catch(() => {})));
    await Promise.all(this.charons.map((c) => c.stop().catch(() => {})));
    for (const p of this.procs) {
      if (p.exitCode === null && p.signalCode === null) {
        try {
          p.kill('SIGKILL');
        } catch {
          // gone
        }
      }
    }
    await Promise.all(this.procs.map((p) => waitExit(p, 3000)));
    for (const ns of this.namespaces.reverse()) {
      const pids = shTry(`ip netns pids ${ns}`).out.split('\n').filter(Boolean);
      for (const pid of pids) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          // gone
        }
      }
      shTry(`ip netns del ${ns}`);
    }
    rmSync(this.base, { recursive: true, force: true });
  }
}

/** Runs a scenario body with a fresh Lab, always destroying it; returns the body's result or its error. */
export async function withLab<T>(prefix: string, body: (lab: Lab) => Promise<T>): Promise<T | { error: string }> {
  const lab = new Lab(prefix);
  try {
    return await body(lab);
  } catch (e) {
    return { error: e instanceof Error ? (e.stack ?? e.message) : String(e) };
  } finally {
    await lab.destroy();
  }
}
