/**
 * "Explain every failure" between two of our engines on the simulated network: each negotiation failure is driven
 * for real (mismatched configurations, a rewritten packet where two honest engines cannot fail, a dead peer, a
 * kernel that refuses the algorithm) and the explanation on each side is checked for the code, what we offered,
 * what the peer offered or answered, the mismatch and the fix with the IPsecTunnel field to change.
 */
import { describe, expect, it } from 'vitest';
import { decodeMessage, encodeMessage, isResponse } from '../../src/ike/codec/message.js';
import { invalidKePayloadNotify, notify } from '../../src/ike/codec/payloads/notify.js';
import { ExchangeType, KeId, NotifyType } from '../../src/ike/constants.js';
import type { EngineEvent, Failure } from '../../src/ike/sa/events.js';
import { headerOf, PSK, pair, SITE_A, SITE_B } from './fixtures.js';

type Pair = ReturnType<typeof pair>;

const failures = (events: EngineEvent[]): Failure[] =>
  events.flatMap((e) => (e.type === 'ike-failed' || e.type === 'child-failed' ? [e.failure] : []));

interface Expectation {
  code: string;
  /** Substrings the explanation must contain (mismatch, fix). */
  contains: string[];
}

interface Case {
  name: string;
  setup: (seed: string) => Pair;
  /** Simulated ms to run. */
  runMs?: number;
  initiator: Expectation;
  /** undefined: the responder has nothing to report (it never saw a request, or the failure is the initiator's). */
  responder?: Expectation;
}

/** Rewrite the first IKE_SA_INIT message in one direction. */
function rewriteInit(p: Pair, response: boolean, edit: (bytes: Uint8Array) => Uint8Array): void {
  let done = false;
  p.sim.world.network.addFilter((pkt) => {
    if (done || pkt.bytes.length < 28) return undefined;
    const h = headerOf(pkt.bytes);
    if (h.exchange !== ExchangeType.IKE_SA_INIT) return undefined;
    if (isResponse(decodeMessage(pkt.bytes)) !== response) return undefined;
    done = true;
    return edit(pkt.bytes);
  });
}

const CASES: Case[] = [
  {
    name: 'IKE NO_PROPOSAL_CHOSEN',
    setup: (seed) => pair(seed, { ike: 'aes256-sha256-modp2048', b: { ike: 'aes128gcm16-prfsha256-ecp256' } }),
    initiator: {
      code: 'NO_PROPOSAL_CHOSEN',
      contains: [
        'We offered: aes256-prfsha256-sha256-modp2048',
        'answered NO_PROPOSAL_CHOSEN',
        "Fix: make spec.ike.proposals and the peer's IKE proposals share one proposal",
      ],
    },
    responder: {
      code: 'NO_PROPOSAL_CHOSEN',
      contains: [
        'We offered: aes128gcm16-prfsha256-ecp256',
        'Peer: proposes only aes256-prfsha256-sha256-modp2048 for IKE',
        'KE: ours ecp256 vs theirs modp2048',
        'Fix: add `aes256-prfsha256-sha256-modp2048` to spec.ike.proposals',
      ],
    },
  },
  {
    name: 'ESP NO_PROPOSAL_CHOSEN',
    setup: (seed) => pair(seed, { esp: 'aes128gcm16', b: { esp: 'aes256-sha256' } }),
    initiator: {
      code: 'NO_PROPOSAL_CHOSEN',
      contains: ['refused with NO_PROPOSAL_CHOSEN', 'We offered: aes128gcm16', 'spec.esp.proposals'],
    },
    responder: {
      code: 'NO_PROPOSAL_CHOSEN',
      contains: [
        'Peer: proposes only aes128gcm16-noesn for ESP',
        'ENCR: ours aes256 vs theirs aes128gcm16',
        'Fix: add `aes128gcm16-noesn` to spec.esp.proposals',
      ],
    },
  },
  {
    name: 'AUTHENTICATION_FAILED (pre-shared keys differ)',
    setup: (seed) => pair(seed, { b: { psk: new TextEncoder().encode('another pre-shared key for tests') } }),
    initiator: {
      code: 'AUTHENTICATION_FAILED',
      contains: ['did not accept us as fqdn:site-a.example', 'Fix: make the PSK Secret (spec.auth.psk.secretRef)'],
    },
    responder: {
      code: 'AUTHENTICATION_FAILED',
      contains: ['Mismatch: the pre-shared keys differ', 'Fix: make the PSK Secret (spec.auth.psk.secretRef)'],
    },
  },
  {
    name: 'TS_UNACCEPTABLE (subnets do not mirror)',
    setup: (seed) => pair(seed, { b: { remoteSubnets: ['198.18.9.0/24'] } }),
    initiator: {
      code: 'TS_UNACCEPTABLE',
      contains: [
        'We offered: 198.18.1.0/24 === 198.18.2.0/24',
        "the peer's local subnets must cover spec.remote.subnets (198.18.2.0/24)",
        'Fix: make spec.local.subnets/spec.remote.subnets the mirror image',
      ],
    },
    responder: {
      code: 'TS_UNACCEPTABLE',
      contains: [
        'Peer: proposes 198.18.1.0/24 (its side) === 198.18.2.0/24 (ours)',
        'Fix: set spec.remote.subnets to 198.18.1.0/24 and spec.local.subnets to 198.18.2.0/24',
      ],
    },
  },
  {
    name: 'INVALID_KE_PAYLOAD naming a group we do not offer',
    setup: (seed) => {
      const p = pair(seed);
      rewriteInit(p, true, (bytes) => {
        const m = decodeMessage(bytes);
        m.payloads = [invalidKePayloadNotify(KeId.MODP_3072)];
        return encodeMessage(m);
      });
      return p;
    },
    initiator: {
      code: 'INVALID_KE_PAYLOAD',
      contains: [
        'the peer requires key exchange method modp3072',
        'none of our IKE proposals contains modp3072',
        'Fix: add `aes128gcm16-prfsha256-modp3072` to spec.ike.proposals',
      ],
    },
  },
  {
    // Our responder drops a malformed IKE_SA_INIT silently (RFC 7296 §2.21.1 allows it); peers that answer
    // INVALID_SYNTAX are stood in for by rewriting the response.
    name: 'INVALID_SYNTAX from the peer',
    setup: (seed) => {
      const p = pair(seed);
      rewriteInit(p, true, (bytes) => {
        const m = decodeMessage(bytes);
        m.payloads = [notify(NotifyType.INVALID_SYNTAX)];
        return encodeMessage(m);
      });
      return p;
    },
    initiator: {
      code: 'INVALID_SYNTAX',
      contains: [
        'IKE_SA_INIT refused with INVALID_SYNTAX',
        'We offered: aes128gcm16-prfsha256-x25519',
        "Fix: check the peer's log",
      ],
    },
  },
  {
    name: 'no response (retransmits exhausted)',
    setup: (seed) => {
      const p = pair(seed, { startAction: 'none' });
      p.sim.world.network.down(SITE_B.address);
      return p;
    },
    runMs: 200_000,
    initiator: {
      code: 'RETRANSMITS_EXHAUSTED',
      contains: [
        'no response from 203.0.113.2:500 to IKE_SA_INIT after 5 retransmits',
        'Fix: check spec.remote.address (203.0.113.2)',
        'UDP 500 and 4500',
      ],
    },
  },
  {
    name: 'no response to IKE_AUTH (UDP 4500 or fragments dropped)',
    setup: (seed) => {
      const p = pair(seed, { startAction: 'none' });
      p.sim.world.network.addFilter((pkt) =>
        pkt.from.address === SITE_A.address && headerOf(pkt.bytes).exchange === ExchangeType.IKE_AUTH
          ? 'drop'
          : undefined,
      );
      return p;
    },
    runMs: 200_000,
    initiator: {
      code: 'RETRANSMITS_EXHAUSTED',
      contains: ['to IKE_AUTH after 5 retransmits', 'answered earlier messages', 'lower ikeFragmentSize'],
    },
  },
  {
    name: 'identity mismatch seen by the responder (no tunnel for that identity)',
    setup: (seed) => pair(seed, { b: { remoteId: { type: 'fqdn', value: 'site-x.example' } } }),
    initiator: {
      code: 'AUTHENTICATION_FAILED',
      contains: ['or the peer has no connection for identity fqdn:site-a.example'],
    },
    responder: {
      code: 'IDENTITY_MISMATCH',
      contains: [
        'no tunnel configured for peer identity fqdn:site-a.example',
        'expect fqdn:site-x.example',
        'Fix: set spec.remote.id of the tunnel to fqdn:site-a.example',
      ],
    },
  },
  {
    name: 'identity mismatch seen by the initiator (IDr is not spec.remote.id)',
    setup: (seed) => {
      const p = pair(seed);
      p.configA.remoteId = { type: 'fqdn', value: 'site-z.example' };
      // b answers for any identity we ask it to be (as a peer without `id` checks would).
      p.b.configs.byIdentities = (_r, _l, candidates) => candidates[0];
      return p;
    },
    initiator: {
      code: 'IDENTITY_MISMATCH',
      contains: [
        'Peer: sent IDr fqdn:site-b.example',
        'spec.remote.id fqdn:site-z.example != fqdn:site-b.example',
        'set spec.remote.id to site-b.example',
      ],
    },
  },
  {
    name: 'kernel rejects the negotiated ESP algorithm',
    setup: (seed) => {
      const p = pair(seed, { esp: 'aes256gcm16' });
      p.a.host.kernel.failNext('updateSa', 'ENOSYS');
      return p;
    },
    initiator: {
      code: 'KERNEL_ERROR',
      contains: [
        'the kernel rejected the negotiated CHILD SA (updateSa: ENOSYS',
        'installed as XFRM rfc4106(gcm(aes))',
        'Fix: load the kernel modules',
        'or remove `aes256gcm16-noesn` from spec.esp.proposals',
      ],
    },
  },
];

describe('every negotiation failure is explained (two engines)', () => {
  for (const c of CASES) {
    it(c.name, async () => {
      const p = c.setup(`explain-${c.name}`);
      p.a.engine.initiate(p.configA);
      await p.sim.run(c.runMs ?? 10_000);
      const check = (side: 'initiator' | 'responder', events: EngineEvent[], e: Expectation) => {
        const f = failures(events).find((x) => x.code === e.code);
        expect(f, `${side}: ${JSON.stringify(failures(events))}`).toBeDefined();
        for (const s of e.contains) expect(f!.message, side).toContain(s);
        expect(f!.message, side).toMatch(/ Fix: /);
        // Never key material.
        expect(f!.message).not.toContain(new TextDecoder().decode(PSK));
        expect(f!.message).not.toContain('another pre-shared key');
      };
      check('initiator', p.a.events, c.initiator);
      if (c.responder) check('responder', p.b.events, c.responder);
    });
  }
});
