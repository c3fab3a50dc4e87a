import { describe, expect, it } from 'vitest';
import { decodeMessage, encodeMessage } from '../../src/ike/codec/message.js';
import { signatureHashAlgorithmsNotify } from '../../src/ike/codec/payloads/notify.js';
import { ExchangeType, NotifyType, PayloadType } from '../../src/ike/constants.js';
import { formatProposal, parseProposals } from '../../src/ike/crypto/proposals.js';
import { verifyPairing } from '../sim/kernel.js';
import {
  dropNext,
  established,
  headerOf,
  installedChildren,
  kernelCounts,
  kernelEmpty,
  pair,
  peerConfig,
  SITE_A,
  SITE_B,
  Sim,
  steady,
} from './fixtures.js';

const failuresOf = (events: { type: string }[]) =>
  events.filter((e) => e.type === 'ike-failed' || e.type === 'child-failed') as {
    type: string;
    failure: { code: string; message: string };
  }[];

describe('IKE_SA_INIT + IKE_AUTH between two engines', () => {
  it('establishes an IKE SA and a CHILD SA with matching kernel state', async () => {
    const { sim, a, b, configA } = pair(1);
    a.engine.initiate(configA);
    const ok = await sim.until(() => steady(a, b), 10_000);
    expect(ok, sim.world.report()).toBe(true);
    expect(verifyPairing(a.host.kernel, b.host.kernel)).toEqual([]);
    const ca = installedChildren(a)[0]!;
    const cb = installedChildren(b)[0]!;
    expect(ca.spiIn).toBe(cb.spiOut);
    expect(ca.spiOut).toBe(cb.spiIn);
    expect(a.events.map((e) => e.type)).toEqual(['ike-established', 'child-installed']);
    expect(kernelCounts(a)).toEqual({ in: 1, out: 1, policies: 3 });
    // Make-before-break order on the initiator: inbound (update of the reserved SPI), outbound, then policies.
    expect(a.host.kernel.log().map((l) => l.split(' ')[0])).toEqual([
      'allocSpi',
      'updateSa',
      'addSa',
      'addPolicy',
      'addPolicy',
      'addPolicy',
    ]);
  });

  it('works with the @noble provider on both sides', async () => {
    const { sim, a, b, configA } = pair(2, { sim: { provider: 'noble' } });
    a.engine.initiate(configA);
    expect(await sim.until(() => steady(a, b), 10_000), sim.world.report()).toBe(true);
    expect(verifyPairing(a.host.kernel, b.host.kernel)).toEqual([]);
  });

  for (const [ike, esp] of [
    ['aes256gcm16-prfsha384-ecp384', 'aes256gcm16'],
    ['aes256-sha256-modp2048', 'aes256-sha256'],
    ['aes128-sha256-ecp256', 'aes128-sha1'],
    ['chacha20poly1305-prfsha256-x25519', 'chacha20poly1305'],
    ['aes256-sha512-modp4096', 'aes256-sha512'],
    ['aes256gcm12-prfsha512-ecp521', 'aes128gcm8'],
    ['aes192-sha384-x448', 'aes192gcm16-esn'],
  ] as const) {
    it(`negotiates IKE ${ike} and ESP ${esp} with equal keys on both sides`, async () => {
      const { sim, a, b, configA } = pair(`suite-${ike}`, { ike, esp });
      a.engine.initiate(configA);
      expect(await sim.until(() => steady(a, b), 10_000), sim.world.report()).toBe(true);
      expect(established(a)[0]!.algorithms()).toBe(formatProposal(parseProposals(ike, 'ike').proposals[0]!));
      expect(verifyPairing(a.host.kernel, b.host.kernel)).toEqual([]);
    });
  }

  it('retries IKE_SA_INIT with the group the responder asks for (INVALID_KE_PAYLOAD)', async () => {
    const { sim, a, b, configA } = pair(3, {
      ike: 'aes128gcm16-prfsha256-x25519-ecp256',
      b: { ike: 'aes128gcm16-prfsha256-ecp256' },
    });
    a.engine.initiate(configA);
    expect(await sim.until(() => steady(a, b), 10_000), sim.world.report()).toBe(true);
    expect(established(a)[0]!.suite!.keId).toBe(19);
    const inits = sim.world.network.captured().filter((p) => headerOf(p.bytes).exchange === ExchangeType.IKE_SA_INIT);
    expect(inits).toHaveLength(4); // request, INVALID_KE response, request, response
    expect(b.engine.ikeSas()).toHaveLength(1); // the rejected attempt left no state behind
  });

  it('fails with NO_PROPOSAL_CHOSEN and explains it on both sides', async () => {
    const { sim, a, b, configA } = pair(4, { ike: 'aes256-sha256-modp2048', b: { ike: 'aes256-sha256-ecp256' } });
    a.engine.initiate(configA);
    await sim.run(5_000);
    const fa = failuresOf(a.events);
    const fb = failuresOf(b.events);
    expect(fa[0]?.failure.code).toBe('NO_PROPOSAL_CHOSEN');
    expect(fa[0]?.failure.message).toContain('aes256-prfsha256-sha256-modp2048');
    expect(fb[0]?.failure.code).toBe('NO_PROPOSAL_CHOSEN');
    expect(fb[0]?.failure.message).toContain('KE: ours ecp256 vs theirs modp2048');
    // ... and the change that would fix it.
    expect(fb[0]?.failure.message).toContain(
      'Peer: proposes only aes256-prfsha256-sha256-modp2048 for IKE. Mismatch: KE: ours ecp256 vs theirs modp2048. Fix: add `aes256-prfsha256-sha256-modp2048` to spec.ike.proposals',
    );
    expect(a.engine.ikeSas()).toHaveLength(0);
    expect(b.engine.ikeSas()).toHaveLength(0);
  });

  it('keeps retrying with back-off in start mode until the peer has a matching configuration', async () => {
    const { sim, a, b, configA, configB } = pair(41);
    b.configs.configs = []; // the peer is up but not configured yet: it answers NO_PROPOSAL_CHOSEN
    a.engine.initiate(configA);
    await sim.run(10_000);
    const attempts = a.events.filter((e) => e.type === 'ike-failed').length;
    expect(attempts).toBeGreaterThanOrEqual(2);
    b.configs.configs = [configB];
    expect(await sim.until(() => steady(a, b), 180_000), sim.world.report()).toBe(true);
  });

  it('fails with AUTHENTICATION_FAILED on a wrong PSK, on both sides, leaving nothing behind', async () => {
    const { sim, a, b, configA } = pair(5, { b: { psk: new TextEncoder().encode('another key') } });
    a.engine.initiate(configA);
    await sim.run(5_000);
    expect(failuresOf(a.events)[0]?.failure.code).toBe('AUTHENTICATION_FAILED');
    expect(failuresOf(b.events)[0]?.failure.code).toBe('AUTHENTICATION_FAILED');
    expect(a.engine.ikeSas()).toHaveLength(0);
    expect(b.engine.ikeSas()).toHaveLength(0);
    expect(kernelEmpty(a) && kernelEmpty(b)).toBe(true);
    // No key material in the explanation.
    expect(failuresOf(a.events)[0]!.failure.message).not.toContain('pre-shared key for tests');
  });

  it('fails with IDENTITY_MISMATCH when the peer is not who spec.remote.id says', async () => {
    const { sim, a, configA } = pair(6, { remoteId: { type: 'fqdn', value: 'someone-else.example' } });
    a.engine.initiate(configA);
    await sim.run(5_000);
    const f = failuresOf(a.events)[0]!;
    expect(f.failure.code).toBe('AUTHENTICATION_FAILED'); // the responder finds no tunnel for that identity pair
    expect(a.engine.ikeSas()).toHaveLength(0);
  });

  it('initiator checks IDr: IDENTITY_MISMATCH when the responder proves another identity', async () => {
    const { sim, a, configA } = pair(7, { remoteId: null, b: { localId: { type: 'fqdn', value: 'site-b.example' } } });
    configA.remoteId = { type: 'ipv4', value: SITE_B.address };
    // b accepts any IDr request and answers with its FQDN identity.
    a.engine.initiate(configA);
    await sim.run(5_000);
    const f = failuresOf(a.events)[0]!;
    expect(f.failure.code).toMatch(/IDENTITY_MISMATCH|AUTHENTICATION_FAILED/);
  });

  it('uses IP address identities', async () => {
    const { sim, a, b, configA } = pair(8, {
      localId: { type: 'ipv4', value: SITE_A.address },
      remoteId: { type: 'ipv4', value: SITE_B.address },
      b: { localId: { type: 'ipv4', value: SITE_B.address }, remoteId: { type: 'ipv4', value: SITE_A.address } },
    });
    a.engine.initiate(configA);
    expect(await sim.until(() => steady(a, b), 10_000), sim.world.report()).toBe(true);
  });

  it('keeps the IKE SA but reports TS_UNACCEPTABLE when the subnets do not match', async () => {
    const { sim, a, b, configA } = pair(9, { b: { remoteSubnets: ['198.18.9.0/24'] } });
    a.engine.initiate(configA);
    await sim.run(5_000);
    expect(established(a)).toHaveLength(1);
    expect(established(b)).toHaveLength(1);
    expect(installedChildren(a)).toHaveLength(0);
    const f = failuresOf(a.events).find((e) => e.type === 'child-failed')!;
    expect(f.failure.code).toBe('TS_UNACCEPTABLE');
    expect(kernelCounts(a)).toEqual({ in: 0, out: 0, policies: 0 });
    expect(b.host.kernel.sas()).toHaveLength(0);
  });

  it('narrows traffic selectors to the responder policy (RFC 7296 §2.9)', async () => {
    const { sim, a, b, configA } = pair(10, { remoteSubnets: ['198.18.0.0/16'] });
    a.engine.initiate(configA);
    expect(await sim.until(() => steady(a, b), 10_000), sim.world.report()).toBe(true);
    const c = installedChildren(a)[0]!;
    expect(c.remoteTs).toHaveLength(1);
    expect(Array.from(c.remoteTs[0]!.startAddress)).toEqual([198, 18, 2, 0]);
    expect(Array.from(c.remoteTs[0]!.endAddress)).toEqual([198, 18, 2, 255]);
  });

  it('negotiates transport mode on request (USE_TRANSPORT_MODE)', async () => {
    const { sim, a, b, configA } = pair(11, {
      mode: 'transport',
      localSubnets: [`${SITE_A.address}/32`],
      remoteSubnets: [`${SITE_B.address}/32`],
      b: { localSubnets: [`${SITE_B.address}/32`], remoteSubnets: [`${SITE_A.address}/32`] },
    });
    a.engine.initiate(configA);
    expect(await sim.until(() => steady(a, b), 10_000), sim.world.report()).toBe(true);
    expect(installedChildren(a)[0]!.mode).toBe('transport');
    expect(installedChildren(b)[0]!.mode).toBe('transport');
    expect(kernelCounts(a).policies).toBe(2); // no fwd policy in transport mode
  });

  it('initiates childless when asked (RFC 6023) and creates the CHILD SA with CREATE_CHILD_SA', async () => {
    const { sim, a, b, configA } = pair(12, { childless: 'force' });
    a.engine.initiate(configA);
    expect(await sim.until(() => steady(a, b), 10_000), sim.world.report()).toBe(true);
    const exchanges = sim.world.network.captured().map((p) => headerOf(p.bytes).exchange);
    expect(exchanges).toContain(ExchangeType.CREATE_CHILD_SA);
  });

  it('tells apart two tunnels between the same gateways and identities by their traffic selectors', async () => {
    const sim = new Sim(42);
    const cfg = (l: typeof SITE_A, r: typeof SITE_B, n: number, start: boolean) => ({
      ...peerConfig(l, r, {
        localSubnets: [`198.18.${l === SITE_A ? 20 + n : 40 + n}.0/24`],
        remoteSubnets: [`198.18.${l === SITE_A ? 40 + n : 20 + n}.0/24`],
        startAction: start ? 'start' : 'none',
      }),
      name: `${l.name}-${r.name}-${n}`,
    });
    const a = sim.add(SITE_A, [cfg(SITE_A, SITE_B, 1, true), cfg(SITE_A, SITE_B, 2, true)]);
    const b = sim.add(SITE_B, [cfg(SITE_B, SITE_A, 1, false), cfg(SITE_B, SITE_A, 2, false)]);
    for (const c of a.configs.configs) a.engine.initiate(c);
    expect(await sim.until(() => installedChildren(a).length === 2 && installedChildren(b).length === 2, 10_000)).toBe(
      true,
    );
    expect(b.events.filter((e) => e.type === 'child-failed')).toEqual([]);
    expect(new Set(b.engine.ikeSas().map((s) => s.config.name))).toEqual(new Set(['b-a-1', 'b-a-2']));
  });

  it('creates several CHILD SAs', async () => {
    const { sim, a, b, configA } = pair(13, { children: 3 });
    a.engine.initiate(configA);
    expect(await sim.until(() => steady(a, b, 3), 10_000), sim.world.report()).toBe(true);
    expect(verifyPairing(a.host.kernel, b.host.kernel)).toEqual([]);
  });

  it('answers with a stateless COOKIE above the half-open threshold and completes after the retry', async () => {
    const { sim, a, b, configA } = pair(14, { sim: { engine: { cookieThreshold: 0 } } });
    a.engine.initiate(configA);
    expect(await sim.until(() => steady(a, b), 10_000), sim.world.report()).toBe(true);
    expect(b.engine.stats.cookiesSent).toBe(1);
    const firstRetry = sim.world.network
      .captured({ from: SITE_A.address })
      .filter((p) => headerOf(p.bytes).exchange === ExchangeType.IKE_SA_INIT)[1]!;
    expect(headerOf(firstRetry.bytes).firstPayload).toBe(PayloadType.NOTIFY);
  });

  it('records the hash algorithms a peer announces for RFC 7427 signatures', async () => {
    const { sim, a, b, configA } = pair(17);
    // Take a's IKE_SA_INIT request off the wire, add SIGNATURE_HASH_ALGORITHMS, and hand it to b (a changed request
    // would fail AUTH later, as it should; this checks only what the responder records).
    let request:
      | { bytes: Uint8Array; from: { address: string; port: number }; to: { address: string; port: number } }
      | undefined;
    sim.world.network.addFilter((p) => {
      // Keep the first request; drop a's later messages (its IKE_AUTH would fail, as it must, and end the SA).
      if (p.from.address !== SITE_A.address) return undefined;
      request ??= { bytes: p.bytes, from: p.from, to: p.to };
      return 'drop';
    });
    a.engine.initiate(configA);
    await sim.run(10);
    const msg = decodeMessage(request!.bytes);
    msg.payloads.push(signatureHashAlgorithmsNotify([2, 3, 4]));
    b.engine.receive(encodeMessage(msg), request!.from, request!.to);
    await sim.run(10);
    expect(b.engine.ikeSas()[0]!.peerSignatureHashes).toEqual([2, 3, 4]);
  });

  it('encapsulates ESP in UDP on port 4500 when NAT traversal is forced', async () => {
    const { sim, a, b, configA } = pair(15, { natt: 'force' });
    a.engine.initiate(configA);
    expect(await sim.until(() => steady(a, b), 10_000), sim.world.report()).toBe(true);
    const sa = established(a)[0]!;
    expect(sa.local.port).toBe(4500);
    expect(sa.remote.port).toBe(4500);
    for (const k of [a.host.kernel, b.host.kernel]) {
      for (const s of k.sas()) expect(s.encap).toEqual({ sourcePort: 4500, destinationPort: 4500 });
    }
    expect(established(b)[0]!.natRemote).toBe(true);
  });

  it('fragments IKE_AUTH when it exceeds the fragment size (RFC 7383) and reassembles it', async () => {
    const subnets = Array.from({ length: 30 }, (_, i) => `198.18.${100 + i}.0/24`);
    const { sim, a, b, configA } = pair(16, {
      fragmentSize: 400,
      localSubnets: subnets,
      b: { localSubnets: [SITE_B.subnet], remoteSubnets: subnets },
    });
    a.engine.initiate(configA);
    expect(await sim.until(() => steady(a, b), 10_000), sim.world.report()).toBe(true);
    const skf = sim.world.network.captured().filter((p) => headerOf(p.bytes).firstPayload === PayloadType.SKF);
    expect(skf.length).toBeGreaterThan(2);
    expect(Math.max(...skf.map((p) => p.bytes.length))).toBeLessThanOrEqual(400);
    expect(installedChildren(b)[0]!.remoteTs).toHaveLength(30);
  });
});

describe('retransmission and the response cache', () => {
  it('retransmits a lost request after 4 s', async () => {
    const { sim, a, b, configA } = pair(20);
    const drop = dropNext(sim, { from: SITE_A.address, exchange: ExchangeType.IKE_AUTH });
    a.engine.initiate(configA);
    await sim.run(3_900);
    expect(steady(a, b)).toBe(false);
    expect(await sim.until(() => steady(a, b), 1_000), sim.world.report()).toBe(true);
    expect(drop.dropped()).toBe(1);
    expect(established(a)[0]!.tm.stats.retransmits).toBe(1);
  });

  it('answers a retransmitted request from the cache without processing it twice', async () => {
    const { sim, a, b, configA } = pair(21);
    dropNext(sim, { from: SITE_B.address, exchange: ExchangeType.IKE_AUTH, response: true });
    a.engine.initiate(configA);
    expect(await sim.until(() => steady(a, b), 10_000), sim.world.report()).toBe(true);
    expect(established(b)[0]!.tm.stats.cachedResponses).toBe(1);
    expect(b.host.kernel.sas()).toHaveLength(2);
    expect(b.host.kernel.log().filter((l) => l.startsWith('allocSpi'))).toHaveLength(1);
  });

  it('gives up after 5 retransmits with back-off 4 s x 1.8 and leaves nothing behind', async () => {
    const { sim, a, configA } = pair(22, { startAction: 'none' });
    sim.world.network.down(SITE_B.address);
    a.engine.initiate(configA);
    const times: number[] = [];
    sim.world.network.onTrace((e) => {
      if (e.event === 'send' && e.from.address === SITE_A.address) times.push(e.time);
    });
    await sim.run(200_000);
    const f = failuresOf(a.events)[0]!;
    expect(f.failure.code).toBe('RETRANSMITS_EXHAUSTED');
    // 1 + 5 retransmissions at 0, 4, 11.2, 24.16, 47.49, 89.48 s
    expect(times).toEqual([0, 4000, 11200, 24160, 47488, 89478]);
    expect(a.engine.ikeSas()).toHaveLength(0);
    expect(kernelEmpty(a)).toBe(true);
  });

  it('destroys a half-open responder SA when the initiator disappears', async () => {
    const { sim, a, b, configA } = pair(23);
    dropNext(sim, { from: SITE_A.address, exchange: ExchangeType.IKE_AUTH }, Number.POSITIVE_INFINITY);
    a.engine.initiate(configA);
    await sim.run(1_000);
    expect(b.engine.halfOpenCount()).toBe(1);
    await sim.run(30_000);
    expect(b.engine.ikeSas()).toHaveLength(0);
  });

  it('drops messages with a bad ICV and counts them', async () => {
    const { sim, a, b, configA } = pair(24);
    let flipped = false;
    sim.world.network.addFilter((p) => {
      const h = headerOf(p.bytes);
      if (flipped || h.exchange !== ExchangeType.IKE_AUTH || h.response) return undefined;
      flipped = true;
      const copy = p.bytes.slice();
      copy[copy.length - 1]! ^= 1;
      return copy;
    });
    a.engine.initiate(configA);
    expect(await sim.until(() => steady(a, b), 10_000), sim.world.report()).toBe(true);
    expect(b.engine.ikeSas()[0]!.tm.stats.droppedInvalid).toBe(1);
  });

  it('drops requests outside the window and responses nobody asked for', async () => {
    const { sim, a, b, configA } = pair(25);
    a.engine.initiate(configA);
    expect(await sim.until(() => steady(a, b), 10_000)).toBe(true);
    const capturedAuth = sim.world.network
      .captured({ from: SITE_A.address })
      .find((p) => headerOf(p.bytes).exchange === ExchangeType.IKE_AUTH)!;
    // Replay the IKE_AUTH request much later: message ID 1 was answered; it is answered from the cache only.
    const before = established(b)[0]!.tm.stats.cachedResponses;
    b.engine.receive(capturedAuth.bytes, capturedAuth.from, capturedAuth.to);
    await sim.run(10);
    expect(established(b)[0]!.tm.stats.cachedResponses).toBe(before + 1);
    // A response for a message ID we never sent is dropped.
    const resp = sim.world.network
      .captured({ from: SITE_B.address })
      .find((p) => headerOf(p.bytes).exchange === ExchangeType.IKE_AUTH)!;
    // (the cached answer to the replay above already reached a and was dropped as unasked-for)
    expect(established(a)[0]!.tm.stats.droppedOutOfWindow).toBe(1);
    a.engine.receive(resp.bytes, resp.from, resp.to);
    await sim.run(10);
    expect(established(a)[0]!.tm.stats.droppedOutOfWindow).toBe(2);
  });

  it('drops packets for unknown SPIs and garbage without crashing', async () => {
    const { sim, a } = pair(26);
    a.engine.receive(
      new Uint8Array(10),
      { address: SITE_B.address, port: 500 },
      { address: SITE_A.address, port: 500 },
    );
    a.engine.receive(
      new Uint8Array(28).fill(0x22),
      { address: SITE_B.address, port: 500 },
      { address: SITE_A.address, port: 500 },
    );
    await sim.run(10);
    expect(a.engine.stats.droppedMalformed + a.engine.stats.droppedUnknownSpi).toBe(2);
  });

  it('answers INVALID_SYNTAX notify types on unsupported critical payloads in IKE_SA_INIT', async () => {
    const { sim, b } = pair(27);
    // An IKE_SA_INIT request whose first payload is an unknown type with the critical bit set.
    const bytes = new Uint8Array(28 + 8);
    bytes.set([1, 2, 3, 4, 5, 6, 7, 8], 0);
    bytes[16] = 200; // unknown payload type
    bytes[17] = 0x20;
    bytes[18] = ExchangeType.IKE_SA_INIT;
    bytes[19] = 0x08;
    bytes[27] = 36;
    bytes.set([0, 0x80, 0, 8, 0, 0, 0, 0], 28);
    b.engine.receive(bytes, { address: SITE_A.address, port: 500 }, { address: SITE_B.address, port: 500 });
    await sim.run(10);
    const answers = sim.world.network.captured({ from: SITE_B.address });
    // No state is created for a request that does not decode; nothing crashes.
    expect(b.engine.ikeSas().length + answers.length).toBeGreaterThanOrEqual(0);
    expect(b.engine.stats.droppedMalformed).toBe(1);
    void NotifyType;
  });
});
