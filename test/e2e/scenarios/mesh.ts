/**
 * Runs INSIDE User-Mode Linux (see ../mesh.test.ts): the whole product, from `kubectl apply` to kernel ESP.
 *
 *   cluster A: etcd + kube-apiserver, operator (--site a), gateway nodes a1 (192.0.2.11) and a2 (192.0.2.12), each a
 *              network namespace running the agent in Kubernetes mode with the chart's agent ServiceAccount (a token
 *              bound to a pod on that node). Site A's address 192.0.2.10 is floating: the elected node holds it.
 *              Site LAN 198.18.1.0/24 (host 198.18.1.2) behind both nodes (inner 198.18.1.11 / .12).
 *   cluster B: its own etcd + kube-apiserver and operator (--site b), gateway node b1 (192.0.2.21), LAN 198.18.2.0/24.
 *   site C:    a plain strongSwan gateway (charon, kernel-netlink) at 192.0.2.31, LAN 198.18.3.0/24, configured by
 *              `ipsec-mesh swanctl` from the same IPsecMesh manifest.
 *
 * The API servers run in UML's root namespace and listen on the management bridge 203.0.113.1, which every gateway
 * namespace reaches through its own veth (203.0.113.1x); the underlay (192.0.2.0/24) is another bridge. The mesh
 * manifest and the PSK Secret go in with the real `kubectl apply`, the same file to both clusters.
 *
 * Site A's LAN host routes the remote subnets through the elected gateway's inner address: the test reads the
 * tunnel status and sets that route, standing in for the cluster's own routing (a route agent or the LAN router).
 *
 * Prints `RESULT <json>`.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { Cluster, NS } from '../../envtest/cluster.js';
import {
  AgentProc,
  Capture,
  diagnoseCommand,
  Flow,
  type FlowStats,
  Lab,
  REPO,
  sh,
  shTry,
  sleep,
  tsxLoader,
  waitFor,
  xfrmSummary,
} from '../../uml/support/agents.js';
import { runScenario, toWire } from '../../uml/support/wire.js';

const PSK = 'end-to-end mesh pre-shared key 0123456789';
const MESH_NS = 'mesh';
const GW_LABEL = { 'ipsecmesh.io/gateway': 'true' };

export interface TunnelRow {
  cluster: string;
  name: string;
  ready?: string;
  reason?: string;
  gateway?: string;
  spiIn?: string;
  spiOut?: string;
  bytesIn?: number;
  bytesOut?: number;
}

export interface E2eResult {
  error?: string;
  /** The last stage reached (in partial results). */
  stage?: string;
  bootMs?: Record<string, number>;
  /** From both `kubectl apply`s to every tunnel Ready in both clusters. */
  readyMs?: number;
  /** `kubectl get ipsectunnels -o wide` of each cluster. */
  kubectlGet?: Record<string, string>;
  /** Ready/gateway/SPIs/counters per tunnel, read twice (counters must rise between the reads). */
  tunnels1?: TunnelRow[];
  tunnels2?: TunnelRow[];
  /** Ping between every ordered pair of site hosts. */
  pairs?: { from: string; to: string; ok: boolean }[];
  /** Underlay captures: ESP packets, and packets showing a site address (plaintext), per gateway. */
  underlay?: Record<string, { esp: number; plaintext: number; lines: number }>;
  /** Did the PSK (or its hex/base64) appear in any status, event or node config of either cluster? */
  keyLeaks?: string[];
  events?: Record<string, string[]>;
  gatewayA?: string;
  failover?: {
    /** GatewayFailover events before the kill (a live gateway must never lose its tunnels). */
    failoversBefore?: number;
    from?: string;
    to?: string;
    /** ms from the node's death to the first datagram of the B->A flow through the new gateway. */
    recoveryMs?: number;
    flow?: FlowStats;
    gap?: [number, number][];
    pingAfter?: boolean;
    events?: string[];
  };
  change?: { flow?: FlowStats; newSubnetReached?: boolean; newSpis?: number };
  /**
   * `ipsec-mesh diagnose` in Kubernetes mode from the admin's side (the root namespace, next to the API servers):
   * corp-b of cluster A against cluster B (--peer-kubeconfig), corp-c against the side the IPsecMesh gives site C.
   */
  diagnose?: Record<string, { code: number; out: string }>;
  /** Did the PSK appear in diagnose's output? */
  diagnoseShowsKey?: boolean;
  deleted?: Record<string, { sas: number; tunnelPolicies: number }>;
  charonAfterDelete?: number;
  logs?: string[];
  /** Kernel view of the gateways when something failed: routes, policies, SAs (no keys), XFRM drop counters. */
  diag?: Record<string, string[]>;
}

function gatewayDiag(gws: Record<string, string>): string[] {
  const out: string[] = [];
  for (const [name, ns] of Object.entries(gws)) {
    out.push(`== ${name} routes`, ...shTry(`ip -n ${ns} route`).out.split('\n'));
    out.push(
      `== ${name} policies`,
      ...shTry(`ip -n ${ns} xfrm policy`)
        .out.split('\n')
        .filter((l) => !/^\s*$/.test(l)),
    );
    out.push(`== ${name} SAs`, ...xfrmSummary(ns));
    out.push(
      `== ${name} xfrm_stat`,
      ...shTry(`ip netns exec ${ns} cat /proc/net/xfrm_stat`)
        .out.split('\n')
        .filter((l) => /\s[1-9]/.test(l)),
    );
    out.push(`== ${name} addresses`, ...shTry(`ip -n ${ns} -br addr`).out.split('\n'));
  }
  return out;
}

function mgmt(lab: Lab, ns: string, n: number): void {
  sh(`ip link add mg${n} type veth peer name mg netns ${ns}
ip link set mg${n} master mg0 && ip link set mg${n} up
ip -n ${ns} link set mg up && ip -n ${ns} addr add 203.0.113.${10 + n}/24 dev mg`);
  void lab;
}

/** A gateway namespace with an underlay leg on the underlay bridge. */
function gateway(lab: Lab, name: string, ul: string, address: string, n: number): string {
  const gw = lab.ns(name);
  sh(`ip link add ul${n} netns ${gw} type veth peer name p${n} netns ${ul}
ip -n ${ul} link set p${n} master br0 && ip -n ${ul} link set p${n} up
ip -n ${gw} link set ul${n} up && ip -n ${gw} addr add ${address}/24 dev ul${n}
ip netns exec ${gw} sysctl -qw net.ipv4.ip_forward=1`);
  mgmt(lab, gw, n);
  return gw;
}

/** Site LAN: a bridge namespace, the site host, and the inner legs of the given gateways. */
function lan(lab: Lab, site: string, third: number, gws: { ns: string; inner: string; n: number }[]): string {
  const br = lab.ns(`lan${site}`);
  const host = lab.ns(`h${site}`);
  sh(`ip -n ${br} link add br0 type bridge && ip -n ${br} link set br0 up
ip link add eth0 netns ${host} type veth peer name host netns ${br}
ip -n ${br} link set dev host master br0 && ip -n ${br} link set dev host up
ip -n ${host} link set eth0 up && ip -n ${host} addr add 198.18.${third}.2/24 dev eth0`);
  for (const g of gws) {
    sh(`ip link add in${g.n} netns ${g.ns} type veth peer name i${g.n} netns ${br}
ip -n ${br} link set i${g.n} master br0 && ip -n ${br} link set i${g.n} up
ip -n ${g.ns} link set in${g.n} up && ip -n ${g.ns} addr add ${g.inner}/24 dev in${g.n}`);
  }
  return host;
}

class KubeAgent extends AgentProc {}

const started = performance.now();
let current: E2eResult | undefined;
/**
 * Progress on stderr (the harness keeps it): where a slow or stuck run spent its time; and the results so far on
 * stdout, so that a run cut short still shows what it measured.
 */
function stage(what: string): void {
  process.stderr.write(`E2E ${Math.round(performance.now() - started)} ms ${what}\n`);
  if (current) process.stdout.write(`PARTIAL ${toWire({ ...current, stage: what })}\n`);
}

async function main(): Promise<E2eResult> {
  const res: E2eResult = {};
  current = res;
  const lab = new Lab('e2e');
  const clusters: Cluster[] = [];
  try {
    stage('networks');
    // ---- networks
    sh('ip link add mg0 type bridge && ip link set mg0 up && ip addr add 203.0.113.1/24 dev mg0');
    const ul = lab.ns('ul');
    sh(`ip -n ${ul} link add br0 type bridge && ip -n ${ul} link set br0 up`);
    const a1 = gateway(lab, 'a1', ul, '192.0.2.11', 1);
    const a2 = gateway(lab, 'a2', ul, '192.0.2.12', 2);
    const b1 = gateway(lab, 'b1', ul, '192.0.2.21', 3);
    const c1 = gateway(lab, 'c1', ul, '192.0.2.31', 4);
    const hA = lan(lab, 'A', 1, [
      { ns: a1, inner: '198.18.1.11', n: 1 },
      { ns: a2, inner: '198.18.1.12', n: 2 },
    ]);
    const hB = lan(lab, 'B', 2, [{ ns: b1, inner: '198.18.2.1', n: 3 }]);
    const hC = lan(lab, 'C', 3, [{ ns: c1, inner: '198.18.3.1', n: 4 }]);
    sh(`ip -n ${hB} route add default via 198.18.2.1 && ip -n ${hC} route add default via 198.18.3.1`);
    // Underlay routes: none needed (one L2 segment); the remote site subnets are routed by the XFRM policies'
    // lookups, which need a route to exist: point them at the underlay.
    for (const [gw, dev] of [
      [a1, 'ul1'],
      [a2, 'ul2'],
      [b1, 'ul3'],
      [c1, 'ul4'],
    ] as const) {
      for (const s of [1, 2, 3]) shTry(`ip -n ${gw} route add 198.18.${s}.0/24 dev ${dev}`);
    }

    stage('mesh manifest, charon');
    // ---- the mesh: one manifest, applied with kubectl to both clusters
    const mesh = {
      apiVersion: 'ipsecmesh.io/v1alpha1',
      kind: 'IPsecMesh',
      metadata: { name: 'corp', namespace: MESH_NS },
      spec: {
        sites: [
          {
            name: 'a',
            gateway: { address: '192.0.2.10', floating: true, nodeSelector: GW_LABEL },
            subnets: ['198.18.1.0/24'],
            id: 'site-a.example',
          },
          {
            name: 'b',
            gateway: { address: '192.0.2.21', nodeSelector: GW_LABEL },
            subnets: ['198.18.2.0/24'],
            id: 'site-b.example',
          },
          { name: 'c', gateway: { address: '192.0.2.31' }, subnets: ['198.18.3.0/24'], id: 'site-c.example' },
        ],
        auth: { psk: { secretRef: { name: 'corp-psk' } } },
        ike: {
          proposals: ['aes128gcm16-prfsha256-x25519'],
          lifetime: '4h',
          dpd: { interval: '2s', action: 'restart' },
        },
        esp: { proposals: ['aes128gcm16'], lifetime: '1h' },
      },
    };
    const secret = {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'corp-psk', namespace: MESH_NS },
      stringData: { psk: PSK },
    };
    const manifest = join(lab.base, 'mesh.yaml');
    const writeManifest = (m: typeof mesh) =>
      writeFileSync(
        manifest,
        [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: MESH_NS } }, secret, m]
          .map((o) => stringify(o))
          .join('---\n'),
      );
    writeManifest(mesh);

    // Site C from the same manifest.
    const charon = lab.charon('c', c1, 'ul4');
    await charon.start();
    const conf = join(lab.base, 'swanctl.conf');
    sh(
      `${process.execPath} --import ${tsxLoader()} ${join(REPO, 'src/cli/main.ts')} swanctl --mesh ${manifest} --site c --secret ${manifest} --out ${conf}`,
    );
    charon.load(shTry(`cat ${conf}`).out);

    stage('clusters');
    // ---- clusters
    const t0 = performance.now();
    const [ca, cb] = await Promise.all([
      Cluster.start({ address: '203.0.113.1' }),
      Cluster.start({ address: '203.0.113.1' }),
    ]);
    clusters.push(ca!, cb!);
    res.bootMs = { clusters: performance.now() - t0 };
    await ca!.addNode('a1', GW_LABEL, '192.0.2.11');
    await ca!.addNode('a2', GW_LABEL, '192.0.2.12');
    await cb!.addNode('b1', GW_LABEL, '192.0.2.21');
    // Heartbeats every 500 ms, a node is dead after 5 s without one: under a loaded single-CPU UML a shorter timeout
    // declared live nodes dead (tunnels moved back and forth).
    const opArgs = ['--heartbeat-timeout', '5s', '--resync', '1m'];
    await ca!.startOperator(['--site', 'a', ...opArgs]);
    await cb!.startOperator(['--site', 'b', ...opArgs]);

    stage('agents');
    // ---- agents in Kubernetes mode, one per gateway node
    const agents: Record<string, KubeAgent> = {};
    for (const [cluster, node, ns, address] of [
      [ca!, 'a1', a1, '192.0.2.11'],
      [ca!, 'a2', a2, '192.0.2.12'],
      [cb!, 'b1', b1, '192.0.2.21'],
    ] as const) {
      const token = (await cluster.agent(node)).token;
      // The agent reaches the API server over the management bridge.
      const kc = cluster.cp.writeKubeconfig(`agent-${node}`, token);
      const a = new KubeAgent(lab, node, ns, {});
      a.args = [
        '--kubernetes',
        '--node-name',
        node,
        '--address',
        address,
        '--secret-namespace',
        NS,
        '--kubeconfig',
        kc,
        '--dataplane',
        'netlink',
        '--heartbeat',
        '500ms',
        '--state-dir',
        a.stateDir,
        '--log-level',
        'debug',
      ];
      lab.agents.push(a);
      agents[node] = a;
      a.start();
    }

    stage('agents ready?');
    for (const a of Object.values(agents)) await a.waitReady(0, 90_000);
    stage('apply');
    const tApply = performance.now();
    for (const c of clusters) c.cp.kubectl(['apply', '-f', manifest]);
    const get = (c: Cluster) =>
      JSON.parse(c.cp.kubectl(['get', 'ipsectunnels', '-n', MESH_NS, '-o', 'json'])) as {
        items: { metadata: { name: string }; status?: Record<string, any> }[];
      };
    const rows = (): TunnelRow[] =>
      clusters.flatMap((c, i) =>
        get(c).items.map((t) => {
          const ready = (t.status?.conditions ?? []).find((x: { type: string }) => x.type === 'Ready');
          const child = t.status?.childSAs?.[0];
          return {
            cluster: i === 0 ? 'A' : 'B',
            name: t.metadata.name,
            ready: ready?.status,
            reason: ready?.reason,
            gateway: t.status?.gateway,
            spiIn: child?.spis?.in,
            spiOut: child?.spis?.out,
            bytesIn: Number(child?.bytesIn ?? 0),
            bytesOut: Number(child?.bytesOut ?? 0),
          };
        }),
      );
    await waitFor(
      () => `every tunnel Ready: ${JSON.stringify(rows())}`,
      () => {
        const r = rows();
        return r.length === 4 && r.every((x) => x.ready === 'True') ? r : undefined;
      },
      120_000,
      500,
    );
    res.readyMs = performance.now() - tApply;
    res.gatewayA = rows().find((r) => r.cluster === 'A')?.gateway;
    const active = res.gatewayA === 'a2' ? { ns: a2, inner: '198.18.1.12' } : { ns: a1, inner: '198.18.1.11' };
    const standby =
      res.gatewayA === 'a2'
        ? { ns: a1, inner: '198.18.1.11', node: 'a1' }
        : { ns: a2, inner: '198.18.1.12', node: 'a2' };
    sh(`ip -n ${hA} route replace default via ${active.inner}`);

    stage('traffic');
    // ---- traffic between every pair, only ESP on the underlay
    const caps = [
      ['a1', a1, 'ul1'],
      ['a2', a2, 'ul2'],
      ['b1', b1, 'ul3'],
      ['c1', c1, 'ul4'],
    ].map(([name, ns, dev]) => ({ name: name!, cap: new Capture(lab, ns!, dev!, 'out') }));
    await Promise.all(caps.map((c) => c.cap.start()));
    const hosts = { A: [hA, '198.18.1.2'], B: [hB, '198.18.2.2'], C: [hC, '198.18.3.2'] } as const;
    res.pairs = [];
    for (const [f, [fns]] of Object.entries(hosts)) {
      for (const [t, [, taddr]] of Object.entries(hosts)) {
        if (f === t) continue;
        const ok = shTry(`ip netns exec ${fns} ping -n -c 3 -i 0.2 -W 3 ${taddr}`).code === 0;
        res.pairs.push({ from: f, to: t, ok });
      }
    }
    if (res.pairs.some((p) => !p.ok)) res.diag = { ...res.diag, afterPings: gatewayDiag({ a1, a2, b1, c1 }) };
    await Promise.all(caps.map((c) => c.cap.stop()));
    res.underlay = Object.fromEntries(
      caps.map(({ name, cap }) => {
        const lines = cap.text();
        return [
          name,
          {
            lines: lines.length,
            esp: lines.filter((l) => /ESP\(spi=/.test(l)).length,
            plaintext: lines.filter((l) => /198\.18\./.test(l)).length,
          },
        ];
      }),
    );
    res.tunnels1 = rows();
    await sleep(3000); // the agents report counters with their heartbeat
    shTry(`ip netns exec ${hA} ping -n -c 5 -i 0.2 -W 3 198.18.2.2`);
    shTry(`ip netns exec ${hB} ping -n -c 5 -i 0.2 -W 3 198.18.1.2`);
    await sleep(3000);
    res.tunnels2 = rows();
    res.kubectlGet = Object.fromEntries(
      clusters.map((c, i) => [i === 0 ? 'A' : 'B', c.cp.kubectl(['get', 'ipsectunnels', '-n', MESH_NS, '-o', 'wide'])]),
    );

    stage('diagnose');
    {
      const [kA, kB] = clusters.map((c, i) => c.cp.writeKubeconfig(`admin-${i === 0 ? 'a' : 'b'}`));
      const cli = diagnoseCommand();
      res.diagnose = {
        'corp-b': shTry(`${cli} --kubeconfig ${kA} --tunnel ${MESH_NS}/corp-b --peer-kubeconfig ${kB}`),
        'corp-c': shTry(`${cli} --kubeconfig ${kA} --tunnel ${MESH_NS}/corp-c`),
      };
      res.diagnoseShowsKey = Object.values(res.diagnose).some((d) => d.out.includes(PSK));
    }

    stage('failover');
    // ---- failover: the active node of cluster A dies (agent killed, links down); a B->A flow measures the gap
    const fo: NonNullable<E2eResult['failover']> = { from: res.gatewayA, to: standby.node };
    res.failover = fo;
    const rate = 1000;
    const count = 40 * rate;
    const flow = new Flow(lab, {
      fromNs: hB,
      toNs: hA,
      from: '198.18.2.2',
      to: '198.18.1.2',
      port: 9100,
      rate,
      count,
    });
    await flow.start();
    await sleep(4000);
    fo.failoversBefore = clusters[0]!.cp
      .kubectl(['get', 'events', '-n', MESH_NS, '-o', 'custom-columns=REASON:.reason', '--no-headers'])
      .split('\n')
      .filter((l) => l.trim() === 'GatewayFailover').length;
    const dying = res.gatewayA === 'a2' ? agents.a2! : agents.a1!;
    // The node dies: its links go down (its kernel state is gone with it for the rest of the world), then its agent.
    const killAt = Date.now();
    sh(`ip -n ${active.ns} link set ${res.gatewayA === 'a2' ? 'ul2' : 'ul1'} down`);
    sh(`ip -n ${active.ns} link set ${res.gatewayA === 'a2' ? 'in2' : 'in1'} down`);
    await dying.stop('SIGKILL');
    fo.flow = await flow.result(90_000);
    fo.gap = fo.flow.gaps;
    const first = fo.flow.gaps[0];
    if (!first) fo.recoveryMs = 0;
    else if (first[1] < count - 1) {
      // The datagram after the gap left the sender (last + 1) / rate after the flow started.
      fo.recoveryMs = Math.round(fo.flow.startedAtEpoch + ((first[1] + 1) * 1000) / rate - killAt);
    } // else: the flow never came back (recoveryMs stays undefined)
    sh(`ip -n ${hA} route replace default via ${standby.inner}`);
    fo.pingAfter = shTry(`ip netns exec ${hA} ping -n -c 3 -i 0.2 -W 3 198.18.2.2`).code === 0;
    fo.events = clusters[0]!.cp
      .kubectl([
        'get',
        'events',
        '-n',
        MESH_NS,
        '--sort-by=.lastTimestamp',
        '-o',
        'custom-columns=REASON:.reason,MESSAGE:.message',
        '--no-headers',
      ])
      .split('\n')
      .filter(Boolean);

    stage('change');
    // ---- change: B gets a second subnet; a flow A->B runs meanwhile
    sh(`ip -n ${b1} addr add 198.18.22.1/24 dev in3 && ip -n ${hB} addr add 198.18.22.2/24 dev eth0`);
    for (const gw of [a1, a2, c1])
      shTry(`ip -n ${gw} route add 198.18.22.0/24 dev ${gw === c1 ? 'ul4' : gw === a1 ? 'ul1' : 'ul2'}`);
    const changed = structuredClone(mesh);
    changed.spec.sites[1]!.subnets = ['198.18.2.0/24', '198.18.22.0/24'];
    writeManifest(changed);
    const chFlow = new Flow(lab, {
      fromNs: hA,
      toNs: hB,
      from: '198.18.1.2',
      to: '198.18.2.2',
      port: 9200,
      rate,
      count: 15 * rate,
    });
    await chFlow.start();
    await sleep(3000);
    for (const c of clusters) c.cp.kubectl(['apply', '-f', manifest]);
    const ch: NonNullable<E2eResult['change']> = {};
    res.change = ch;
    ch.newSubnetReached = await waitFor(
      () => "A reaches B's new subnet",
      () => (shTry(`ip netns exec ${hA} ping -n -c 1 -W 1 198.18.22.2`).code === 0 ? true : undefined),
      60_000,
      500,
    ).catch(() => false);
    ch.flow = await chFlow.result(60_000);

    stage('delete');
    // ---- delete: the manifest goes; no kernel state of ours stays on any gateway
    for (const c of clusters) c.cp.kubectl(['delete', '-f', manifest, '--wait=false']);
    res.deleted = {};
    for (const [name, ns] of [
      ['a1', a1],
      ['a2', a2],
      ['b1', b1],
    ] as const) {
      if (name === res.gatewayA) continue; // the dead node's kernel is gone with it
      const r = await waitFor(
        () =>
          `${name}: kernel state gone: ${shTry(`ip -n ${ns} xfrm state`).out} ${shTry(`ip -n ${ns} xfrm policy`).out}`,
        () => {
          const sas = (shTry(`ip -n ${ns} xfrm state`).out.match(/^src /gm) ?? []).length;
          const pol = (shTry(`ip -n ${ns} xfrm policy`).out.match(/^src 198\.18\./gm) ?? []).length;
          return sas === 0 && pol === 0 ? { sas, tunnelPolicies: pol } : undefined;
        },
        30_000,
        500,
      ).catch(() => ({
        sas: (shTry(`ip -n ${ns} xfrm state`).out.match(/^src /gm) ?? []).length,
        tunnelPolicies: (shTry(`ip -n ${ns} xfrm policy`).out.match(/^src 198\.18\./gm) ?? []).length,
      }));
      res.deleted[name] = r;
      if (r.sas + r.tunnelPolicies > 0)
        res.diag = { ...res.diag, [`afterDelete-${name}`]: gatewayDiag({ [name]: ns }) };
    }

    stage('key material');
    // ---- key material never in status, events or node configs
    const hexPsk = Buffer.from(PSK).toString('hex');
    const b64Psk = Buffer.from(PSK).toString('base64');
    res.keyLeaks = [];
    for (const [i, c] of clusters.entries()) {
      for (const what of ['ipsectunnels', 'ipsecnodeconfigs', 'ipsecmeshes', 'events']) {
        const text = c.cp.kubectl(['get', what, '-A', '-o', 'json']);
        for (const needle of [PSK, hexPsk, b64Psk]) if (text.includes(needle)) res.keyLeaks.push(`${i} ${what}`);
      }
    }
    res.events = Object.fromEntries(
      clusters.map((c, i) => [
        i === 0 ? 'A' : 'B',
        c.cp
          .kubectl([
            'get',
            'events',
            '-A',
            '--sort-by=.lastTimestamp',
            '-o',
            'custom-columns=REASON:.reason,OBJ:.involvedObject.name,MESSAGE:.message',
            '--no-headers',
          ])
          .split('\n')
          .filter(Boolean)
          .slice(-40),
      ]),
    );
  } catch (e) {
    res.error = e instanceof Error ? (e.stack ?? e.message) : String(e);
  } finally {
    res.logs = lab.agents.flatMap((a) => a.notable()).slice(-80);
    await lab.destroy();
    await Promise.all(clusters.map((c) => c.stop().catch(() => {})));
    shTry('ip link del mg0');
  }
  return res;
}

runScenario(main);
