/**
 * Runs INSIDE User-Mode Linux (see ../agent-strongswan.test.ts). Scenario 2: our agent (gateway 1, 192.0.2.1) and
 * strongSwan's charon with its kernel-netlink plugin (gateway 2, 192.0.2.2): kernel SAs on both sides.
 *
 * Six tunnels, one per ESP algorithm x initiator, each with its own subnet pair (site 1: 198.18.30+i.0/24, site 2:
 * 198.18.40+i.0/24) and identities (ours-i.example / sw-i.example), all with the IKE proposal
 * aes256gcm16-prfsha384-x25519: for each, TCP echoes in both directions and a ping between the hosts, then the
 * algorithms in both kernels (`ip xfrm state`) and the counters in our status. Then a one-way UDP flow from our site
 * into a sink on charon's site: our agent's ESP-blocked detector asks charon what it received (a private-use notify
 * charon must ignore, RFC 7296 §3.10.1); charon answers empty, so the agent only logs esp-block-unconfirmed and the
 * tunnel stays on plain ESP. Prints `RESULT <json>`.
 */

import { Flow, type FlowStats, Lab, type Site, sh, shTry } from '../support/agents.js';
import { NsWorker } from '../support/ns.js';
import { runScenario } from '../support/wire.js';
import { STRONGSWAN_CASES } from './agent-params.js';

const PSK = 'uml strongswan pre-shared key 0123456789';
const IKE = 'aes256gcm16-prfsha384-x25519';

export const CASES = STRONGSWAN_CASES;

export interface SwCaseResult {
  alg: string;
  initiator: string;
  up: boolean;
  ours?: { ike: string; algorithms?: string; spiIn?: string; spiOut?: string; bytesIn?: string; bytesOut?: string };
  tcpOursToSw?: { bytes: number; equal: boolean } | string;
  tcpSwToOurs?: { bytes: number; equal: boolean } | string;
  ping?: boolean;
  /** The kernel algorithm appears on both gateways' SAs with the negotiated SPIs. */
  kernelOurs?: boolean;
  kernelSw?: boolean;
  errors: string[];
}

export interface SwResult {
  error?: string;
  cases: SwCaseResult[];
  charonSas?: string;
  notable: string[];
  charonLog?: string;
  /** The one-way flow into charon's site, and what the ESP-blocked detector made of it. */
  oneWay?: {
    flow: FlowStats;
    unconfirmed: number;
    oneWay: number;
    blocked: number;
    message?: string;
    encapsulated: boolean;
    /** charon's log lines for the INFORMATIONAL exchanges during the flow. */
    charonInformational: string[];
  };
  totalMs: number;
}

function swanctlConf(): string {
  const conns = CASES.map((c, i) => {
    return `  c${i} {
    version = 2
    local_addrs = 192.0.2.2
    remote_addrs = 192.0.2.1
    proposals = ${IKE}
    dpd_delay = 30s
    local { auth = psk
      id = sw-${i}.example }
    remote { auth = psk
      id = ours-${i}.example }
    children {
      c${i} {
        local_ts = 198.18.${40 + i}.0/24
        remote_ts = 198.18.${30 + i}.0/24
        esp_proposals = ${c.alg}
        mode = tunnel
        start_action = none
      }
    }
  }`;
  });
  return `connections {\n${conns.join('\n')}\n}\nsecrets {\n  ike-all {\n    secret = "${PSK}"\n  }\n}\n`;
}

async function main(): Promise<SwResult> {
  const t0 = performance.now();
  const res: SwResult = { cases: [], notable: [], totalMs: 0 };
  const lab = new Lab('sw');
  const workers: NsWorker[] = [];
  try {
    const ul = lab.ns('ul');
    sh(`ip -n ${ul} link add br0 type bridge && ip -n ${ul} link set br0 up`);
    const sites: Site[] = [1, 2].map((n) => {
      const s = lab.site(n, `192.0.2.${n}`, 24, ul, `p${n}`);
      sh(`ip -n ${ul} link set p${n} master br0`);
      for (const i of CASES.keys()) {
        const x = n === 1 ? 30 + i : 40 + i;
        sh(`ip -n ${s.gw} addr add 198.18.${x}.1/24 dev in${n} && ip -n ${s.host} addr add 198.18.${x}.2/24 dev eth0`);
      }
      return s;
    });
    const [s1, s2] = sites as [Site, Site];
    for (const i of CASES.keys()) {
      sh(`ip -n ${s1.gw} route add 198.18.${40 + i}.0/24 via ${s2.underlay}`);
      sh(`ip -n ${s2.gw} route add 198.18.${30 + i}.0/24 via ${s1.underlay}`);
    }
    // The ESP-blocked detector runs by default; its window is shortened for the one-way flow at the end.
    const ours = lab.agent('ours', s1.gw, {
      addresses: [s1.underlay],
      espBlockedFallback: { interval: '1s', window: '4s' },
    });
    for (const [i, c] of CASES.entries()) {
      ours.addTunnel(
        `c${i}`,
        {
          localAddress: s1.underlay,
          remoteAddress: s2.underlay,
          localSubnets: [`198.18.${30 + i}.0/24`],
          remoteSubnets: [`198.18.${40 + i}.0/24`],
          localId: `ours-${i}.example`,
          remoteId: `sw-${i}.example`,
          ike: [IKE],
          esp: [c.alg],
          startAction: c.initiator === 'agent' ? 'start' : 'none',
        },
        PSK,
      );
    }
    // charon with all six connections loaded first; then our agent, which initiates its three at once; once it is
    // up and configured, charon initiates the other three.
    const sw = lab.charon('sw', s2.gw, s2.dev);
    await sw.start();
    sw.load(swanctlConf());
    ours.start();
    await ours.waitReady(CASES.length);
    const initiated = CASES.map((c, i) => (c.initiator === 'charon' ? sw.initiate(`c${i}`) : undefined));
    for (const [i, c] of CASES.entries()) {
      const r: SwCaseResult = { alg: c.alg, initiator: c.initiator, up: false, errors: [] };
      res.cases.push(r);
      try {
        await ours.waitUp(`c${i}`, 40_000);
        r.up = true;
      } catch (e) {
        r.errors.push(e instanceof Error ? e.message : String(e));
        const init = await initiated[i];
        if (init) r.errors.push(`swanctl --initiate: ${init.out.slice(-600)}`);
      }
    }
    await Promise.all(initiated);
    for (const s of sites) workers.push(new NsWorker(s.host));
    await Promise.all(workers.map((w) => w.ready));
    const [w1, w2] = workers as [NsWorker, NsWorker];
    const payload = Buffer.from('strongswan-interop-payload-'.repeat(200));
    for (const [i, r] of res.cases.entries()) {
      if (!r.up) continue;
      const a = `198.18.${30 + i}.2`;
      const b = `198.18.${40 + i}.2`;
      try {
        await w1.call('tcpEchoServer', { host: a, port: 7100 });
        await w2.call('tcpEchoServer', { host: b, port: 7100 });
        r.tcpOursToSw = await w1
          .call<{ bytes: number; equal: boolean }>('tcpExchange', {
            host: b,
            port: 7100,
            localAddress: a,
            payload,
            timeoutMs: 15_000,
          })
          .catch((e: Error) => e.message);
        r.tcpSwToOurs = await w2
          .call<{ bytes: number; equal: boolean }>('tcpExchange', {
            host: a,
            port: 7100,
            localAddress: b,
            payload,
            timeoutMs: 15_000,
          })
          .catch((e: Error) => e.message);
        r.ping = shTry(`ip netns exec ${s1.host} ping -n -c 2 -i 0.2 -W 3 -I ${a} ${b}`).code === 0;
        const t = await ours.tunnel(`c${i}`);
        const inst = t?.childSAs.find((x) => x.state === 'installed');
        r.ours = {
          ike: t?.ikeSA.state ?? 'missing',
          ...(inst
            ? {
                algorithms: inst.algorithms,
                spiIn: inst.spiIn,
                spiOut: inst.spiOut,
                bytesIn: inst.bytesIn,
                bytesOut: inst.bytesOut,
              }
            : {}),
        };
        const kernelHas = (ns: string) => {
          const st = shTry(`ip -n ${ns} xfrm state`).out;
          const blocks = st.split(/^(?=src )/m);
          const c = CASES[i]!;
          return [inst?.spiIn, inst?.spiOut].every((spi) =>
            blocks.some((bl) => spi !== undefined && bl.includes(`spi 0x${spi}`) && bl.includes(c.kernel)),
          );
        };
        r.kernelOurs = kernelHas(s1.gw);
        r.kernelSw = kernelHas(s2.gw);
      } catch (e) {
        r.errors.push(e instanceof Error ? e.message : String(e));
      }
    }
    if (res.cases[0]?.up) {
      const flow = new Flow(lab, {
        fromNs: s1.host,
        toNs: s2.host,
        from: '198.18.30.2',
        to: '198.18.40.2',
        port: 7401,
        rate: 200,
        count: 2400,
      });
      await flow.start();
      const stats = await flow.result(60_000);
      const ev = (e: string) => ours.events(e, 'c0');
      const t = await ours.tunnel('c0');
      const oneWay: NonNullable<SwResult['oneWay']> = {
        flow: stats,
        unconfirmed: ev('esp-block-unconfirmed').length,
        oneWay: ev('esp-one-way').length,
        blocked: ev('esp-blocked').length,
        encapsulated: t?.childSAs.some((c) => c.encapsulation) ?? false,
        charonInformational: sw
          .log()
          .split('\n')
          .filter((l) => /INFORMATIONAL/.test(l))
          .slice(-12),
      };
      const msg = ev('esp-block-unconfirmed')[0]?.msg;
      if (msg) oneWay.message = msg;
      res.oneWay = oneWay;
    }
    res.charonSas = sw.swanctl(['--list-sas']).out.slice(0, 6000);
  } catch (e) {
    res.error = e instanceof Error ? (e.stack ?? e.message) : String(e);
  } finally {
    res.notable = lab.agents.flatMap((a) => a.notable()).slice(-150);
    res.charonLog = lab.charons
      .map((c) => c.log())
      .join('\n')
      .split('\n')
      .filter((l) => /error|fail|NO_PROP|TS_UNACC|AUTH|received|establish|installed|deleting/i.test(l))
      .slice(-120)
      .join('\n');
    await Promise.all(workers.map((w) => w.stop().catch(() => {})));
    await lab.destroy();
  }
  res.totalMs = performance.now() - t0;
  return res;
}

runScenario(main);
