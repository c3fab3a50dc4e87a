/**
 * Runs INSIDE User-Mode Linux (see ../agent-nat-dpd.test.ts). Scenarios 5 and 6 with our agents and kernel ESP.
 *
 *   host 1 -- gw1 192.0.2.1 -- [nat: 192.0.2.254 | 198.51.100.254, masquerade --random] -- 198.51.100.2 gw2 -- host 2
 *
 * The UML kernel has no nftables `ip` family (CONFIG_NF_TABLES_IPV4 is off), so the NAT is iptables-legacy
 * MASQUERADE with --random: every new conntrack entry gets a random source port, so a flushed mapping comes back as
 * a different one. gw1 initiates (it is behind the NAT); gw2 is configured with the NAT's public address as peer.
 *
 * Scenario 5: NAT detected on both sides, CHILD SAs with UDP encapsulation, only UDP 4500 (no bare ESP) on the
 * underlay, UDP pings host 1 -> host 2 echoed; then `conntrack -F` in the NAT namespace: the mapping changes, and
 * the time until pings are echoed again is the recovery time.
 * Scenario 6: gw2 disappears (agent SIGKILLed and its underlay link down); gw1's DPD (interval 3 s, retransmits
 * 1 s x 1.5^n, 3 tries) must notice: the time until gw1's status shows it, and what it shows.
 * Prints `RESULT <json>`.
 */
import { Capture, Lab, Pinger, sh, shTry, sleep, udpEcho, waitFor } from '../support/agents.js';
import { runScenario } from '../support/wire.js';
import { DPD_INTERVAL_S } from './agent-params.js';

const PSK = 'uml nat pre-shared key 0123456789';

export interface NatResult {
  natDetected?: { gw1: boolean; gw2: boolean };
  encapsulation?: { gw1: boolean; gw2: boolean };
  /** gw2's view of the peer (address:port) before and after the mapping change. */
  peerBefore?: string;
  peerAfter?: string;
  echoBefore?: boolean;
  wire?: { udp4500: number; bareEsp: number; plaintext: number; sample: string[] };
  /** gw1's source ports and their public ports on the NAT (`4500->31337`), before the flush and after recovery. */
  mappingBefore?: string;
  mappingAfter?: string;
  recoveryMs?: number;
  errors: string[];
}

export interface DpdResult {
  /** Time from the peer's disappearance to gw1's status showing it (lastError or IKE state not Established). */
  detectionMs?: number;
  /** What gw1's status showed at that moment. */
  shown?: { state: string; lastError?: string; message?: string };
  /** Every distinct (state, lastError) gw1's status showed during the wait, in order. */
  seen: string[];
  /** After the peer is back (link up, agent running and configured): time until gw1's tunnel is up again. */
  recoveredMs?: number;
  errors: string[];
}

export interface NatDpdResult {
  error?: string;
  nat: NatResult;
  dpd: DpdResult;
  notable: string[];
  totalMs: number;
}

/** The NAT's public ports for gw1's UDP flows (reply tuples towards 198.51.100.254), from `conntrack -L`. */
function natPorts(ns: string): string {
  const out = shTry(`ip netns exec ${ns} conntrack -L -p udp 2>/dev/null`).out;
  const ports = [
    ...out.matchAll(
      /src=192\.0\.2\.1 dst=198\.51\.100\.2 sport=(\d+) dport=(\d+) .*?dst=198\.51\.100\.254 sport=\d+ dport=(\d+)/g,
    ),
  ].map((m) => `${m[1]}->${m[3]}`);
  return ports.sort().join(',');
}

async function main(): Promise<NatDpdResult> {
  const t0 = performance.now();
  const res: NatDpdResult = { nat: { errors: [] }, dpd: { seen: [], errors: [] }, notable: [], totalMs: 0 };
  const lab = new Lab('nat');
  try {
    for (const m of ['nf_conntrack', 'nf_nat', 'iptable_nat', 'xt_MASQUERADE', 'nfnetlink', 'nf_conntrack_netlink']) {
      shTry(`/sbin/modprobe -d /tmp/root ${m}`);
    }
    const nat = lab.ns('natbox');
    const s1 = lab.site(1, '192.0.2.1', 24, nat, 'n1');
    const s2 = lab.site(2, '198.51.100.2', 24, nat, 'n2');
    sh(`ip -n ${nat} addr add 192.0.2.254/24 dev n1 && ip -n ${nat} addr add 198.51.100.254/24 dev n2
ip netns exec ${nat} sysctl -qw net.ipv4.ip_forward=1
ip netns exec ${nat} iptables-legacy -t nat -A POSTROUTING -o n2 -j MASQUERADE --random
ip -n ${s1.gw} route add 198.51.100.0/24 via 192.0.2.254
ip -n ${s1.gw} route add ${s2.subnet} via 192.0.2.254
ip -n ${s2.gw} route add ${s1.subnet} via 198.51.100.254`);
    const gw1 = lab.agent('gw1', s1.gw, { addresses: [s1.underlay] });
    const gw2 = lab.agent('gw2', s2.gw, { addresses: [s2.underlay] });
    const common = {
      ike: ['aes256gcm16-prfsha384-x25519'],
      esp: ['aes256gcm16'],
      dpd: `${DPD_INTERVAL_S}s`,
      dpdAction: 'restart' as const,
    };
    gw1.addTunnel(
      'to-gw2',
      {
        localAddress: s1.underlay,
        remoteAddress: s2.underlay,
        localSubnets: [s1.subnet],
        remoteSubnets: [s2.subnet],
        localId: 'gw1.example',
        remoteId: 'gw2.example',
        startAction: 'start',
        ...common,
      },
      PSK,
    );
    gw2.addTunnel(
      'to-gw1',
      {
        localAddress: s2.underlay,
        remoteAddress: '198.51.100.254',
        localSubnets: [s2.subnet],
        remoteSubnets: [s1.subnet],
        localId: 'gw2.example',
        remoteId: 'gw1.example',
        startAction: 'none',
        ...common,
      },
      PSK,
    );
    // Egress only (ingress taps see the decapsulated inner packets): gw2 -> NAT and NAT -> gw2.
    const caps = [new Capture(lab, s2.gw, s2.dev, 'out'), new Capture(lab, nat, 'n2', 'out')];
    await Promise.all(caps.map((c) => c.start()));
    // The responder first, ready with its configuration; then the initiator.
    gw2.start();
    await gw2.waitReady(1);
    gw1.start();
    const [t1, t2] = [await gw1.waitUp('to-gw2', 60_000), await gw2.waitUp('to-gw1', 60_000)];
    const n = res.nat;
    // ---- scenario 5
    try {
      n.natDetected = { gw1: t1.ikeSA.natDetected, gw2: t2.ikeSA.natDetected };
      n.encapsulation = {
        gw1: t1.childSAs.some((c) => c.state === 'installed' && c.encapsulation),
        gw2: t2.childSAs.some((c) => c.state === 'installed' && c.encapsulation),
      };
      n.peerBefore = t2.ikeSA.remote;
      await udpEcho(lab, s2.host, s2.hostAddress, 7001);
      const pinger = new Pinger(lab, s1.host, s1.hostAddress, s2.hostAddress, 7001, 100);
      await pinger.start();
      try {
        await pinger.waitEcho(0, 20_000);
        n.echoBefore = true;
        n.mappingBefore = natPorts(nat);
        sh(`ip netns exec ${nat} conntrack -F`);
        // From when the flush is done: a ping sent before may still have been echoed through the old mapping.
        const flushAt = Date.now();
        const e = await pinger.waitEcho(flushAt + 1, 60_000);
        n.recoveryMs = e.sentAt + e.rtt - flushAt;
        n.mappingAfter = natPorts(nat);
        n.peerAfter = (await gw2.tunnel('to-gw1'))?.ikeSA.remote;
      } finally {
        pinger.stop();
      }
    } catch (e) {
      n.errors.push(e instanceof Error ? e.message : String(e));
    }
    await Promise.all(caps.map((c) => c.stop()));
    const lines = caps.flatMap((c) => c.text()).filter((l) => !/ IP6 /.test(l));
    n.wire = {
      udp4500: lines.filter((l) => /UDP-encap/.test(l)).length,
      bareEsp: lines.filter((l) => / ESP\(spi=/.test(l) && !/UDP-encap/.test(l)).length,
      plaintext: lines.filter((l) => /198\.18\./.test(l)).length,
      sample: lines.filter((l) => /198\.18\./.test(l)).slice(0, 12),
    };

    // ---- scenario 6: gw2 disappears
    const d = res.dpd;
    try {
      await gw1.waitUp('to-gw2', 30_000);
      await sleep(1000);
      await gw2.stop('SIGKILL');
      sh(`ip -n ${s2.gw} link set ${s2.dev} down`);
      const goneAt = performance.now();
      const shown = await waitFor(
        'gw1 to notice that gw2 is gone',
        async () => {
          const t = await gw1.tunnel('to-gw2');
          if (!t) return undefined;
          const key = `${t.ikeSA.state}/${t.ikeSA.lastError?.code ?? '-'}`;
          if (d.seen[d.seen.length - 1] !== key) d.seen.push(key);
          const noticed = t.ikeSA.state !== 'Established' || t.ikeSA.lastError !== undefined;
          return noticed
            ? { state: t.ikeSA.state, lastError: t.ikeSA.lastError?.code, message: t.ikeSA.lastError?.message }
            : undefined;
        },
        60_000,
        100,
      );
      d.detectionMs = performance.now() - goneAt;
      d.shown = shown;
      // Keep watching a little: what the status settles on (restart action: re-initiation attempts).
      const until = performance.now() + 3000;
      while (performance.now() < until) {
        const t = await gw1.tunnel('to-gw2').catch(() => undefined);
        const key = `${t?.ikeSA.state}/${t?.ikeSA.lastError?.code ?? '-'}`;
        if (t && d.seen[d.seen.length - 1] !== key) d.seen.push(key);
        await sleep(200);
      }
      // The peer comes back: with dpd action restart, gw1 keeps re-initiating (with back-off) until it answers.
      sh(`ip -n ${s2.gw} link set ${s2.dev} up`);
      gw2.start();
      await gw2.waitReady(1);
      const backAt = performance.now();
      await gw1.waitUp('to-gw2', 90_000);
      d.recoveredMs = performance.now() - backAt;
    } catch (e) {
      d.errors.push(e instanceof Error ? e.message : String(e));
    }
  } catch (e) {
    res.error = e instanceof Error ? (e.stack ?? e.message) : String(e);
  } finally {
    res.notable = lab.agents.flatMap((a) => a.notable()).slice(-200);
    await lab.destroy();
  }
  res.totalMs = performance.now() - t0;
  return res;
}

runScenario(main);
