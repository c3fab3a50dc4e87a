/**
 * Runs INSIDE User-Mode Linux (see ../agent-mtu.test.ts). A PMTU black hole and the agent's route MTU / MSS clamping.
 *
 * Two sites on one bridge (192.0.2.1, 192.0.2.2). The bridge ports have MTU 1300 while the gateways' underlay devices
 * keep 1500: a frame over 1300 bytes is dropped silently on its way into the bridge (no ICMP, as on a path whose
 * routers filter ICMP). Both gateways run our agent with one tunnel (aes256gcm16). For each phase the agents are
 * started with other `mtu` settings and a 4 MiB TCP transfer runs from host 1 to host 2 (support/bulk-tcp.mjs):
 *   off         mtu.enabled false: the gateway's kernel thinks 1500 fits (inner 1446), full-size ESP is dropped
 *   clamp-only  underlayMtu 1300, routeMtu false: forwarded SYNs carry MSS 1206
 *   full        underlayMtu 1300: MSS clamping and the remote subnet's route MTU 1246
 * In the full phase the tunnel is then removed from agent 1's configuration: its route must be restored and the
 * clamping chain gone. Prints `RESULT <json>`.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { TunnelMtuView } from '../../../src/agent/mtu-controller.js';
import { type AgentProc, Capture, Lab, type Site, sh, shTry, sleep, waitFor } from '../support/agents.js';
import { runScenario } from '../support/wire.js';
import { MTU_BYTES, MTU_PATH, MTU_PHASES, type MtuPhaseName } from './agent-mtu-params.js';

const PSK = 'uml mtu pre-shared key 0123456789ab';
const BULK = join(dirname(fileURLToPath(import.meta.url)), '../support/bulk-tcp.mjs');

export interface MtuPhaseResult {
  name: MtuPhaseName;
  /** Agent 1's status of the tunnel's MTU handling. */
  mtu?: TunnelMtuView;
  mtuPeer?: TunnelMtuView;
  /** `ip route show <remote subnet>` on gateway 1. */
  route?: string;
  /** Our clamping rules on gateway 1 (iptables-legacy -t mangle -S). */
  rules?: string[];
  /** nftables on gateway 1 (the UML kernel has no inet family: expected to fail). */
  nft?: string;
  transfer?: { ok: boolean; bytes: number; acked: number; ms: number; error?: string; serverBytes: number };
  /** MSS in the SYN host 2 received and in the SYN-ACK host 1 received. */
  synMss?: number;
  synAckMss?: number;
  /** Frames the bridge ports dropped during the transfer (too big for MTU 1300). */
  drops?: number;
  /** After the tunnel was removed from agent 1 (full phase only). */
  afterRemoval?: { route: string; rules: string[]; mtuLog: string[] };
  /** Agent 1's `mtu-applied` log lines. */
  mtuLog?: string[];
}

export interface MtuResult {
  error?: string;
  phases: MtuPhaseResult[];
  notable?: string[];
  totalMs: number;
}

function bridgeDrops(ul: string): number {
  let n = 0;
  for (const dev of ['p1', 'p2']) {
    const j = JSON.parse(sh(`ip -s -j -n ${ul} link show ${dev}`)) as { stats64?: { rx?: { dropped?: number } } }[];
    n += j[0]?.stats64?.rx?.dropped ?? 0;
  }
  return n;
}

function mssOf(lines: string[], flags: string): number | undefined {
  const l = lines.find((x) => x.includes(`Flags [${flags}]`) && /mss \d+/.test(x));
  return l ? Number(/mss (\d+)/.exec(l)![1]) : undefined;
}

function ourRules(gw: string): string[] {
  return shTry(`ip netns exec ${gw} iptables-legacy -w -t mangle -S`)
    .out.split('\n')
    .filter((l) => l.includes('IPSEC-MESH-MSS'));
}

class BulkServer {
  /** Bytes received per connection (by the server's connection number). */
  readonly conns = new Map<number, number>();
  /** Bytes of the newest connection (a stalled one from an earlier phase keeps reporting 0). */
  get last(): number {
    return this.conns.get(Math.max(0, ...this.conns.keys())) ?? 0;
  }
  private readonly p: ChildProcess;
  readonly ready: Promise<void>;
  constructor(lab: Lab, ns: string, host: string, port: number) {
    this.p = spawn('ip', ['netns', 'exec', ns, process.execPath, BULK, 'server', host, String(port)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    lab.track(this.p);
    let ready!: () => void;
    this.ready = new Promise((r) => {
      ready = r;
    });
    createInterface({ input: this.p.stdout! }).on('line', (line) => {
      const j = JSON.parse(line) as { listening?: boolean; conn?: number; bytes?: number };
      if (j.listening) ready();
      if (j.conn !== undefined && j.bytes !== undefined) this.conns.set(j.conn, j.bytes);
    });
  }
}

function bulkClient(ns: string, host: string, port: number, local: string, bytes: number, ms: number) {
  return new Promise<{ ok: boolean; bytes: number; acked: number; ms: number; error?: string }>((resolve, reject) => {
    const p = spawn(
      'ip',
      ['netns', 'exec', ns, process.execPath, BULK, 'client', host, String(port), local, String(bytes), String(ms)],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    p.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
    });
    p.on('close', () => {
      try {
        resolve(JSON.parse(out.trim().split('\n').pop()!));
      } catch {
        reject(new Error(`bulk client printed ${out}`));
      }
    });
  });
}

async function main(): Promise<MtuResult> {
  const t0 = performance.now();
  const res: MtuResult = { phases: [], totalMs: 0 };
  const lab = new Lab('mtu');
  try {
    const ul = lab.ns('ul');
    sh(`ip -n ${ul} link add br0 type bridge && ip -n ${ul} link set br0 up`);
    const sites: Site[] = [];
    for (const n of [1, 2]) {
      const s = lab.site(n, `192.0.2.${n}`, 24, ul, `p${n}`);
      // The small-MTU path: the bridge side of each link takes at most MTU_PATH bytes; the gateways send up to 1500.
      sh(`ip -n ${ul} link set p${n} mtu ${MTU_PATH} && ip -n ${ul} link set p${n} master br0`);
      sh(`ip netns exec ${s.gw} sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1`);
      sites.push(s);
    }
    const [s1, s2] = sites as [Site, Site];
    sh(`ip -n ${s1.gw} route add ${s2.subnet} via ${s2.underlay}`);
    sh(`ip -n ${s2.gw} route add ${s1.subnet} via ${s1.underlay}`);
    const server = new BulkServer(lab, s2.host, s2.hostAddress, 7100);
    await server.ready;

    for (const phase of MTU_PHASES) {
      const pr: MtuPhaseResult = { name: phase.name };
      res.phases.push(pr);
      const agents: AgentProc[] = sites.map((s) => {
        const r = s === s1 ? s2 : s1;
        const a = lab.agent(`site${s.n}-${phase.name}`, s.gw, { addresses: [s.underlay], mtu: phase.mtu });
        a.addTunnel(
          `to-site${r.n}`,
          {
            localAddress: s.underlay,
            remoteAddress: r.underlay,
            localSubnets: [s.subnet],
            remoteSubnets: [r.subnet],
            localId: `site${s.n}.example`,
            remoteId: `site${r.n}.example`,
            ike: ['aes256gcm16-prfsha384-x25519'],
            esp: ['aes256gcm16'],
          },
          PSK,
        );
        return a;
      });
      const [a1, a2] = agents as [AgentProc, AgentProc];
      for (const a of agents) a.start();
      await a1.waitUp('to-site2', 60_000);
      await a2.waitUp('to-site1', 60_000);
      if (phase.mtu.enabled !== false) {
        await waitFor(
          'MTU in status',
          async () => (await a1.tunnel('to-site2'))?.mtu?.clamp !== 'failed' && (await a1.tunnel('to-site2'))?.mtu,
          10_000,
        );
        await waitFor('MTU in peer status', async () => (await a2.tunnel('to-site1'))?.mtu, 10_000);
      }
      pr.mtu = (await a1.tunnel('to-site2'))?.mtu;
      pr.mtuPeer = (await a2.tunnel('to-site1'))?.mtu;
      pr.route = sh(`ip -n ${s1.gw} route show ${s2.subnet}`).trim();
      pr.rules = ourRules(s1.gw);
      pr.nft = shTry(`ip netns exec ${s1.gw} nft list table inet ipsec_mesh_mss 2>&1`).out.trim().slice(0, 300);
      // No path MTU learned in an earlier phase may help this one.
      for (const s of sites) {
        shTry(`ip -n ${s.host} route flush cache`);
        shTry(`ip -n ${s.gw} route flush cache`);
      }
      const caps = [new Capture(lab, s2.host, 'eth0', 'in'), new Capture(lab, s1.host, 'eth0', 'in')];
      await Promise.all(caps.map((c) => c.start()));
      const drops0 = bridgeDrops(ul);
      const tr = await bulkClient(s1.host, s2.hostAddress, 7100, s1.hostAddress, MTU_BYTES, phase.timeoutMs);
      await sleep(300);
      pr.transfer = { ...tr, serverBytes: server.last };
      pr.drops = bridgeDrops(ul) - drops0;
      await Promise.all(caps.map((c) => c.stop()));
      const [in2, in1] = caps.map((c) =>
        c.text().filter((l) => / 198\.18\.[12]\.2\.\d+ > 198\.18\.[12]\.2\.\d+/.test(l)),
      );
      pr.synMss = mssOf(in2!, 'S');
      pr.synAckMss = mssOf(in1!, 'S.');
      if (phase.name === 'full') {
        rmSync(join(a1.dir, 'to-site2.yaml'));
        await waitFor('route restored', () => !sh(`ip -n ${s1.gw} route show ${s2.subnet}`).includes('mtu'), 15_000);
        await waitFor('clamping removed', () => ourRules(s1.gw).length === 0, 15_000);
        pr.afterRemoval = {
          route: sh(`ip -n ${s1.gw} route show ${s2.subnet}`).trim(),
          rules: ourRules(s1.gw),
          mtuLog: a1.events('mtu-applied').map((l) => String(l.msg)),
        };
      }
      pr.mtuLog = a1.events('mtu-applied').map((l) => JSON.stringify({ ...l, time: undefined, run: undefined }));
      await Promise.all(agents.map((a) => a.stop()));
    }
    res.notable = lab.agents
      .flatMap((a) => a.notable())
      .filter((l) => /"level":(50|60)/.test(l))
      .slice(0, 40);
  } catch (e) {
    res.error = e instanceof Error ? (e.stack ?? e.message) : String(e);
    res.notable = lab.agents.flatMap((a) => a.raw).slice(-150);
  } finally {
    await lab.destroy();
  }
  res.totalMs = performance.now() - t0;
  return res;
}

runScenario(main);
