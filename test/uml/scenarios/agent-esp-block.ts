/**
 * Runs INSIDE User-Mode Linux (see ../agent-esp-block.test.ts). A network that passes UDP but drops ESP.
 *
 * Gateway 1 (192.0.2.1) and gateway 2 (198.51.100.1) are joined by a router namespace whose FORWARD chain drops IP
 * protocol 50 (iptables-legacy: the UML kernel has no nftables ip family). Host 1 pings host 2 over UDP every 100 ms.
 *   phase "off":      agents with espBlockedFallback mode off: the tunnel comes up (IKE is UDP), nothing gets through
 *   phase "fallback": agents with the default mode (auto; interval 1 s, window 4 s for the test): gateway 1 notices
 *                     outbound ESP without inbound, asks the peer over IKE what it received (nothing), renegotiates
 *                     with forced UDP encapsulation; pings flow
 * Then the router passes ESP again and host 1 sends a one-way UDP flow (200 datagrams/s into a sink on host 2):
 *   phase "one-way":           mode auto: the peer reports it receives our ESP, so the tunnel stays on plain ESP
 *   phase "one-way-heuristic": mode heuristic (switch without the peer's count): the same flow is taken for
 *                              blocked ESP and the tunnel is moved to UDP needlessly (what auto avoids)
 * Records the echoes per phase, the time from the first ping to the switch and to the first echo, the status, the
 * router's ESP drop counter, what crossed the router and the one-way flows' counts. Prints `RESULT <json>`.
 */

import type { TunnelView } from '../../../src/agent/status.js';
import {
  type AgentProc,
  Capture,
  diagnoseCommand,
  Flow,
  type FlowStats,
  Lab,
  Pinger,
  type Site,
  sh,
  shTry,
  sleep,
  udpEcho,
  waitFor,
} from '../support/agents.js';
import { runScenario } from '../support/wire.js';
import { ESP_BLOCK_OFF_MS } from './agent-mtu-params.js';

const PSK = 'uml esp-block pre-shared key 01234';

export interface EspBlockPhase {
  name: 'off' | 'fallback' | 'one-way' | 'one-way-heuristic';
  /** `ipsec-mesh diagnose` output on gateway 1 while ESP was dropped (phase "off"). */
  diagnose?: string;
  /** Pings sent / echoed while the phase's tunnel was up. */
  sent: number;
  echoed: number;
  /** ms from the first ping of the phase to the esp-blocked event, and to the first echo. */
  blockedAfterMs?: number;
  echoAfterMs?: number;
  espBlockedEvents: number;
  /** esp-one-way / esp-block-unconfirmed log events of gateway 1. */
  oneWayEvents: number;
  unconfirmedEvents: number;
  /** The one-way flow of the one-way phases. */
  flow?: FlowStats;
  tunnel?: TunnelView;
  peerTunnel?: TunnelView;
  /** ESP packets the router dropped, and ESP-in-UDP packets it forwarded, during the phase. */
  espDropped: number;
  udpEncapForwarded: number;
}

export interface EspBlockResult {
  error?: string;
  phases: EspBlockPhase[];
  notable?: string[];
  totalMs: number;
}

function espDrops(rt: string): number {
  const line = sh(`ip netns exec ${rt} iptables-legacy -w -L FORWARD -v -x -n`)
    .split('\n')
    .find((l) => /DROP\s+(esp|50)\b/.test(l));
  return line ? Number(line.trim().split(/\s+/)[0]) : -1;
}

async function main(): Promise<EspBlockResult> {
  const t0 = performance.now();
  const res: EspBlockResult = { phases: [], totalMs: 0 };
  const lab = new Lab('espblk');
  try {
    const rt = lab.ns('rt');
    const s1 = lab.site(1, '192.0.2.1', 24, rt, 'p1');
    const s2 = lab.site(2, '198.51.100.1', 24, rt, 'p2');
    sh(`ip -n ${rt} addr add 192.0.2.254/24 dev p1 && ip -n ${rt} addr add 198.51.100.254/24 dev p2
ip netns exec ${rt} sysctl -qw net.ipv4.ip_forward=1
ip netns exec ${rt} iptables-legacy -w -A FORWARD -p esp -j DROP`);
    const sites: [Site, Site] = [s1, s2];
    for (const [s, r, via] of [
      [s1, s2, '192.0.2.254'],
      [s2, s1, '198.51.100.254'],
    ] as const) {
      sh(`ip netns exec ${s.gw} sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1`);
      sh(`ip -n ${s.gw} route add ${r.underlay}/32 via ${via} && ip -n ${s.gw} route add ${r.subnet} via ${via}`);
    }
    await udpEcho(lab, s2.host, s2.hostAddress, 7300);
    let pinger: Pinger | undefined;

    for (const name of ['off', 'fallback', 'one-way', 'one-way-heuristic'] as const) {
      const oneWay = name === 'one-way' || name === 'one-way-heuristic';
      if (name === 'one-way') {
        // From here on the router passes ESP; pings (answered) would hide a one-way flow.
        pinger?.stop();
        sh(`ip netns exec ${rt} iptables-legacy -w -D FORWARD -p esp -j DROP`);
      }
      const mode = name === 'off' ? 'off' : name === 'one-way-heuristic' ? 'heuristic' : 'auto';
      const agents: AgentProc[] = sites.map((s) => {
        const r = s === s1 ? s2 : s1;
        const a = lab.agent(`site${s.n}-${name}`, s.gw, {
          addresses: [s.underlay],
          // auto is the default mode; only the timings are shortened for the test.
          espBlockedFallback:
            mode === 'auto' ? { interval: '1s', window: '4s' } : { mode, interval: '1s', window: '4s' },
        });
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
            dpd: '5s',
          },
          PSK,
        );
        return a;
      });
      const [a1, a2] = agents as [AgentProc, AgentProc];
      for (const a of agents) a.start();
      await a1.waitUp('to-site2', 60_000);
      await a2.waitUp('to-site1', 60_000);
      const drops0 = oneWay ? 0 : espDrops(rt);
      const cap = new Capture(lab, rt, 'p2', 'out');
      await cap.start();
      if (!pinger && !oneWay) {
        pinger = new Pinger(lab, s1.host, s1.hostAddress, s2.hostAddress, 7300, 100);
        await pinger.start();
      }
      const tStart = Date.now();
      const ph: EspBlockPhase = {
        name,
        sent: 0,
        echoed: 0,
        espBlockedEvents: 0,
        oneWayEvents: 0,
        unconfirmedEvents: 0,
        espDropped: 0,
        udpEncapForwarded: 0,
      };
      res.phases.push(ph);
      if (name === 'off') {
        await sleep(ESP_BLOCK_OFF_MS);
        // What an operator sees: `ipsec-mesh diagnose` on gateway 1 while ESP is dropped.
        ph.diagnose = shTry(
          `ip netns exec ${s1.gw} ${diagnoseCommand()} --tunnel default/to-site2 --state-dir ${a1.stateDir} --config-dir ${a1.dir}`,
        ).out;
      } else if (name === 'fallback') {
        const ev = await waitFor('esp-blocked event', () => a1.events('esp-blocked')[0], 40_000).catch(() => undefined);
        if (ev) ph.blockedAfterMs = Date.now() - tStart;
        const echo = await pinger!.waitEcho(tStart, 40_000).catch(() => undefined);
        if (echo) ph.echoAfterMs = echo.sentAt + echo.rtt - tStart;
        await sleep(3000);
      } else {
        // 16 s of one-way traffic: four windows of the detector and more.
        const flow = new Flow(lab, {
          fromNs: s1.host,
          toNs: s2.host,
          from: s1.hostAddress,
          to: s2.hostAddress,
          port: 7400,
          rate: 200,
          count: 3200,
        });
        await flow.start();
        ph.flow = await flow.result(60_000);
        const ev = a1.events('esp-blocked')[0];
        if (ev) ph.blockedAfterMs = Date.now() - tStart;
      }
      const tEnd = Date.now();
      if (pinger && !oneWay) {
        ph.sent = Math.round((tEnd - tStart) / 100);
        ph.echoed = pinger.echoes.filter((e) => e.sentAt >= tStart && e.sentAt < tEnd).length;
      }
      ph.espBlockedEvents = a1.events('esp-blocked').length + a2.events('esp-blocked').length;
      ph.oneWayEvents = a1.events('esp-one-way').length;
      ph.unconfirmedEvents = a1.events('esp-block-unconfirmed').length;
      ph.tunnel = await a1.tunnel('to-site2');
      ph.peerTunnel = await a2.tunnel('to-site1');
      ph.espDropped = oneWay ? 0 : espDrops(rt) - drops0;
      await cap.stop();
      ph.udpEncapForwarded = cap.text().filter((l) => /UDP-encap/.test(l)).length;
      await Promise.all(agents.map((a) => a.stop()));
    }
    pinger?.stop();
    res.notable = lab.agents
      .flatMap((a) => a.raw)
      .filter((l) => /esp-block|esp-one-way|"level":(50|60)/.test(l))
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
