/**
 * Runs INSIDE User-Mode Linux (see ../agent-rekey.test.ts). Scenarios 3 and 4: two sites, our agents, kernel ESP.
 *
 * Three tunnels between gateway 1 (192.0.2.1) and gateway 2 (192.0.2.2), each with its own subnet pair and
 * identities; gateway 2 starts first and only responds, gateway 1 then establishes all three:
 *   t-a  198.18.1.0/24  <-> 198.18.2.0/24   CHILD lifetime 10 s and IKE lifetime 25 s on gateway 1
 *                                           only (gateway 2: 1 h / 4 h), so every rekey of t-a is initiated by gw 1
 *   t-b  198.18.11.0/24 <-> 198.18.12.0/24  the mirror image: gateway 2 rekeys (CHILD 10 s, IKE 30 s on gateway 2)
 *   t-c  198.18.21.0/24 <-> 198.18.22.0/24  long lifetimes, for the crash test
 *
 * Scenario 3: a UDP flow of 1,000 sequence-numbered datagrams/s from host 1 to host 2 through t-a for 36 s, then the
 * same through t-b: lost, duplicated and reordered datagrams per flow, and the CHILD/IKE rekeys seen meanwhile.
 * Scenario 4: the same flow through t-c (DPD 30 s); gateway 1's agent is killed (SIGKILL) after 6 s and started
 * again 1 s later; the flow goes on until 40 s (a restart under full CI load took 18 s): lost/duplicated datagrams, and
 * the kernel's SAs after the new ones are in.
 * Prints `RESULT <json>`.
 */
import { spawn } from 'node:child_process';
import {
  type AgentProc,
  Flow,
  type FlowStats,
  Lab,
  type Site,
  sh,
  shTry,
  sleep,
  waitFor,
  xfrmSummary,
} from '../support/agents.js';
import { runScenario } from '../support/wire.js';

const PSK = 'uml rekey pre-shared key 0123456789';
const RATE = 1000;

export interface RekeyFlowResult {
  tunnel: string;
  flow?: FlowStats;
  /** CHILD SAs installed as a rekey during the flow, as logged by each gateway's agent. */
  childRekeys: { gw1: number; gw2: number };
  ikeRekeys: { gw1: number; gw2: number };
  /** Distinct inbound SPIs the flow's tunnel had on gateway 2 while the flow ran (sampled from status). */
  spisSeen: number;
  /** Each gap: when it began (ms after the flow started), its length, and the SA event logged nearest to it. */
  gapDetails: { atMs: number; datagrams: number; nearest?: string }[];
  errors: string[];
}

/** Each gap of a flow with the nearest SA life-cycle event (either agent, this tunnel) and its distance in ms. */
function gapDetails(f: FlowStats, agents: AgentProc[], tunnel: string, rate: number) {
  const events = agents.flatMap((a) =>
    a.logs
      .filter(
        (l) =>
          l.tunnel === `default/${tunnel}` &&
          /child-installed|child-deleted|ike-rekeyed|ike-established|ike-deleted/.test(String(l.event)),
      )
      .map((l) => ({ t: l.time ?? 0, what: `${a.name} ${l.event}${l.rekey ? ' (rekey)' : ''}` })),
  );
  return f.gaps.map(([a, b]) => {
    const at = f.startedAtEpoch + (a * 1000) / rate;
    let best: { d: number; what: string } | undefined;
    for (const e of events) {
      const d = e.t - at;
      if (!best || Math.abs(d) < Math.abs(best.d)) best = { d, what: e.what };
    }
    return {
      atMs: Math.round(at - f.startedAtEpoch),
      datagrams: b - a + 1,
      ...(best ? { nearest: `${best.what} ${best.d >= 0 ? '+' : ''}${Math.round(best.d)} ms` } : {}),
    };
  });
}

/** /proc/net/xfrm_stat of a namespace as name -> count. */
function xfrmStat(ns: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const l of shTry(`ip netns exec ${ns} cat /proc/net/xfrm_stat`).out.split('\n')) {
    const m = /^(\w+)\s+(\d+)/.exec(l);
    if (m) out[m[1]!] = Number(m[2]);
  }
  return out;
}

function statDelta(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  const d: Record<string, number> = {};
  for (const [k, v] of Object.entries(b)) if (v !== (a[k] ?? 0)) d[k] = v - (a[k] ?? 0);
  return d;
}

/** `ip xfrm monitor` in a namespace; lines with arrival times (Date.now()), key material dropped. */
function monitor(lab: Lab, ns: string, tag: string): { lines: { t: number; l: string }[] } {
  const res = { lines: [] as { t: number; l: string }[] };
  const p = spawn('ip', ['-n', ns, 'xfrm', 'monitor'], { stdio: ['ignore', 'pipe', 'ignore'] });
  lab.track(p);
  let buf = '';
  p.stdout.on('data', (d: Buffer) => {
    buf += d.toString();
    let i = buf.indexOf('\n');
    while (i >= 0) {
      const l = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (
        /^(Deleted |Updated |Expired |acquire |src |\S+ policy)|^\s+(proto|dir)|^(Flushed)/.test(l) &&
        !/enc |auth|aead/.test(l)
      )
        res.lines.push({ t: Date.now(), l: `${tag} ${l.trim()}` });
      i = buf.indexOf('\n');
    }
  });
  return res;
}

export interface KillResult {
  flow?: FlowStats;
  killAtMs?: number;
  restartAtMs?: number;
  /** From the restart until status shows t-c up again with a new CHILD SA (from the flow's start). */
  upAgainAtMs?: number;
  oldSpis?: { in: string; out: string };
  newSpis?: { in: string; out: string };
  /** ESP SAs with the old SPIs still in gateway 1's kernel 5 s after the new CHILD SA came up. */
  oldSpisLeft?: string[];
  /** ESP SAs in gateway 1's kernel per reqid after the restart settled (duplicates would show as > 2). */
  kernelSasAfter?: number;
  adoptedLog: string[];
  gapDetails?: { atMs: number; datagrams: number; nearest?: string }[];
  /** t-c's life-cycle events of both agents, in ms from the flow's start. */
  events?: string[];
  /** Both gateways' SAs (SPI, reqid, counters) before the flow and 3 s into it, and datagrams received by then. */
  diag?: { before: string[]; at3s: string[]; receivedAt3s: number };
  /** Non-zero /proc/net/xfrm_stat counters that changed during the flow, per gateway (where a gap's packets died). */
  xfrmStat?: Record<string, Record<string, number>>;
  /** Datagrams gateway 2 received on the new CHILD SA by the end of the flow. */
  newSaPackets?: number;
  /** `ip xfrm monitor` of both gateways while the flow ran, in ms from the flow's start (keys stripped). */
  monitor?: string[];
  errors: string[];
}

export interface RekeyResult {
  error?: string;
  /** A 15 s flow through a tunnel without rekeys (t-c): the test bed's own loss. */
  baseline?: FlowStats;
  baselineError?: string;
  upMs?: number;
  rekey: RekeyFlowResult[];
  kill?: KillResult;
  notable: string[];
  totalMs: number;
}

function countSince(
  a: AgentProc,
  event: string,
  tunnel: string,
  since: number,
  pred: (l: Record<string, unknown>) => boolean = () => true,
) {
  return a.logs.filter(
    (l) =>
      l.event === event &&
      l.tunnel === `default/${tunnel}` &&
      (l.time ?? 0) >= since &&
      pred(l as Record<string, unknown>),
  ).length;
}

async function main(): Promise<RekeyResult> {
  const t0 = performance.now();
  const res: RekeyResult = { rekey: [], notable: [], totalMs: 0 };
  const lab = new Lab('rk');
  try {
    const ul = lab.ns('ul');
    sh(`ip -n ${ul} link add br0 type bridge && ip -n ${ul} link set br0 up`);
    const sites: Site[] = [1, 2].map((n) => {
      const s = lab.site(n, `192.0.2.${n}`, 24, ul, `p${n}`);
      sh(`ip -n ${ul} link set p${n} master br0`);
      // Extra subnets of this site (t-b, t-c): on the same inner link.
      for (const x of [10, 20]) {
        sh(
          `ip -n ${s.gw} addr add 198.18.${x + n}.1/24 dev in${n} && ip -n ${s.host} addr add 198.18.${x + n}.2/24 dev eth0`,
        );
      }
      return s;
    });
    const [s1, s2] = sites as [Site, Site];
    for (const x of [0, 10, 20]) {
      sh(`ip -n ${s1.gw} route add 198.18.${x + 2}.0/24 via ${s2.underlay}`);
      sh(`ip -n ${s2.gw} route add 198.18.${x + 1}.0/24 via ${s1.underlay}`);
    }
    const gw1 = lab.agent('gw1', s1.gw, { addresses: [s1.underlay] });
    const gw2 = lab.agent('gw2', s2.gw, { addresses: [s2.underlay] });
    const common = { ike: ['aes128gcm16-prfsha256-x25519'], esp: ['aes128gcm16'] };
    const tun = (
      a: AgentProc,
      me: Site,
      peer: Site,
      name: string,
      x: number,
      o: { start: boolean; esp: string; ike: string; dpd?: string },
    ) =>
      a.addTunnel(
        name,
        {
          localAddress: me.underlay,
          remoteAddress: peer.underlay,
          localSubnets: [`198.18.${x + me.n}.0/24`],
          remoteSubnets: [`198.18.${x + peer.n}.0/24`],
          // Identities per tunnel: the responder picks a tunnel by identities only (see the report on
          // same-identity tunnels), so each tunnel gets its own pair.
          localId: `${a.name}-${name}.example`,
          remoteId: `${a === gw1 ? 'gw2' : 'gw1'}-${name}.example`,
          startAction: o.start ? 'start' : 'none',
          espLifetime: o.esp,
          ikeLifetime: o.ike,
          dpd: o.dpd ?? '10s',
          ...common,
        },
        PSK,
      );
    tun(gw1, s1, s2, 't-a', 0, { start: true, esp: '10s', ike: '25s' });
    tun(gw2, s2, s1, 't-a', 0, { start: false, esp: '1h', ike: '4h' });
    // gw1 establishes every tunnel (gw2 only responds), but t-b's lifetimes are short on gw2: gw2 initiates its rekeys.
    tun(gw1, s1, s2, 't-b', 10, { start: true, esp: '1h', ike: '4h' });
    tun(gw2, s2, s1, 't-b', 10, { start: false, esp: '10s', ike: '30s' });
    // DPD 30 s (the default) on t-c: the restarted agent must be back before the peer's liveness check gives up
    // (UML takes up to 10 s to start an agent under load); a peer that declares us dead deletes its SAs.
    tun(gw1, s1, s2, 't-c', 20, { start: true, esp: '1h', ike: '4h', dpd: '30s' });
    tun(gw2, s2, s1, 't-c', 20, { start: false, esp: '1h', ike: '4h', dpd: '30s' });
    const tUp = performance.now();
    gw2.start();
    await gw2.waitReady(3);
    gw1.start();
    for (const a of [gw1, gw2]) for (const t of ['t-a', 't-b', 't-c']) await a.waitUp(t, 60_000);
    res.upMs = performance.now() - tUp;

    // ---- baseline: the same flow through t-c, which does not rekey: loss here is the test bed's, not the agent's
    try {
      const count = 15 * RATE;
      const flow = new Flow(lab, {
        fromNs: s1.host,
        toNs: s2.host,
        from: '198.18.21.2',
        to: '198.18.22.2',
        port: 9030,
        rate: RATE,
        count,
      });
      await flow.start();
      res.baseline = await flow.result(count + 30_000);
    } catch (e) {
      res.baselineError = e instanceof Error ? e.message : String(e);
    }

    // ---- scenario 3: rekeys under load, gw1-initiated (t-a), then gw2-initiated (t-b)
    for (const [name, x] of [
      ['t-a', 0],
      ['t-b', 10],
    ] as const) {
      const r: RekeyFlowResult = {
        tunnel: name,
        childRekeys: { gw1: 0, gw2: 0 },
        ikeRekeys: { gw1: 0, gw2: 0 },
        spisSeen: 0,
        gapDetails: [],
        errors: [],
      };
      res.rekey.push(r);
      try {
        const count = 36 * RATE;
        const flow = new Flow(lab, {
          fromNs: s1.host,
          toNs: s2.host,
          from: `198.18.${x + 1}.2`,
          to: `198.18.${x + 2}.2`,
          port: 9000 + x,
          rate: RATE,
          count,
        });
        const since = Date.now();
        await flow.start();
        const spis = new Set<string>();
        const sampler = setInterval(() => {
          gw2.tunnel(name).then(
            (t) => {
              for (const c of t?.childSAs ?? []) if (c.state === 'installed') spis.add(c.spiIn);
            },
            () => {},
          );
        }, 500);
        try {
          r.flow = await flow.result(count + 30_000);
        } finally {
          clearInterval(sampler);
        }
        r.spisSeen = spis.size;
        r.gapDetails = gapDetails(r.flow, [gw1, gw2], name, RATE);
        const rekeyed = (l: Record<string, unknown>) => l.rekey === true;
        r.childRekeys = {
          gw1: countSince(gw1, 'child-installed', name, since, rekeyed),
          gw2: countSince(gw2, 'child-installed', name, since, rekeyed),
        };
        r.ikeRekeys = {
          gw1: countSince(gw1, 'ike-rekeyed', name, since),
          gw2: countSince(gw2, 'ike-rekeyed', name, since),
        };
      } catch (e) {
        r.errors.push(e instanceof Error ? e.message : String(e));
      }
    }

    // ---- scenario 4: SIGKILL and restart of gw1's agent under the same flow through t-c
    const k: KillResult = { adoptedLog: [], errors: [] };
    res.kill = k;
    try {
      const before = await gw1.waitUp('t-c', 20_000);
      const old = before.childSAs.find((c) => c.state === 'installed')!;
      k.oldSpis = { in: old.spiIn, out: old.spiOut };
      const count = 40 * RATE;
      const flow = new Flow(lab, {
        fromNs: s1.host,
        toNs: s2.host,
        from: '198.18.21.2',
        to: '198.18.22.2',
        port: 9020,
        rate: RATE,
        count,
      });
      const diagBefore = [...xfrmSummary(s1.gw).map((l) => `gw1 ${l}`), ...xfrmSummary(s2.gw).map((l) => `gw2 ${l}`)];
      const statBefore = { gw1: xfrmStat(s1.gw), gw2: xfrmStat(s2.gw) };
      const mons = [monitor(lab, s1.gw, 'gw1'), monitor(lab, s2.gw, 'gw2')];
      await flow.start();
      const fStart = performance.now();
      await sleep(3000);
      k.diag = {
        before: diagBefore,
        at3s: [...xfrmSummary(s1.gw).map((l) => `gw1 ${l}`), ...xfrmSummary(s2.gw).map((l) => `gw2 ${l}`)],
        receivedAt3s: flow.progress(),
      };
      await sleep(3000);
      await gw1.stop('SIGKILL');
      k.killAtMs = performance.now() - fStart;
      await sleep(1000);
      gw1.start();
      k.restartAtMs = performance.now() - fStart;
      const up = await waitFor(
        'gw1 t-c up again with a new CHILD SA',
        async () => {
          const t = await gw1.tunnel('t-c');
          const c = t?.childSAs.find((x) => x.state === 'installed' && x.spiIn !== old.spiIn);
          return t?.ikeSA.state === 'Established' && c ? c : undefined;
        },
        60_000,
        100,
      );
      k.upAgainAtMs = performance.now() - fStart;
      k.newSpis = { in: up.spiIn, out: up.spiOut };
      k.flow = await flow.result(count + 30_000);
      k.gapDetails = gapDetails(k.flow, [gw1, gw2], 't-c', RATE);
      // Packets the new CHILD SA carried: gateway 2's inbound SA with gateway 1's new outbound SPI.
      const newIn = xfrmSummary(s2.gw).find((l) => l.includes(`spi 0x${up.spiOut} `));
      k.newSaPackets = Number(/ (\d+)p$/.exec(newIn ?? '')?.[1] ?? -1);
      k.xfrmStat = { gw1: statDelta(statBefore.gw1, xfrmStat(s1.gw)), gw2: statDelta(statBefore.gw2, xfrmStat(s2.gw)) };
      const t0 = k.flow.startedAtEpoch;
      const since = (k.killAtMs ?? 0) - 500;
      k.monitor = mons
        .flatMap((m) => m.lines)
        .sort((a, b) => a.t - b.t)
        .map((x) => ({ at: x.t - t0, l: x.l }))
        .filter((x) => x.at >= since)
        .map((x) => `${x.at} ms ${x.l}`)
        .slice(0, 300);
      k.events = [gw1, gw2].flatMap((a) =>
        a.logs
          .filter((l) => l.tunnel === 'default/t-c' || /adopt|stale|agent-started/.test(String(l.event)))
          .map(
            (l) =>
              `${Math.round((l.time ?? 0) - (k.flow?.startedAtEpoch ?? 0))} ms ${a.name}#${l.run} ${l.event}${l.spiIn ? ` in ${l.spiIn} out ${l.spiOut}` : ''}`,
          ),
      );
      await sleep(Math.max(0, 5000 - (performance.now() - fStart - k.upAgainAtMs)));
      const state = shTry(`ip -n ${s1.gw} xfrm state`).out;
      k.oldSpisLeft = [old.spiIn, old.spiOut].filter((spi) => state.includes(`spi 0x${spi}`));
      const reqids = [...state.matchAll(/reqid (\d+)/g)].map((m) => m[1]);
      const perReqid = new Map<string, number>();
      for (const r of reqids) perReqid.set(r!, (perReqid.get(r!) ?? 0) + 1);
      // t-a and t-b may be mid-rekey (briefly 4 SAs); t-c has no rekey going on, so its reqid must have exactly 2.
      const tcReqids = [...state.matchAll(/src (\S+) dst (\S+)\n\s+proto esp spi 0x(\w+) reqid (\d+)/g)]
        .filter((m) => m[3] === up.spiIn || m[3] === up.spiOut)
        .map((m) => m[4]!);
      k.kernelSasAfter = tcReqids[0] ? perReqid.get(tcReqids[0]) : undefined;
      k.adoptedLog = gw1.raw.filter((l) => /adopt|stale|kernel-gc/.test(l));
    } catch (e) {
      k.errors.push(e instanceof Error ? e.message : String(e));
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
