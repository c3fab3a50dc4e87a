/**
 * "Explain every failure" against strongSwan's charon: each negotiation failure is driven with mismatched swanctl
 * and IPsecTunnel configurations, in both roles where the role matters, and our explanation in
 * `ipsec-mesh status --json` (lastError) is checked for the code, what was offered or answered, the mismatch and
 * the fix.
 *
 * Not driven here: kernel rejection of an algorithm (the interop agent runs with `--dataplane none`; see
 * test/exchange/explain.test.ts) and INVALID_SYNTAX (charon does not send malformed messages); an INVALID_KE_PAYLOAD
 * from our side is part of a successful negotiation with charon (it retries with our group), so that row checks
 * the explanation in the log and that the tunnel then comes up.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  Agent,
  type AgentTunnel,
  Charon,
  cleanupStale,
  ensurePrerequisites,
  type SwConnection,
  Topology,
} from './harness.js';

const PSK = 'explain pre-shared key, 32 bytes';
const IKE = 'aes128gcm16-prfsha256-x25519';
const ESP = 'aes128gcm16';
const RETRANSMIT = { timeout: '500ms', base: 1.5, tries: 3 };

interface Options {
  oursIke?: string[];
  swIke?: string[];
  oursEsp?: string[];
  swEsp?: string[];
  swPsk?: string;
  oursRemoteNet?: string;
  oursRemoteId?: string;
  swRemoteId?: string;
  /** Who starts: ours (start action) or charon (swanctl --initiate). */
  by: 'ours' | 'charon';
}

interface Row {
  name: string;
  o: Options;
  code: string;
  contains: (string | RegExp)[];
  /** Where the explanation shows: status (lastError) or the agent's log record of the failure. */
  where?: 'status' | 'log';
}

const ROWS: Row[] = [
  {
    name: 'IKE NO_PROPOSAL_CHOSEN, ours initiating',
    o: { swIke: ['aes256-sha512-modp4096'], by: 'ours' },
    code: 'NO_PROPOSAL_CHOSEN',
    contains: [
      'IKE_SA_INIT refused with NO_PROPOSAL_CHOSEN',
      'We offered: aes128gcm16-prfsha256-x25519',
      "Fix: make spec.ike.proposals and the peer's IKE proposals share one proposal",
    ],
  },
  {
    name: 'IKE NO_PROPOSAL_CHOSEN, charon initiating',
    o: { swIke: ['aes256-sha512-modp4096'], by: 'charon' },
    code: 'NO_PROPOSAL_CHOSEN',
    contains: [
      'Peer: proposes only aes256-sha512-prfsha512-modp4096 for IKE',
      /Mismatch: ENCR: ours aes128gcm16 vs theirs aes256; .*KE: ours x25519 vs theirs modp4096/,
      'Fix: add `aes256-sha512-prfsha512-modp4096` to spec.ike.proposals',
    ],
  },
  {
    name: 'ESP NO_PROPOSAL_CHOSEN, ours initiating',
    o: { swEsp: ['aes256-sha256'], by: 'ours' },
    code: 'NO_PROPOSAL_CHOSEN',
    contains: ['CHILD SA', 'refused with NO_PROPOSAL_CHOSEN', 'We offered: aes128gcm16', 'spec.esp.proposals'],
  },
  {
    name: 'ESP NO_PROPOSAL_CHOSEN, charon initiating',
    o: { swEsp: ['aes256-sha256'], by: 'charon' },
    code: 'NO_PROPOSAL_CHOSEN',
    contains: [/Peer: proposes only aes256-sha256\S* for ESP/, /Fix: add `aes256-sha256\S*` to spec\.esp\.proposals/],
  },
  {
    name: 'AUTHENTICATION_FAILED, ours initiating (charon has another PSK)',
    o: { swPsk: 'a different pre-shared key 12345', by: 'ours' },
    code: 'AUTHENTICATION_FAILED',
    contains: ['did not accept us as fqdn:ours.example', 'Fix: make the PSK Secret (spec.auth.psk.secretRef)'],
  },
  {
    name: 'AUTHENTICATION_FAILED, charon initiating (charon has another PSK)',
    o: { swPsk: 'a different pre-shared key 12345', by: 'charon' },
    code: 'AUTHENTICATION_FAILED',
    contains: [
      'peer fqdn:sw.example failed to authenticate',
      'Mismatch: the pre-shared keys differ',
      'Fix: make the PSK Secret',
    ],
  },
  {
    name: 'TS_UNACCEPTABLE, ours initiating',
    o: { oursRemoteNet: '198.18.9.0/24', by: 'ours' },
    code: 'TS_UNACCEPTABLE',
    contains: [
      'We offered: 198.18.2.0/24 === 198.18.9.0/24',
      'Fix: make spec.local.subnets/spec.remote.subnets the mirror image',
    ],
  },
  {
    name: 'TS_UNACCEPTABLE, charon initiating',
    o: { oursRemoteNet: '198.18.9.0/24', by: 'charon' },
    code: 'TS_UNACCEPTABLE',
    contains: [
      'Peer: proposes 198.18.1.0/24 (its side) === 198.18.2.0/24 (ours)',
      'Fix: set spec.remote.subnets to 198.18.1.0/24 and spec.local.subnets to 198.18.2.0/24',
    ],
  },
  {
    name: 'identity mismatch, ours initiating (we ask for an identity charon does not have)',
    o: { oursRemoteId: 'other.example', by: 'ours' },
    code: 'AUTHENTICATION_FAILED',
    contains: [
      'did not accept us as fqdn:ours.example',
      'or the peer has no connection for identity fqdn:ours.example',
    ],
  },
  {
    name: 'identity mismatch, charon initiating (spec.remote.id is not what charon sends)',
    o: { oursRemoteId: 'other.example', by: 'charon' },
    code: 'IDENTITY_MISMATCH',
    contains: [
      'no tunnel configured for peer identity fqdn:sw.example',
      'expect fqdn:other.example',
      'Fix: set spec.remote.id of the tunnel to fqdn:sw.example',
    ],
  },
  {
    name: 'INVALID_KE_PAYLOAD, charon initiating with a group we rank second (it retries, the tunnel comes up)',
    o: {
      swIke: ['aes128gcm16-prfsha256-x25519-ecp256'],
      oursIke: ['aes128gcm16-prfsha256-ecp256-x25519'],
      by: 'charon',
    },
    code: 'INVALID_KE_PAYLOAD',
    where: 'log',
    contains: [
      'initiator sent KE CURVE25519, we require ECP_256',
      'a conforming initiator retries',
      'Fix: none needed',
    ],
  },
];

describe('interop: every negotiation failure explained, against strongSwan charon', () => {
  let topo: Topology;
  let charon: Charon;
  let agent: Agent;
  let n = 0;
  let current: string | undefined;

  beforeAll(async () => {
    ensurePrerequisites();
    cleanupStale();
    topo = new Topology('x');
    agent = new Agent(topo.o, topo.dir, { addresses: [topo.o.v4], retransmit: RETRANSMIT });
    agent.setTunnels([]);
    charon = new Charon(topo.s, topo.dir, {});
    await Promise.all([charon.start(), agent.start()]);
  });

  afterEach(async () => {
    if (!current) return;
    const key = current;
    current = undefined;
    const from = agent.logs.length;
    agent.setTunnels([]);
    await agent
      .waitLog((l) => l.event === 'tunnel-removed' && l.tunnel === key, from, 20_000, `${key} removed`)
      .catch(() => undefined);
    if (charon.running) await charon.terminateAll();
  });

  afterAll(async () => {
    await agent?.stop();
    await charon?.stop();
    topo?.destroy();
  });

  async function setup(o: Options) {
    const name = `x${++n}`;
    const key = `default/${name}`;
    const conn: SwConnection = {
      name,
      localAddrs: [topo.s.v4],
      remoteAddrs: [topo.o.v4],
      localId: 'sw.example',
      remoteId: o.swRemoteId ?? 'ours.example',
      psk: o.swPsk ?? PSK,
      proposals: o.swIke ?? [IKE],
      children: [
        { name: `${name}c`, localTs: ['198.18.1.0/24'], remoteTs: ['198.18.2.0/24'], espProposals: o.swEsp ?? [ESP] },
      ],
    };
    const tunnel: AgentTunnel = {
      name,
      localAddress: topo.o.v4,
      localSubnets: ['198.18.2.0/24'],
      localId: 'ours.example',
      remoteAddress: topo.s.v4,
      remoteSubnets: [o.oursRemoteNet ?? '198.18.1.0/24'],
      remoteId: o.oursRemoteId ?? 'sw.example',
      psk: PSK,
      ikeProposals: o.oursIke ?? [IKE],
      espProposals: o.oursEsp ?? [ESP],
      startAction: o.by === 'ours' ? 'start' : 'none',
    };
    await charon.load([conn]);
    const from = agent.logs.length;
    agent.setTunnels([tunnel]);
    current = key;
    await agent.waitLog((l) => l.event === 'tunnel-added' && l.tunnel === key, from, 20_000, `${key} added`);
    return { name, key, from, child: `${name}c` };
  }

  for (const row of ROWS) {
    it(row.name, async () => {
      const s = await setup(row.o);
      if (row.o.by === 'charon') await charon.initiate({ child: s.child, timeoutS: 10 });
      const failed = await agent.waitLog(
        (l) => (l.event === 'ike-failed' || l.event === 'child-failed') && l.tunnel === s.key && l.code === row.code,
        s.from,
        30_000,
        `${row.code} for ${s.key}`,
      );
      let message: string;
      if (row.where === 'log') {
        message = String(failed.msg);
        // ... and the negotiation then succeeds (charon retried with our group).
        await agent.waitLog((l) => l.event === 'ike-established' && l.tunnel === s.key, s.from, 20_000, 'established');
      } else {
        const t = agent.tunnel(await agent.status(), s.name);
        expect(t?.ikeSA.lastError?.code).toBe(row.code);
        message = t!.ikeSA.lastError!.message;
      }
      for (const c of row.contains) {
        if (typeof c === 'string') expect(message).toContain(c);
        else expect(message).toMatch(c);
      }
      expect(message).toMatch(/ Fix: /);
      expect(message).not.toContain(PSK);
      expect(message).not.toContain('a different pre-shared key');
    }, 90_000);
  }

  it("no response (charon's namespace drops everything): RETRANSMITS_EXHAUSTED names the address and ports", async () => {
    topo.blackhole(topo.s, true);
    try {
      const s = await setup({ by: 'ours' });
      await agent.waitLog(
        (l) => l.event === 'ike-failed' && l.tunnel === s.key && l.code === 'RETRANSMITS_EXHAUSTED',
        s.from,
        30_000,
        'RETRANSMITS_EXHAUSTED',
      );
      const t = agent.tunnel(await agent.status(), s.name);
      expect(t?.ikeSA.lastError?.code).toBe('RETRANSMITS_EXHAUSTED');
      const m = t!.ikeSA.lastError!.message;
      expect(m).toContain(`no response from ${topo.s.v4}:500 to IKE_SA_INIT after ${RETRANSMIT.tries} retransmits`);
      expect(m).toContain(`Fix: check spec.remote.address (${topo.s.v4})`);
      expect(m).toContain('UDP 500 and 4500');
    } finally {
      topo.blackhole(topo.s, false);
    }
  }, 90_000);
});
