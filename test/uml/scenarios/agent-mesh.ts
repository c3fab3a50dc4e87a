/**
 * Runs INSIDE User-Mode Linux (see ../agent-mesh.test.ts). Scenario 1: three sites, a full mesh of our agents with
 * kernel ESP. Each site is a gateway namespace (192.0.2.N on a shared bridge, 198.18.N.1 inside) and a host namespace
 * (198.18.N.2) behind it; every gateway runs `ipsec-mesh agent` with a tunnel to each other site (both sides
 * `startAction: start`, as the operator generates them). Then for every ordered pair of sites a TCP echo and a ping
 * between the hosts, while tcpdump captures what every gateway sends onto the underlay (egress only: every packet
 * on the bridge leaves exactly one gateway). Prints `RESULT <json>`.
 */

import { Capture, Lab, type Site, sh, shTry } from '../support/agents.js';
import { NsWorker } from '../support/ns.js';
import { runScenario } from '../support/wire.js';

const PSK = 'uml mesh pre-shared key 0123456789';
const MARKER = 'MESH-PLAINTEXT-MARKER-6f1c2d';

export interface MeshResult {
  error?: string;
  upMs?: number;
  /** Per agent: tunnel name -> IKE state, installed CHILD SAs, spiIn/spiOut of the first installed one. */
  tunnels?: Record<string, Record<string, { ike: string; installed: number; spiIn?: string; spiOut?: string }>>;
  /** Number of ESP SAs in each gateway's kernel (`ip xfrm state`). */
  kernelSas?: Record<string, number>;
  pairs?: { from: number; to: number; tcp: { bytes: number; equal: boolean } | string; ping: boolean }[];
  wire?: { packets: number; esp: number; ike: number; arp: number; other: string[]; markerFound: boolean };
  /** Kernel counters from status after the traffic (per agent and tunnel). */
  counters?: Record<string, Record<string, { bytesIn?: string; bytesOut?: string }>>;
  notable?: string[];
  totalMs: number;
}

async function main(): Promise<MeshResult> {
  const t0 = performance.now();
  const res: MeshResult = { totalMs: 0 };
  const lab = new Lab('mesh');
  const workers: NsWorker[] = [];
  try {
    const ul = lab.ns('ul');
    sh(`ip -n ${ul} link add br0 type bridge && ip -n ${ul} link set br0 up`);
    const sites: Site[] = [];
    for (const n of [1, 2, 3]) {
      const s = lab.site(n, `192.0.2.${n}`, 24, ul, `p${n}`);
      sh(`ip -n ${ul} link set p${n} master br0`);
      sh(`ip netns exec ${s.gw} sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1`);
      sites.push(s);
    }
    for (const a of sites)
      for (const b of sites) if (a !== b) sh(`ip -n ${a.gw} route add ${b.subnet} via ${b.underlay}`);
    const agents = sites.map((s) => {
      const ag = lab.agent(`site${s.n}`, s.gw, { addresses: [s.underlay] });
      for (const r of sites) {
        if (r === s) continue;
        ag.addTunnel(
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
      }
      return ag;
    });
    const caps = sites.map((s) => new Capture(lab, s.gw, s.dev, 'out'));
    await Promise.all(caps.map((c) => c.start()));
    const tUp = performance.now();
    for (const a of agents) a.start();
    for (const [i, a] of agents.entries()) {
      for (const r of sites) if (r !== sites[i]) await a.waitUp(`to-site${r.n}`, 60_000);
    }
    res.upMs = performance.now() - tUp;
    // Let simultaneous initiations settle (duplicates are deleted), then record what each side has.
    await new Promise((r) => setTimeout(r, 2000));
    res.tunnels = {};
    for (const a of agents) {
      const st = await a.status();
      res.tunnels[a.name] = Object.fromEntries(
        st.tunnels.map((t) => {
          const inst = t.childSAs.filter((c) => c.state === 'installed');
          return [
            t.name,
            { ike: t.ikeSA.state, installed: inst.length, spiIn: inst[0]?.spiIn, spiOut: inst[0]?.spiOut },
          ];
        }),
      );
    }
    res.kernelSas = Object.fromEntries(
      sites.map((s) => [s.gw, (shTry(`ip -n ${s.gw} xfrm state`).out.match(/^src /gm) ?? []).length]),
    );
    // Traffic between every ordered pair of site hosts.
    for (const s of sites) {
      const w = new NsWorker(s.host);
      workers.push(w);
    }
    await Promise.all(workers.map((w) => w.ready));
    for (const [i, w] of workers.entries()) await w.call('tcpEchoServer', { host: sites[i]!.hostAddress, port: 7000 });
    res.pairs = [];
    const payload = Buffer.from(MARKER.repeat(300));
    for (const [i, a] of sites.entries()) {
      for (const [j, b] of sites.entries()) {
        if (i === j) continue;
        const tcp = await workers[i]!.call<{ bytes: number; equal: boolean }>('tcpExchange', {
          host: b.hostAddress,
          port: 7000,
          localAddress: a.hostAddress,
          payload,
          timeoutMs: 15_000,
        }).catch((e: Error) => e.message);
        const ping = shTry(`ip netns exec ${a.host} ping -n -c 3 -i 0.2 -W 3 -p 4d455348 ${b.hostAddress}`).code === 0;
        res.pairs.push({ from: a.n, to: b.n, tcp, ping });
      }
    }
    res.counters = {};
    for (const a of agents) {
      const st = await a.status();
      res.counters[a.name] = Object.fromEntries(
        st.tunnels.map((t) => {
          // Sum over the installed CHILD SAs (simultaneous initiation may leave two per tunnel).
          const inst = t.childSAs.filter((x) => x.state === 'installed');
          const sum = (f: 'bytesIn' | 'bytesOut') => String(inst.reduce((n, c) => n + Number(c[f] ?? 0), 0));
          return [t.name, { bytesIn: sum('bytesIn'), bytesOut: sum('bytesOut') }];
        }),
      );
    }
    await Promise.all(caps.map((c) => c.stop()));
    const lines = caps.flatMap((c) => c.text());
    // Allowed on the underlay: ESP, IKE (UDP 500/4500), ARP, and the ICMP port-unreachable a gateway answers to IKE
    // packets that arrive before its agent listens. Anything else would be traffic outside the tunnel.
    const other = lines.filter(
      (l) =>
        !/ ESP\(spi=| UDP-encap| \.(500|4500): | ARP,|isakmp|NONESP-encap|ICMP \S+ udp port (500|4500) unreachable/.test(
          l,
        ),
    );
    res.wire = {
      packets: lines.length,
      esp: lines.filter((l) => / ESP\(spi=/.test(l)).length,
      ike: lines.filter((l) => /\.(500|4500)[: ]/.test(l) && !/ ESP\(/.test(l)).length,
      arp: lines.filter((l) => / ARP,/.test(l)).length,
      other: other.slice(0, 20),
      markerFound: caps.some((c) => c.bytes().includes(Buffer.from(MARKER))),
    };
    res.notable = agents
      .flatMap((a) => a.notable())
      .filter((l) => /"level":(40|50|60)/.test(l))
      .slice(0, 40);
  } catch (e) {
    res.error = e instanceof Error ? (e.stack ?? e.message) : String(e);
    res.notable = lab.agents.flatMap((a) => a.raw).slice(-150);
  } finally {
    await Promise.all(workers.map((w) => w.stop().catch(() => {})));
    await lab.destroy();
  }
  res.totalMs = performance.now() - t0;
  return res;
}

runScenario(main);
