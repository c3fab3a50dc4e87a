/**
 * Two real agents (`ipsec-mesh agent --dataplane none`) in two network namespaces over real UDP: configuration
 * from Kubernetes-style YAML, negotiation, `ipsec-mesh status`, reload on change, bad files, clean shutdown.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupStale, makePair, type NsPair } from '../support/netns.js';
import { agentDir, pskSecret, REPO, type RunningAgent, startAgent, tunnel, waitFor } from './helpers.js';

const PSK = 'an agent test pre-shared key';

describe('standalone agents over real UDP in network namespaces', () => {
  let pair: NsPair;
  const agents: RunningAgent[] = [];

  beforeAll(() => {
    cleanupStale('imag');
    pair = makePair('imag', { ipv6: true });
  });

  afterAll(async () => {
    for (const a of agents) await a.stop();
    pair?.destroy();
  });

  it('negotiates a tunnel from YAML, reports it, follows config changes and stops cleanly', async () => {
    const dirA = agentDir('site-a', { addresses: [pair.addressA, pair.address6A], metricsPort: 19464 });
    const dirB = agentDir('site-b', { addresses: [pair.addressB, pair.address6B] });
    const common = { ike: ['aes256gcm16-prfsha384-x25519'], esp: ['aes256gcm16-x25519'] };
    dirA.write('tunnels.yaml', [
      tunnel('to-b', {
        localAddress: pair.addressA,
        remoteAddress: pair.addressB,
        localSubnets: ['198.18.1.0/24'],
        remoteSubnets: ['198.18.2.0/24'],
        localId: 'site-a.example',
        remoteId: 'site-b.example',
        ...common,
      }),
      pskSecret('to-b-psk', PSK),
    ]);
    dirB.write('tunnels.yaml', [
      tunnel('to-a', {
        localAddress: pair.addressB,
        remoteAddress: pair.addressA,
        localSubnets: ['198.18.2.0/24'],
        remoteSubnets: ['198.18.1.0/24'],
        localId: 'site-b.example',
        remoteId: 'site-a.example',
        startAction: 'none',
        ...common,
      }),
      pskSecret('to-a-psk', PSK),
    ]);
    const a = startAgent(pair, pair.a, dirA);
    const b = startAgent(pair, pair.b, dirB);
    agents.push(a, b);

    const [sa, sb] = await waitFor('both tunnels up', async () => {
      const x = await a.status();
      const y = await b.status();
      const up = (s: typeof x) => s.tunnels[0]?.childSAs.some((c) => c.state === 'installed');
      return up(x) && up(y) ? [x, y] : undefined;
    });
    const ta = sa.tunnels[0]!;
    const tb = sb.tunnels[0]!;
    expect(ta.ikeSA.state).toBe('Established');
    expect(ta.ikeSA.algorithms).toBe('aes256gcm16-prfsha384-x25519');
    expect(ta.ikeSA.spiI).toBe(tb.ikeSA.spiI);
    expect(ta.ikeSA.spiR).toBe(tb.ikeSA.spiR);
    expect(ta.childSAs[0]!.spiIn).toBe(tb.childSAs[0]!.spiOut);
    expect(ta.childSAs[0]!.localTs).toEqual(['198.18.1.0/24']);
    expect(ta.childSAs[0]!.remoteTs).toEqual(['198.18.2.0/24']);
    expect(JSON.stringify(sa)).not.toContain(PSK);

    // The CLI shows the same, as JSON and as text.
    const cli = (args: string[]) =>
      execFileSync(
        process.execPath,
        ['--import', 'tsx', join(REPO, 'src/cli/main.ts'), 'status', '--state-dir', dirA.stateDir, ...args],
        {
          encoding: 'utf8',
          cwd: REPO,
        },
      );
    const json = JSON.parse(cli(['--json']));
    expect(json.tunnels[0].ikeSA.spiI).toBe(ta.ikeSA.spiI);
    expect(cli([])).toContain('default/to-b');

    // Prometheus metrics (served inside the namespace).
    const metrics = pair.exec(pair.a, 'curl', ['-s', 'http://127.0.0.1:19464/metrics']);
    expect(metrics).toMatch(/ipsec_mesh_handshakes_total\{result="ok",code=""\} 1/);
    expect(metrics).toMatch(/ipsec_mesh_ike_sas\{state="Established"\} 1/);
    expect(metrics).toMatch(/ipsec_mesh_handshake_seconds_count 1/);

    // A broken file is reported with file, field and problem; the valid tunnel keeps running.
    dirA.write('broken.yaml', [
      {
        apiVersion: 'ipsecmesh.io/v1alpha1',
        kind: 'IPsecTunnel',
        metadata: { name: 'bad' },
        spec: { local: { subnets: ['not-a-cidr'] } },
      },
    ]);
    const withProblem = await waitFor('problem reported', async () => {
      const s = await a.status();
      return s.configProblems.some((p) => p.file === 'broken.yaml') ? s : undefined;
    });
    expect(withProblem.configProblems.find((p) => p.file === 'broken.yaml')!.path).toMatch(/spec\./);
    expect(withProblem.tunnels[0]!.ikeSA.spiI).toBe(ta.ikeSA.spiI);

    // A second tunnel over IPv6 appears when its file is added.
    const six = { ...common, localSubnets: ['2001:db8:1::/64'], remoteSubnets: ['2001:db8:2::/64'] };
    dirA.write('v6.yaml', [
      tunnel('to-b-v6', { localAddress: pair.address6A, remoteAddress: pair.address6B, ...six }),
      pskSecret('to-b-v6-psk', PSK),
    ]);
    dirB.write('v6.yaml', [
      tunnel('to-a-v6', {
        localAddress: pair.address6B,
        remoteAddress: pair.address6A,
        ...six,
        localSubnets: six.remoteSubnets,
        remoteSubnets: six.localSubnets,
        startAction: 'none',
      }),
      pskSecret('to-a-v6-psk', PSK),
    ]);
    await waitFor('IPv6 tunnel up', async () => {
      const s = await a.status();
      const t = s.tunnels.find((x) => x.name === 'to-b-v6');
      return t?.childSAs.some((c) => c.state === 'installed') ? t : undefined;
    });

    // Removing the tunnel file deletes the tunnel on both sides.
    dirA.remove('tunnels.yaml');
    await waitFor('tunnel gone at the peer', async () => {
      const s = await b.status();
      const t = s.tunnels.find((x) => x.name === 'to-a');
      return t && t.ikeSA.state === 'Down' && t.childSAs.length === 0 ? true : undefined;
    });

    expect(await a.stop()).toBe(0);
    expect(a.logs.some((l) => l.includes('"event":"agent-stopped"'))).toBe(true);
    expect(a.logs.join('\n')).not.toContain(PSK);
  }, 90_000);

  it('reports a wrong pre-shared key as AUTHENTICATION_FAILED with a clear message', async () => {
    const p2 = makePair('imag');
    try {
      const dirA = agentDir('wrong-a', { addresses: [p2.addressA] });
      const dirB = agentDir('wrong-b', { addresses: [p2.addressB] });
      const t = { localSubnets: ['198.18.5.0/24'], remoteSubnets: ['198.18.6.0/24'] };
      dirA.write('t.yaml', [
        tunnel('w', { localAddress: p2.addressA, remoteAddress: p2.addressB, ...t }),
        pskSecret('w-psk', 'the first pre-shared key'),
      ]);
      dirB.write('t.yaml', [
        tunnel('w', {
          localAddress: p2.addressB,
          remoteAddress: p2.addressA,
          localSubnets: t.remoteSubnets,
          remoteSubnets: t.localSubnets,
          startAction: 'none',
        }),
        pskSecret('w-psk', 'another pre-shared key!'),
      ]);
      const b = startAgent(p2, p2.b, dirB);
      const a = startAgent(p2, p2.a, dirA);
      agents.push(a, b);
      const err = await waitFor('failure reported', async () => (await a.status()).tunnels[0]?.ikeSA.lastError);
      expect(err.code).toBe('AUTHENTICATION_FAILED');
      expect(err.message).toMatch(/pre-shared key/);
      const errB = await waitFor(
        'failure reported by the responder',
        async () => (await b.status()).tunnels[0]?.ikeSA.lastError,
      );
      expect(errB.code).toBe('AUTHENTICATION_FAILED');
      await a.stop();
      await b.stop();
    } finally {
      p2.destroy();
    }
  }, 60_000);
});
