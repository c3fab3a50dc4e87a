/**
 * The local demo (`npm run demo`), run INSIDE User-Mode Linux by src/cli/demo.ts: a full mesh of N sites (gateway
 * namespace + host namespace per site, gateways on one underlay bridge), one `ipsec-mesh agent` per gateway with a
 * tunnel to every other site, pings between every pair of site hosts, and every 2 seconds a table of tunnels, SAs
 * and kernel counters. At the end: proof of encryption from what the gateways sent on the underlay.
 *
 * Arguments: <duration seconds, 0 = until stopped> <sites> <stop-file>. Stops early when the stop file appears
 * (Ctrl-C on the host writes it).
 */

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { Capture, Lab, type Site, sh, shTry, sleep } from '../support/agents.js';

const PSK = 'demo pre-shared key: replace me in real life';
// `ping -p` fills the payload with this pattern; finding it on the underlay would mean plaintext.
const MARKER_HEX = '49505345432d4d455348'; // "IPSEC-MESH"
const MARKER = Buffer.from(MARKER_HEX, 'hex');

const [durationArg = '60', sitesArg = '3', stopFile = '/nonexistent'] = process.argv.slice(2);
const duration = Number(durationArg) * 1000;
const count = Math.max(2, Math.min(6, Number(sitesArg)));

function pad(s: string, n: number): string {
  return s.length >= n ? s.slice(0, n) : s + ' '.repeat(n - s.length);
}

function human(n: number): string {
  if (n < 10_000) return `${n}`;
  if (n < 10_000_000) return `${(n / 1000).toFixed(1)}k`;
  return `${(n / 1_000_000).toFixed(1)}M`;
}

async function main(): Promise<number> {
  const lab = new Lab('demo');
  try {
    console.log(`ipsec-mesh demo: ${count} sites, full mesh, kernel ESP in User-Mode Linux`);
    const ul = lab.ns('ul');
    sh(`ip -n ${ul} link add br0 type bridge && ip -n ${ul} link set br0 up`);
    const sites: Site[] = [];
    for (let n = 1; n <= count; n++) {
      const s = lab.site(n, `192.0.2.${n}`, 24, ul, `p${n}`);
      sh(`ip -n ${ul} link set p${n} master br0`);
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
            esp: ['aes256gcm16-x25519'],
            espLifetime: '2m',
          },
          PSK,
        );
      }
      return ag;
    });
    console.log(
      `sites: ${sites.map((s) => `site${s.n} gateway ${s.underlay} subnet ${s.subnet} host ${s.hostAddress}`).join('; ')}`,
    );
    const caps = sites.map((s) => new Capture(lab, s.gw, s.dev, 'out'));
    await Promise.all(caps.map((c) => c.start()));
    const t0 = performance.now();
    for (const a of agents) a.start();
    for (const [i, a] of agents.entries()) {
      for (const r of sites) if (r !== sites[i]) await a.waitUp(`to-site${r.n}`, 90_000);
    }
    console.log(`mesh up: ${(count * (count - 1)) / 2} tunnels in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
    // Traffic: every host pings every other host twice a second, with a recognisable payload.
    for (const a of sites) {
      for (const b of sites) {
        if (a === b) continue;
        const p = spawn(
          'ip',
          ['netns', 'exec', a.host, 'ping', '-n', '-q', '-i', '0.5', '-p', MARKER_HEX, b.hostAddress],
          {
            stdio: 'ignore',
          },
        );
        lab.track(p);
      }
    }
    const end = duration > 0 ? performance.now() + duration : Number.POSITIVE_INFINITY;
    while (performance.now() < end && !existsSync(stopFile)) {
      const rows: string[] = [
        `${pad('gateway', 8)} ${pad('tunnel', 10)} ${pad('IKE', 12)} ${pad('IKE SPIs (i/r)', 34)} ${pad('CHILD SPIs in/out', 18)} ${pad('pkts in', 8)} ${pad('pkts out', 8)} ${pad('bytes in', 9)} bytes out`,
      ];
      for (const a of agents) {
        const st = await a.status().catch(() => undefined);
        for (const t of st?.tunnels ?? []) {
          const c = t.childSAs.find((x) => x.state === 'installed');
          rows.push(
            `${pad(a.name, 8)} ${pad(t.name, 10)} ${pad(t.ikeSA.state, 12)} ${pad(`${t.ikeSA.spiI}/${t.ikeSA.spiR}`, 34)} ${pad(c ? `${c.spiIn}/${c.spiOut}` : '-', 18)} ${pad(human(Number(c?.packetsIn ?? 0)), 8)} ${pad(human(Number(c?.packetsOut ?? 0)), 8)} ${pad(human(Number(c?.bytesIn ?? 0)), 9)} ${human(Number(c?.bytesOut ?? 0))}`,
          );
        }
      }
      const elapsed = ((performance.now() - t0) / 1000).toFixed(0);
      console.log(
        `--- t=${elapsed}s ${duration > 0 ? `(demo ends after ${duration / 1000} s)` : '(Ctrl-C to stop)'}\n${rows.join('\n')}\n`,
      );
      await sleep(2000);
    }
    await Promise.all(caps.map((c) => c.stop()));
    const lines = caps.flatMap((c) => c.text());
    const esp = lines.filter((l) => / ESP\(spi=/.test(l)).length;
    const icmp = lines.filter((l) => / ICMP echo/.test(l)).length;
    const marker = caps.some((c) => c.bytes().includes(MARKER));
    console.log('proof of encryption (what the gateways sent on the underlay, captured with tcpdump):');
    console.log(`  packets captured: ${lines.length}, ESP: ${esp}, plaintext ICMP echo: ${icmp}`);
    console.log(`  ping payload pattern found on the wire: ${marker ? 'YES - PLAINTEXT LEAK' : 'no'}`);
    console.log(
      `  kernel ESP SAs per gateway: ${sites.map((s) => `site${s.n}=${(shTry(`ip -n ${s.gw} xfrm state`).out.match(/^src /gm) ?? []).length}`).join(' ')}`,
    );
    console.log('tearing down: agents stop (DELETEs sent, kernel state removed), namespaces removed');
    return esp > 0 && icmp === 0 && !marker ? 0 : 1;
  } finally {
    await lab.destroy();
  }
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(e instanceof Error ? (e.stack ?? e.message) : String(e));
    process.exit(1);
  },
);
