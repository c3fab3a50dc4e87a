/**
 * Runs INSIDE User-Mode Linux for `bench agent` (see agent.ts): two gateways with our agents (the prebuilt bundle,
 * test/uml/support/bundle.ts) and N tunnels between them, tunnel i joining 198.18.100+i.0/24 (site 1) and 198.19.i.0/24
 * (site 2) with its own identities. Measures, from the moment both agents are spawned: agent process start (its
 * `agent-started` log line), every CHILD SA installed (status), and traffic flowing through every tunnel (a UDP echo
 * from 198.18.i.2 to 198.19.i.2 for every i). The gateways drop forwarded traffic that leaves the underlay without
 * an IPsec transform (iptables `-m policy --pol none`), so only tunnelled echoes count.
 * Argument: comma-separated tunnel counts (default 1,10,100). Prints one `BENCH {json}` line per result.
 */
import { Lab, probeMany, type Site, sh, shTry, udpEcho, waitFor } from '../uml/support/agents.js';

// Only inside User-Mode Linux (the harness sets IPSEC_MESH_IN_UML): on the host it would build namespaces there.
if (process.env.IPSEC_MESH_IN_UML !== '1') throw new Error('this bench part runs inside User-Mode Linux (agent.ts)');
const counts = (process.argv[2] ?? '1,10,100').split(',').map(Number);
if (counts.some((n) => !(n >= 1 && n <= 150)))
  throw new Error('tunnel counts must be 1..150 (site 1 uses 198.18.100-249.0/24)');
const PSK = 'bench agent pre-shared key 0123456789';

function report(name: string, value: number, unit: string, extra: Record<string, unknown> = {}): void {
  process.stdout.write(`BENCH ${JSON.stringify({ suite: 'agent', name, value, unit, ...extra })}\n`);
}

for (const m of ['ip_tables', 'iptable_filter', 'xt_policy']) shTry(`/sbin/modprobe -d /tmp/root ${m}`);

for (const n of counts) {
  const lab = new Lab(`b${n}`);
  try {
    const ul = lab.ns('ul');
    sh(`ip -n ${ul} link add br0 type bridge && ip -n ${ul} link set br0 up`);
    const sites: Site[] = [1, 2].map((k) => {
      const s = lab.site(k, `192.0.2.${k}`, 24, ul, `p${k}`);
      sh(`ip -n ${ul} link set p${k} master br0`);
      const cmds: string[] = [];
      for (let i = 0; i < n; i++) {
        const net = k === 1 ? `198.18.${100 + i}` : `198.19.${i}`;
        cmds.push(`addr add ${net}.1/24 dev in${k}`);
      }
      sh(`ip -n ${s.gw} -batch - <<'EOF'\n${cmds.join('\n')}\nEOF`);
      sh(
        `ip -n ${s.host} -batch - <<'EOF'\n${cmds.map((c) => c.replace('.1/24', '.2/24').replace(`dev in${k}`, 'dev eth0')).join('\n')}\nEOF`,
      );
      sh(`ip netns exec ${s.gw} iptables-legacy -A FORWARD -o ul${k} -m policy --dir out --pol none -j DROP`);
      return s;
    });
    const [s1, s2] = sites as [Site, Site];
    sh(
      `ip -n ${s1.gw} route add 198.19.0.0/16 via ${s2.underlay} && ip -n ${s2.gw} route add 198.18.0.0/16 via ${s1.underlay}`,
    );
    const a1 = lab.agent('gw1', s1.gw, { addresses: [s1.underlay], logLevel: 'info' });
    const a2 = lab.agent('gw2', s2.gw, { addresses: [s2.underlay], logLevel: 'info' });
    for (const [me, a] of [
      [1, a1],
      [2, a2],
    ] as const) {
      for (let i = 0; i < n; i++) {
        const [l, r] =
          me === 1 ? [`198.18.${100 + i}.0/24`, `198.19.${i}.0/24`] : [`198.19.${i}.0/24`, `198.18.${100 + i}.0/24`];
        a.addTunnel(
          `t${i}`,
          {
            localAddress: me === 1 ? s1.underlay : s2.underlay,
            remoteAddress: me === 1 ? s2.underlay : s1.underlay,
            localSubnets: [l],
            remoteSubnets: [r],
            localId: `gw${me}-t${i}.example`,
            remoteId: `gw${3 - me}-t${i}.example`,
            startAction: me === 1 ? 'start' : 'none',
          },
          PSK,
        );
      }
    }
    const pairs: [string, string][] = [];
    for (let i = 0; i < n; i++) pairs.push([`198.18.${100 + i}.2`, `198.19.${i}.2`]);
    await udpEcho(lab, s2.host, pairs.map(([, b]) => b).join(','), 7003);
    const t0 = Date.now();
    a2.start();
    a1.start();
    const probing = probeMany(lab, s1.host, pairs, 7003, 240_000);
    const started = await waitFor('gw1 agent-started', () => a1.logs.find((l) => l.event === 'agent-started'), 60_000);
    const installed = await waitFor(
      'all CHILD SAs installed on gw1',
      async () => {
        const st = await a1.status();
        return st.tunnels.length === n && st.tunnels.every((t) => t.childSAs.some((c) => c.state === 'installed'))
          ? Date.now()
          : undefined;
      },
      240_000,
      200,
    );
    const traffic = await probing;
    const extra = { tunnels: n };
    report(`${n} tunnels: agent process started`, (started.time ?? t0) - t0, 'ms', extra);
    report(`${n} tunnels: all CHILD SAs installed`, installed - t0, 'ms', extra);
    report(`${n} tunnels: traffic flowing through all`, traffic.all - t0, 'ms', extra);
    const sorted = [...traffic.up].sort((x, y) => x - y);
    report(`${n} tunnels: traffic through the first`, (sorted[0] ?? t0) - t0, 'ms', extra);
    report(`${n} tunnels: from agent start to all flowing`, traffic.all - (started.time ?? t0), 'ms', extra);
  } catch (e) {
    report(`${n} tunnels: FAILED`, -1, 'ms', {
      error: (e instanceof Error ? e.message : String(e)).slice(0, 600),
      logs: lab.agents.flatMap((a) => a.notable()).slice(-20),
    });
  } finally {
    await lab.destroy();
  }
}
process.exit(0);
