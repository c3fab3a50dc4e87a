/**
 * What `ipsec-mesh status` shows, and the local status socket it reads it from (a Unix socket in the state
 * directory, readable by root only). No key material: SPIs, algorithms, selectors, times and counters only.
 */
import { chmodSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import { createConnection, createServer, type Server } from 'node:net';
import { join } from 'node:path';

export interface ErrorView {
  code: string;
  message: string;
  at: string;
}

export interface ChildSaView {
  name: string;
  state: string;
  /** 8 hex digits. */
  spiIn: string;
  spiOut: string;
  algorithms: string;
  localTs: string[];
  remoteTs: string[];
  mode: 'tunnel' | 'transport';
  encapsulation: boolean;
  installedAt?: string;
  rekeyAt?: string;
  bytesIn?: string;
  bytesOut?: string;
  packetsIn?: string;
  packetsOut?: string;
}

export interface IkeSaView {
  state: 'Connecting' | 'Established' | 'Rekeying' | 'Deleting' | 'Down';
  /** 16 hex digits. */
  spiI: string;
  spiR: string;
  initiator: boolean;
  algorithms: string;
  local: string;
  remote: string;
  natDetected: boolean;
  establishedAt?: string;
  rekeyAt?: string;
  lastError?: ErrorView;
}

export interface TunnelView {
  namespace: string;
  name: string;
  local: string;
  remote: string;
  ikeSA: IkeSaView;
  childSAs: ChildSaView[];
  /** The tunnel's configuration could not be used (missing secret, bad proposal, ...). */
  configError?: { reason: string; message: string };
  /** Route MTU and MSS clamping applied for this tunnel (src/agent/mtu-controller.ts). */
  mtu?: import('./mtu-controller.js').TunnelMtuView;
  /** Proof of encryption (src/agent/encryption-check.ts). */
  encrypted?: import('./encryption-check.js').EncryptionView;
  /** ESP was found blocked on the path; the tunnel uses forced UDP encapsulation since then. */
  espBlocked?: { since: string; message: string };
}

export interface AgentStatus {
  node: string;
  time: string;
  dataplane: string;
  tunnels: TunnelView[];
  configProblems: { file: string; where: string; path: string; message: string }[];
}

export function socketPath(stateDir: string): string {
  return join(stateDir, 'agent.sock');
}

export function serveStatus(stateDir: string, get: () => Promise<AgentStatus>): Server {
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const path = socketPath(stateDir);
  if (existsSync(path)) rmSync(path);
  const server = createServer((conn) => {
    let buf = '';
    conn.setEncoding('utf8');
    conn.on('data', (d) => {
      buf += d;
      if (!buf.includes('\n')) return;
      const cmd = buf.trim();
      if (cmd !== 'status') {
        conn.end(`${JSON.stringify({ error: `unknown request '${cmd.slice(0, 40)}'` })}\n`);
        return;
      }
      get().then(
        (s) => conn.end(`${JSON.stringify(s)}\n`),
        (e: unknown) => conn.end(`${JSON.stringify({ error: e instanceof Error ? e.message : String(e) })}\n`),
      );
    });
    conn.on('error', () => {});
  });
  server.listen(path, () => {
    try {
      chmodSync(path, 0o600);
    } catch {
      // best effort
    }
  });
  return server;
}

export class StatusUnavailableError extends Error {
  readonly code = 'ERR_AGENT_NOT_RUNNING';
}

export function readStatus(stateDir: string, timeoutMs = 5000): Promise<AgentStatus> {
  return new Promise((resolve, reject) => {
    const path = socketPath(stateDir);
    const conn = createConnection(path);
    let buf = '';
    const timer = setTimeout(() => {
      conn.destroy();
      reject(new StatusUnavailableError(`no answer from the agent at ${path} within ${timeoutMs} ms`));
    }, timeoutMs);
    conn.setEncoding('utf8');
    conn.on('connect', () => conn.write('status\n'));
    conn.on('data', (d) => {
      buf += d;
    });
    conn.on('end', () => {
      clearTimeout(timer);
      try {
        const v = JSON.parse(buf) as AgentStatus | { error: string };
        if ('error' in v) reject(new Error(v.error));
        else resolve(v);
      } catch {
        reject(new Error(`malformed answer from the agent at ${path}`));
      }
    });
    conn.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(
        new StatusUnavailableError(
          e.code === 'ENOENT' || e.code === 'ECONNREFUSED'
            ? `no agent is running with state directory ${stateDir} (${path}: ${e.code})`
            : `cannot reach the agent at ${path}: ${e.message}`,
        ),
      );
    });
  });
}

/** Human-readable table of the status. */
export function formatStatus(s: AgentStatus): string {
  const lines: string[] = [`node ${s.node}  dataplane ${s.dataplane}  ${s.time}`];
  if (s.tunnels.length === 0) lines.push('no tunnels configured');
  for (const t of s.tunnels) {
    const ike = t.ikeSA;
    lines.push('');
    lines.push(
      `${t.namespace}/${t.name}  ${t.local} <-> ${t.remote}  IKE ${ike.state}${ike.natDetected ? ' (NAT)' : ''}`,
    );
    if (t.configError) lines.push(`  config error ${t.configError.reason}: ${t.configError.message}`);
    if (ike.state !== 'Down') {
      lines.push(
        `  IKE SA ${ike.spiI}_i ${ike.spiR}_r ${ike.initiator ? 'initiator' : 'responder'} ${ike.algorithms}` +
          `${ike.establishedAt ? ` established ${ike.establishedAt}` : ''}${ike.rekeyAt ? ` rekey ${ike.rekeyAt}` : ''}`,
      );
    }
    for (const c of t.childSAs) {
      lines.push(
        `  CHILD ${c.name} ${c.state} ${c.mode}${c.encapsulation ? ' udp-encap' : ''} ${c.spiIn}_i ${c.spiOut}_o ${c.algorithms}` +
          `${c.bytesIn !== undefined ? ` in ${c.bytesIn}B/${c.packetsIn}p out ${c.bytesOut}B/${c.packetsOut}p` : ''}`,
      );
      lines.push(`    ${c.localTs.join(',')} === ${c.remoteTs.join(',')}${c.rekeyAt ? `  rekey ${c.rekeyAt}` : ''}`);
    }
    if (t.espBlocked) lines.push(`  esp blocked since ${t.espBlocked.since}: ${t.espBlocked.message}`);
    if (t.encrypted) {
      const e = t.encrypted;
      lines.push(
        `  encrypted ${e.status} ${e.reason} (checked ${e.checkedAt}${e.restored ? `, ${e.restored} policies restored` : ''}): ${e.message}`,
      );
    }
    if (t.mtu) {
      const m = t.mtu;
      lines.push(
        m.error && m.innerMtu === 0
          ? `  mtu error ${m.error.code}: ${m.error.message}`
          : `  mtu underlay ${m.underlayMtu} (${m.underlaySource}) - esp ${m.overhead} = inner ${m.innerMtu}, ` +
              `mss ${m.mss} clamp ${m.clamp}, route mtu ${m.routeMtu ? 'set' : 'not set'}` +
              `${m.error ? `; error ${m.error.code}: ${m.error.message}` : ''}`,
      );
    }
    if (ike.lastError)
      lines.push(`  last error ${ike.lastError.code} at ${ike.lastError.at}: ${ike.lastError.message}`);
  }
  for (const p of s.configProblems) lines.push(`config problem: ${p.file} ${p.where} ${p.path}: ${p.message}`);
  return lines.join('\n');
}
