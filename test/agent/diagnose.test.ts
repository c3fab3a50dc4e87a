/**
 * `ipsec-mesh diagnose` against two real agents (`--dataplane none`) in network namespaces: a healthy tunnel, a
 * proposal mismatch (the report names it and the fix) and a peer that is not there (no answer on UDP 500/4500).
 * The text reports are written to $DIAGNOSE_REPORT_DIR when set (for the closing note).
 */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DiagnoseReport } from '../../src/cli/diagnose-report.js';
import { cleanupStale, makePair, type NsPair } from '../support/netns.js';
import { type AgentDir, agentDir, pskSecret, REPO, type RunningAgent, startAgent, tunnel, waitFor } from './helpers.js';

const PSK = 'a diagnose test pre-shared key!!';

function diagnose(ns: string, args: string[]): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve) => {
    execFile(
      'ip',
      ['netns', 'exec', ns, process.execPath, '--import', 'tsx', join(REPO, 'src/cli/main.ts'), 'diagnose', ...args],
      { cwd: REPO, timeout: 60_000 },
      (err, stdout) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout }),
    );
  });
}

describe('ipsec-mesh diagnose against real agents', () => {
  let pair: NsPair;
  let dirA: AgentDir;
  let dirB: AgentDir;
  let a: RunningAgent;
  let b: RunningAgent | undefined;

  const write = (bIke: string[]) => {
    dirA.write('tunnels.yaml', [
      tunnel('to-b', {
        localAddress: pair.addressA,
        remoteAddress: pair.addressB,
        localSubnets: ['198.18.1.0/24'],
        remoteSubnets: ['198.18.2.0/24'],
        localId: 'site-a.example',
        remoteId: 'site-b.example',
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
        ike: bIke,
      }),
      pskSecret('to-a-psk', PSK),
    ]);
  };

  const run = async (name: string) => {
    const args = ['--state-dir', dirA.stateDir, '--config-dir', dirA.dir, '--peer-config-dir', dirB.dir];
    const text = await diagnose(pair.a, [...args, '--probe-timeout', '1000']);
    const json = await diagnose(pair.a, [...args, '--probe-timeout', '1000', '--json']);
    if (process.env.DIAGNOSE_REPORT_DIR)
      writeFileSync(join(process.env.DIAGNOSE_REPORT_DIR, `${name}.txt`), text.stdout);
    return { text, report: JSON.parse(json.stdout) as DiagnoseReport, code: json.code };
  };
  const check = (r: DiagnoseReport, name: string) => r.checks.find((c) => c.name === name)!;

  beforeAll(() => {
    cleanupStale('imdg');
    pair = makePair('imdg');
    dirA = agentDir('diag-a', { addresses: [pair.addressA], retransmit: { timeout: '500ms', base: 1.5, tries: 2 } });
    dirB = agentDir('diag-b', { addresses: [pair.addressB] });
    write(['aes128gcm16-prfsha256-x25519']);
    a = startAgent(pair, pair.a, dirA);
    b = startAgent(pair, pair.b, dirB);
  });

  afterAll(async () => {
    await a?.stop();
    await b?.stop();
    pair?.destroy();
  });

  it('healthy: SA up, peer answers on 500 and 4500, both configurations agree', async () => {
    await waitFor('tunnel up', async () => {
      const s = await a.status().catch(() => undefined);
      const t = s?.tunnels[0];
      return t?.ikeSA.state === 'Established' && t.childSAs.length === 1 ? t : undefined;
    });
    const { text, report, code } = await run('healthy');
    expect(check(report, 'live SA state').status, text.stdout).toBe('ok');
    expect(check(report, 'UDP 500/4500 to the peer').status).toBe('ok');
    expect(check(report, 'UDP 500/4500 to the peer').detail).toContain('500 answered');
    expect(check(report, 'UDP 500/4500 to the peer').detail).toContain('4500 answered');
    expect(check(report, 'both sides agree').status).toBe('ok');
    expect(check(report, 'kernel support for the ESP algorithms').status).toBe('n/a'); // --dataplane none
    expect(report.overall).toBe('ok');
    expect(code).toBe(0);
    expect(text.stdout).not.toContain(PSK);
  }, 90_000);

  it('proposal mismatch: the report names the mismatch and the fix', async () => {
    write(['aes256-sha256-modp2048']);
    // A changed peer does not tear down an established SA: restart our agent so that it negotiates afresh.
    await a.stop();
    a = startAgent(pair, pair.a, dirA);
    await waitFor(
      'NO_PROPOSAL_CHOSEN on a',
      async () => {
        const t = (await a.status().catch(() => undefined))?.tunnels[0];
        return t?.ikeSA.lastError?.code === 'NO_PROPOSAL_CHOSEN' && t.ikeSA.state !== 'Established' ? t : undefined;
      },
      60_000,
    );
    const { text, report, code } = await run('proposal-mismatch');
    const agree = check(report, 'both sides agree');
    expect(agree.status, text.stdout).toBe('fail');
    expect(agree.detail).toContain('IKE proposals do not intersect');
    expect(agree.fix).toContain('add `aes256-prfsha256-sha256-modp2048` to spec.ike.proposals');
    const live = check(report, 'live SA state');
    expect(live.status).toBe('fail');
    expect(live.detail).toContain('NO_PROPOSAL_CHOSEN');
    expect(live.fix).toContain('spec.ike.proposals');
    expect(code).toBe(3);
  }, 90_000);

  it('peer unreachable: no answer on UDP 500/4500', async () => {
    await b?.stop();
    b = undefined;
    const { text, report, code } = await run('unreachable');
    const reach = check(report, 'UDP 500/4500 to the peer');
    expect(reach.status, text.stdout).toBe('fail');
    expect(reach.detail).toContain(`no answer from ${pair.addressB}`);
    expect(reach.fix).toContain('spec.remote.address');
    expect(code).toBe(3);
  }, 90_000);
});
