/**
 * Runs INSIDE User-Mode Linux (see ../agent-proof.test.ts). Proof of encryption: a policy removed by hand.
 *
 * Two sites on one bridge, our agent on both gateways (encryptionCheck.interval PROOF_INTERVAL). While host 1 pings
 * host 2 over UDP every 50 ms, the scenario deletes gateway 1's out policy for the subnet pair with
 * `ip xfrm policy delete` (from then on the pings leave gateway 1 in plaintext and gateway 2 drops them). It records
 * when gateway 1's status says Encrypted=False, when the policy is back in the kernel, when the first echo returns,
 * what left gateway 1 in plaintext meanwhile, and the metrics and `ipsec-mesh status` text. Prints `RESULT <json>`.
 */
import type { EncryptionView } from '../../../src/agent/encryption-check.js';
import { formatStatus } from '../../../src/agent/status.js';
import { Capture, Lab, Pinger, type Site, sh, shTry, sleep, udpEcho, waitFor } from '../support/agents.js';
import { runScenario } from '../support/wire.js';
import { PROOF_INTERVAL_MS } from './agent-mtu-params.js';

const PSK = 'uml proof pre-shared key 0123456789';

export interface ProofResult {
  error?: string;
  before?: EncryptionView;
  /** ms from the delete to: status False, policy back in the kernel, first echo of a ping sent after the delete. */
  falseAfterMs?: number;
  restoredAfterMs?: number;
  echoAfterMs?: number;
  trueAfterMs?: number;
  falseView?: EncryptionView;
  after?: EncryptionView;
  /** Was the out policy really gone right after the delete? */
  deletedConfirmed?: boolean;
  policyAfter?: string;
  /** Pings sent in the second before the delete that came back (the flow ran), and those lost after it. */
  echoesBefore?: number;
  lost?: number;
  /** Plaintext packets from host 1 that left gateway 1 on the underlay (the leak the check closes). */
  plaintextOnWire?: number;
  plaintextAfterRestore?: number;
  metrics?: string[];
  statusText?: string[];
  notable?: string[];
  totalMs: number;
}

async function main(): Promise<ProofResult> {
  const t0 = performance.now();
  const res: ProofResult = { totalMs: 0 };
  const lab = new Lab('proof');
  try {
    const ul = lab.ns('ul');
    sh(`ip -n ${ul} link add br0 type bridge && ip -n ${ul} link set br0 up`);
    const sites: Site[] = [];
    for (const n of [1, 2]) {
      const s = lab.site(n, `192.0.2.${n}`, 24, ul, `p${n}`);
      sh(`ip -n ${ul} link set p${n} master br0`);
      sh(`ip netns exec ${s.gw} sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1`);
      sites.push(s);
    }
    const [s1, s2] = sites as [Site, Site];
    sh(`ip -n ${s1.gw} route add ${s2.subnet} via ${s2.underlay}`);
    sh(`ip -n ${s2.gw} route add ${s1.subnet} via ${s1.underlay}`);
    const agents = sites.map((s) => {
      const r = s === s1 ? s2 : s1;
      const a = lab.agent(`site${s.n}`, s.gw, {
        addresses: [s.underlay],
        encryptionCheck: { interval: `${PROOF_INTERVAL_MS}ms` },
        metricsPort: 9107,
        metricsAddress: '127.0.0.1',
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
        },
        PSK,
      );
      return a;
    });
    const [a1] = agents as [(typeof agents)[number]];
    for (const a of agents) a.start();
    await a1.waitUp('to-site2', 60_000);
    await agents[1]!.waitUp('to-site1', 60_000);
    const enc = async () => (await a1.tunnel('to-site2'))?.encrypted;
    res.before = await waitFor(
      'Encrypted=True',
      async () => {
        const e = await enc();
        return e?.status === 'True' ? e : undefined;
      },
      20_000,
    );

    await udpEcho(lab, s2.host, s2.hostAddress, 7200);
    const pinger = new Pinger(lab, s1.host, s1.hostAddress, s2.hostAddress, 7200, 50);
    await pinger.start();
    await pinger.waitEcho(Date.now(), 30_000);
    const cap = new Capture(lab, s1.gw, s1.dev, 'out');
    await cap.start();
    await sleep(1000);

    const sel = `src ${s1.subnet} dst ${s2.subnet}`;
    const tDel = Date.now();
    res.echoesBefore = pinger.echoes.filter((e) => e.sentAt >= tDel - 1000).length;
    // Delete and look in one shell: the agent's check (every second) may put the policy back at any moment.
    const del = shTry(
      `ip -n ${s1.gw} xfrm policy delete dir out ${sel} || exit 2; ip -n ${s1.gw} xfrm policy get dir out ${sel} >/dev/null 2>&1 && exit 1; exit 0`,
    );
    if (del.code === 2) throw new Error(`ip xfrm policy delete failed: ${del.out}`);
    res.deletedConfirmed = del.code === 0;
    // Poll the kernel (every 20 ms) and the status (every 100 ms) until both the restore and False were seen.
    const end = tDel + 5 * PROOF_INTERVAL_MS + 10_000;
    let tRestored: number | undefined;
    let lastStatusPoll = 0;
    while (Date.now() < end && (tRestored === undefined || res.falseAfterMs === undefined)) {
      if (tRestored === undefined && shTry(`ip -n ${s1.gw} xfrm policy get dir out ${sel}`).code === 0) {
        tRestored = Date.now();
        res.restoredAfterMs = tRestored - tDel;
      }
      if (res.falseAfterMs === undefined && Date.now() - lastStatusPoll >= 100) {
        lastStatusPoll = Date.now();
        const e = await enc();
        if (e?.status === 'False') {
          res.falseAfterMs = Date.now() - tDel;
          res.falseView = e;
        }
      }
      await sleep(20);
    }
    if (tRestored !== undefined) {
      const echo = await pinger.waitEcho(tRestored, 10_000).catch(() => undefined);
      if (echo) res.echoAfterMs = echo.sentAt + echo.rtt - tDel;
    }
    res.policyAfter = shTry(`ip -n ${s1.gw} xfrm policy get dir out ${sel}`).out.trim();
    res.after = await waitFor(
      'Encrypted=True again',
      async () => {
        const e = await enc();
        return e?.status === 'True' ? e : undefined;
      },
      5 * PROOF_INTERVAL_MS + 5_000,
    ).catch(() => undefined);
    if (res.after) res.trueAfterMs = Date.parse(res.after.lastTransitionTime) - tDel;
    await sleep(500);
    pinger.stop();
    await cap.stop();
    const tEnd = Date.now();
    res.lost = 0;
    // Pings sent between the delete and the restore (50 ms apart) that never came back.
    const sentAfter = pinger.echoes.filter((e) => e.sentAt >= tDel && e.sentAt < tEnd - 1000);
    res.lost = Math.max(0, Math.round((tEnd - 1000 - tDel) / 50) - sentAfter.length);
    const lines = cap.text();
    const plain = lines.filter((l) => l.includes(`${s1.hostAddress}.`) && !/ ESP\(/.test(l));
    res.plaintextOnWire = plain.length;
    const restoredAtText = tRestored !== undefined ? new Date(tRestored + 200).toISOString().slice(11, 23) : '99';
    res.plaintextAfterRestore = plain.filter((l) => l.slice(0, 12) > restoredAtText).length;
    res.metrics = shTry(`ip netns exec ${s1.gw} curl -s http://127.0.0.1:9107/metrics`)
      .out.split('\n')
      .filter((l) => /^ipsec_mesh_(encrypted|policy_restores_total)/.test(l));
    res.statusText = formatStatus(await a1.status()).split('\n');
    res.notable = lab.agents
      .flatMap((a) => a.raw)
      .filter((l) => /encryption-check|policy-restore|"level":(50|60)/.test(l))
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
