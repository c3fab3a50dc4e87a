/**
 * Interop lifecycle with strongSwan's charon: CHILD and IKE rekeys initiated by each side, DPD each way, DELETE from
 * each side, charon killed and restarted (our DPD notices, we re-establish; or charon initiates with
 * INITIAL_CONTACT), charon reauthentication, childless initiation, multi-subnet CHILD SAs and narrowing, INVALID_KE
 * in both directions, cookies with charon's and with our half-open threshold lowered, SIGTERM of our agent; negative
 * cases: wrong PSK, no common proposal, non-matching traffic selectors (each in both roles), and a peer that never
 * answers.
 *
 * One charon and one agent for the file (short retransmits on both: charon 1 s x1.4, 3 tries; ours 500 ms x1.5,
 * 3 tries); each test loads its own connection and tunnel and removes them afterwards.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  Agent,
  type AgentStatusJson,
  type AgentTunnel,
  Charon,
  type CharonOptions,
  cleanupStale,
  ensurePrerequisites,
  ikeTokens,
  type LoadHandle,
  proposalTokens,
  type SwConnection,
  type SwIkeSa,
  startLoad,
  Topology,
  waitFor,
} from './harness.js';

const PSK = 'lifecycle pre-shared key, 32 b.!';
const IKE = 'aes128gcm16-prfsha256-x25519';
const ESP = 'aes128gcm16';
const RETRANSMIT = { timeout: '500ms', base: 1.5, tries: 3 };

interface PairOptions {
  oursIke?: string[];
  swIke?: string[];
  oursEsp?: string[];
  swEsp?: string[];
  oursPsk?: string;
  swPsk?: string;
  /** Our view of charon's subnet (198.18.1.0/24 matches). */
  oursRemoteNet?: string;
  oursLocalNets?: string[];
  oursRemoteNets?: string[];
  swLocalTs?: string[];
  swRemoteTs?: string[];
  espLifetime?: string;
  ikeLifetime?: string;
  dpdInterval?: string;
  dpdAction?: 'clear' | 'restart' | 'hold';
  swDpdDelay?: string;
  swChildless?: 'force';
  startAction?: 'start' | 'none';
}

describe('interop lifecycle with strongSwan charon', () => {
  let topo: Topology;
  let charon: Charon;
  let agent: Agent;
  let n = 0;
  let current: { name: string; key: string; conn: SwConnection; tunnel: AgentTunnel } | undefined;

  const startCharon = async (options: CharonOptions = {}) => {
    await charon?.stop();
    charon = new Charon(topo.s, topo.dir, options);
    await charon.start();
  };

  beforeAll(async () => {
    ensurePrerequisites();
    cleanupStale();
    topo = new Topology('l');
    // A second address on our side for the load generator (the agent holds 500/4500 on the first).
    topo.addAddress(topo.o, '192.0.2.3/24');
    agent = new Agent(topo.o, topo.dir, { addresses: [topo.o.v4], retransmit: RETRANSMIT });
    agent.setTunnels([]);
    await Promise.all([startCharon(), agent.start()]);
  });

  afterEach(async () => {
    if (!current) return;
    const key = current.key;
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

  /** Load a connection into charon and the matching tunnel into our agent (ours initiates unless told not to). */
  async function setup(o: PairOptions = {}) {
    const name = `l${++n}`;
    const key = `default/${name}`;
    const conn: SwConnection = {
      name,
      localAddrs: [topo.s.v4],
      remoteAddrs: [topo.o.v4],
      localId: 'sw.example',
      remoteId: 'ours.example',
      psk: o.swPsk ?? PSK,
      proposals: o.swIke ?? [IKE],
      ...(o.swDpdDelay ? { dpdDelay: o.swDpdDelay } : {}),
      ...(o.swChildless ? { childless: o.swChildless } : {}),
      children: [
        {
          name: `${name}c`,
          localTs: o.swLocalTs ?? ['198.18.1.0/24'],
          remoteTs: o.swRemoteTs ?? ['198.18.2.0/24'],
          espProposals: o.swEsp ?? [ESP],
        },
      ],
    };
    const tunnel: AgentTunnel = {
      name,
      localAddress: topo.o.v4,
      localSubnets: o.oursLocalNets ?? ['198.18.2.0/24'],
      localId: 'ours.example',
      remoteAddress: topo.s.v4,
      remoteSubnets: o.oursRemoteNets ?? [o.oursRemoteNet ?? '198.18.1.0/24'],
      remoteId: 'sw.example',
      psk: o.oursPsk ?? PSK,
      ikeProposals: o.oursIke ?? [IKE],
      espProposals: o.oursEsp ?? [ESP],
      ...(o.espLifetime ? { espLifetime: o.espLifetime } : {}),
      ...(o.ikeLifetime ? { ikeLifetime: o.ikeLifetime } : {}),
      ...(o.dpdInterval ? { dpdInterval: o.dpdInterval } : {}),
      ...(o.dpdAction ? { dpdAction: o.dpdAction } : {}),
      startAction: o.startAction ?? 'start',
    };
    await charon.load([conn]);
    const mark = charon.mark();
    const from = agent.logs.length;
    agent.setTunnels([tunnel]);
    current = { name, key, conn, tunnel };
    await agent.waitLog((l) => l.event === 'tunnel-added' && l.tunnel === key, from, 20_000, `${key} added`);
    return { name, key, conn, tunnel, mark, from, child: `${name}c` };
  }

  type Setup = Awaited<ReturnType<typeof setup>>;

  async function theirs(name: string): Promise<SwIkeSa | undefined> {
    return (await charon.listSas()).find((x) => x.conn === name);
  }

  async function ours(name: string): Promise<AgentStatusJson['tunnels'][number]> {
    const t = agent.tunnel(await agent.status(), name);
    if (!t) throw new Error(`no tunnel ${name} in ipsec-mesh status`);
    return t;
  }

  /** Wait until charon has the IKE SA established with exactly one installed CHILD SA. */
  async function charonUp(name: string, timeoutMs = 30_000): Promise<SwIkeSa> {
    return waitFor(
      () =>
        `charon's SAs of ${name}: ${charon
          .lines()
          .slice(-12)
          .map((l) => l.text)
          .join('\n')}`,
      async () => {
        const sa = await theirs(name);
        return sa?.state === 'ESTABLISHED' && sa.children.filter((c) => c.state === 'INSTALLED').length === 1
          ? sa
          : undefined;
      },
      timeoutMs,
      100,
    );
  }

  /** Both sides agree: the same IKE SPIs, one CHILD SA each with mirrored SPIs. Retries across a rekey in flight. */
  type OurTunnel = AgentStatusJson['tunnels'][number];
  interface Agreement {
    sw: SwIkeSa;
    us: OurTunnel;
    /** The installed CHILD SA on each side (charon may still list a rekeyed or deleting one). */
    swChild: SwIkeSa['children'][number];
    usChild: OurTunnel['childSAs'][number];
  }

  async function agree(name: string, timeoutMs = 30_000): Promise<Agreement> {
    let last = '';
    return waitFor(
      () => `both sides to agree on ${name}: ${last}`,
      async () => {
        // Ours first: the status command spends its time starting up, the agent answers at its end, and charon's
        // list follows within milliseconds, so a rekey in flight rarely falls between the two snapshots.
        const us = await ours(name);
        const sw = await theirs(name);
        last = JSON.stringify({ sw, us: { ike: us.ikeSA, children: us.childSAs } });
        if (sw?.state !== 'ESTABLISHED' || us.ikeSA.state !== 'Established') return undefined;
        if (sw.spiI !== us.ikeSA.spiI || sw.spiR !== us.ikeSA.spiR) return undefined;
        const swc = sw.children.filter((c) => c.state === 'INSTALLED');
        const usc = us.childSAs.filter((c) => c.state.toLowerCase() === 'installed');
        if (swc.length !== 1 || usc.length !== 1) return undefined;
        if (usc[0]!.spiIn !== swc[0]!.spiOut || usc[0]!.spiOut !== swc[0]!.spiIn) return undefined;
        return { sw, us, swChild: swc[0]!, usChild: usc[0]! };
      },
      timeoutMs,
      200,
    );
  }

  async function establish(s: Setup, by: 'ours' | 'charon') {
    if (by === 'charon') {
      const r = await charon.initiate({ child: s.child, timeoutS: 10 });
      expect(r.code, `swanctl --initiate: ${r.stdout}${r.stderr}\n${agent.tail()}`).toBe(0);
    } else {
      await agent.waitLog(
        (l) => l.event === 'child-installed' && l.tunnel === s.key,
        s.from,
        30_000,
        `CHILD SA of ${s.key}`,
      );
    }
    await charonUp(s.name);
    return agree(s.name);
  }

  /** charon keeps a rekeyed CHILD SA's inbound half for delete_rekeyed_delay, listed as DELETED: skip those. */
  const live = (children: SwIkeSa['children'] | undefined) => (children ?? []).filter((c) => c.state !== 'DELETED');

  const charonSaw = (s: Setup, re: RegExp) => charon.lines(s.mark).filter((l) => re.test(l.text));

  // ---- rekeying ---------------------------------------------------------------------------------------------------

  it('CHILD rekey initiated by charon (swanctl --rekey --child)', async () => {
    const s = await setup();
    const before = await establish(s, 'ours');
    const from = agent.logs.length;
    await charon.rekey({ child: s.child });
    await agent.waitLog(
      (l) => l.event === 'child-installed' && l.tunnel === s.key && l.rekey === true,
      from,
      20_000,
      'rekeyed CHILD SA',
    );
    const after = await agree(s.name);
    expect(after.swChild.spiIn).not.toBe(before.swChild.spiIn);
    expect(after.usChild.spiIn).not.toBe(before.usChild.spiIn);
    expect([after.sw.spiI, after.sw.spiR]).toEqual([before.sw.spiI, before.sw.spiR]);
    // The old CHILD SA is gone on both sides.
    await waitFor('the old CHILD SA to go', async () => live((await theirs(s.name))?.children).length === 1);
    expect((await ours(s.name)).childSAs).toHaveLength(1);
  }, 90_000);

  it('CHILD rekey initiated by us (esp.lifetime 5s)', async () => {
    const s = await setup({ espLifetime: '5s', startAction: 'none' });
    const before = await establish(s, 'charon');
    const from = agent.logs.length;
    await agent.waitLog(
      (l) => l.event === 'child-installed' && l.tunnel === s.key && l.rekey === true,
      from,
      20_000,
      'our CHILD rekey',
    );
    expect(charonSaw(s, /parsed CREATE_CHILD_SA request \d+ \[ N\(REKEY_SA\)/).length).toBeGreaterThan(0);
    const after = await agree(s.name);
    expect(after.swChild.spiIn).not.toBe(before.swChild.spiIn);
    // The old CHILD SA was deleted on both sides.
    await waitFor('the old CHILD SA to go', async () => live((await theirs(s.name))?.children).length === 1);
  }, 90_000);

  it('IKE rekey initiated by charon (swanctl --rekey --ike); the CHILD SA moves over', async () => {
    const s = await setup();
    const before = await establish(s, 'ours');
    const from = agent.logs.length;
    await charon.rekey({ ike: s.name });
    await agent.waitLog((l) => l.event === 'ike-rekeyed' && l.tunnel === s.key, from, 20_000, 'IKE rekey');
    const after = await agree(s.name);
    expect(after.sw.spiI).not.toBe(before.sw.spiI);
    expect(after.usChild.spiIn).toBe(before.usChild.spiIn);
    expect((await charon.listSas()).filter((x) => x.conn === s.name)).toHaveLength(1);
  }, 90_000);

  it('IKE rekey initiated by us (ike.lifetime 6s)', async () => {
    const s = await setup({ ikeLifetime: '6s', startAction: 'none' });
    const before = await establish(s, 'charon');
    const from = agent.logs.length;
    await agent.waitLog((l) => l.event === 'ike-rekeyed' && l.tunnel === s.key, from, 20_000, 'our IKE rekey');
    // An IKE rekey request: SA, KE and Nonce, no traffic selectors.
    expect(charonSaw(s, /parsed CREATE_CHILD_SA request \d+ \[ (SA|KE|No| )+\]/).length).toBeGreaterThan(0);
    const after = await agree(s.name);
    expect(after.sw.spiI).not.toBe(before.sw.spiI);
    expect(after.usChild.spiIn).toBe(before.usChild.spiIn);
  }, 90_000);

  // ---- liveness ---------------------------------------------------------------------------------------------------

  it('our DPD: empty INFORMATIONALs every second, answered by charon', async () => {
    const s = await setup({ dpdInterval: '1s' });
    const before = await establish(s, 'ours');
    await waitFor(
      'three DPD requests at charon',
      () => charonSaw(s, /parsed INFORMATIONAL request \d+ \[ \]/).length >= 3,
      15_000,
    );
    const after = await agree(s.name);
    expect(after.sw.spiI).toBe(before.sw.spiI);
  }, 90_000);

  it("charon's DPD (dpd_delay 1s) is answered by us", async () => {
    const s = await setup({ swDpdDelay: '1s', startAction: 'none' });
    const before = await establish(s, 'charon');
    await waitFor(
      'three DPD responses at charon',
      () => charonSaw(s, /parsed INFORMATIONAL response \d+ \[ \]/).length >= 3,
      15_000,
    );
    const after = await agree(s.name);
    expect(after.sw.spiI).toBe(before.sw.spiI);
  }, 90_000);

  // ---- deletes ----------------------------------------------------------------------------------------------------

  it('DELETE of the IKE SA from charon', async () => {
    const s = await setup({ startAction: 'none' });
    const up = await establish(s, 'charon');
    const from = agent.logs.length;
    const t = await charon.terminate({ ike: s.name });
    expect(t.code, t.stdout).toBe(0);
    await agent.waitLog((l) => l.event === 'ike-deleted' && l.tunnel === s.key, from, 20_000, 'IKE SA deleted');
    const us = await ours(s.name);
    expect(us.ikeSA.state === 'Established' && us.ikeSA.spiI === up.sw.spiI).toBe(false);
    expect(us.childSAs.filter((c) => c.spiIn === up.usChild.spiIn)).toHaveLength(0);
  }, 90_000);

  it('DELETE of the IKE SA from charon, our tunnel in start mode: we negotiate it again', async () => {
    const s = await setup();
    const up = await establish(s, 'ours');
    const from = agent.logs.length;
    const t = await charon.terminate({ ike: s.name });
    expect(t.code, t.stdout).toBe(0);
    await agent.waitLog((l) => l.event === 'ike-deleted' && l.tunnel === s.key, from, 20_000, 'IKE SA deleted');
    await agent.waitLog(
      (l) => l.event === 'child-installed' && l.tunnel === s.key,
      from,
      30_000,
      'CHILD SA negotiated again',
    );
    await charonUp(s.name);
    const again = await agree(s.name);
    expect(again.sw.spiI).not.toBe(up.sw.spiI);
  }, 90_000);

  it('DELETE of the CHILD SA from charon keeps the IKE SA', async () => {
    const s = await setup({ startAction: 'none' });
    const up = await establish(s, 'charon');
    const from = agent.logs.length;
    const t = await charon.terminate({ child: s.child });
    expect(t.code, t.stdout).toBe(0);
    await agent.waitLog((l) => l.event === 'child-deleted' && l.tunnel === s.key, from, 20_000, 'CHILD SA deleted');
    const us = await ours(s.name);
    expect(us.ikeSA.state).toBe('Established');
    expect(us.ikeSA.spiI).toBe(up.sw.spiI);
    expect(us.childSAs).toHaveLength(0);
    expect((await theirs(s.name))?.children ?? []).toHaveLength(0);
  }, 90_000);

  it('DELETE from us (tunnel removed from the config directory)', async () => {
    const s = await setup();
    const up = await establish(s, 'ours');
    const from = agent.logs.length;
    current = undefined;
    agent.setTunnels([]);
    await agent.waitLog((l) => l.event === 'tunnel-removed' && l.tunnel === s.key, from, 20_000, 'tunnel removed');
    await waitFor('charon to drop the SA', async () => !(await theirs(s.name)), 20_000);
    expect(charonSaw(s, new RegExp(`received DELETE for IKE_SA ${s.name}`)).length).toBe(1);
    expect(up.sw.state).toBe('ESTABLISHED');
  }, 90_000);

  // ---- peer restart -----------------------------------------------------------------------------------------------

  it('charon killed and restarted: our DPD detects it and we re-establish', async () => {
    const s = await setup({ dpdInterval: '1s', dpdAction: 'restart' });
    const before = await establish(s, 'ours');
    await charon.kill();
    await charon.start();
    await charon.load([s.conn]);
    const from = agent.logs.length;
    await agent.waitLog((l) => l.event === 'peer-dead' && l.tunnel === s.key, from, 20_000, 'peer-dead');
    await agent.waitLog(
      (l) => l.event === 'child-installed' && l.tunnel === s.key,
      from,
      20_000,
      're-established CHILD SA',
    );
    const after = await agree(s.name);
    expect(after.sw.spiI).not.toBe(before.sw.spiI);
    expect(after.us.ikeSA.initiator ?? true).toBe(true);
  }, 120_000);

  it('charon killed, restarted and initiating: its INITIAL_CONTACT replaces our stale IKE SA', async () => {
    const s = await setup({ startAction: 'none' });
    const before = await establish(s, 'charon');
    await charon.kill();
    await charon.start();
    await charon.load([s.conn]);
    const from = agent.logs.length;
    const r = await charon.initiate({ child: s.child, timeoutS: 10 });
    expect(r.code, r.stdout).toBe(0);
    expect(r.stdout).toMatch(/N\(INIT_CONTACT\)/);
    await agent.waitLog((l) => l.event === 'ike-deleted' && l.tunnel === s.key, from, 20_000, 'stale IKE SA removed');
    const after = await agree(s.name);
    expect(after.sw.spiI).not.toBe(before.sw.spiI);
    expect(after.usChild.spiIn).not.toBe(before.usChild.spiIn);
  }, 120_000);

  it('charon reauthenticates (swanctl --rekey --reauth): a new IKE SA replaces the old one', async () => {
    const s = await setup({ startAction: 'none' });
    const before = await establish(s, 'charon');
    const from = agent.logs.length;
    await charon.rekey({ ike: s.name, reauth: true });
    await agent.waitLog((l) => l.event === 'ike-deleted' && l.tunnel === s.key, from, 20_000, 'old IKE SA deleted');
    const after = await agree(s.name);
    expect(after.sw.spiI).not.toBe(before.sw.spiI);
    expect((await charon.listSas()).filter((x) => x.conn === s.name)).toHaveLength(1);
  }, 120_000);

  it('charon initiates childless (RFC 6023), then creates the CHILD SA with CREATE_CHILD_SA', async () => {
    const s = await setup({ startAction: 'none', swChildless: 'force' });
    const up = await establish(s, 'charon');
    expect(charonSaw(s, /generating IKE_AUTH request 1 \[ IDi (?!.*\bSA\b)/).length).toBe(1);
    expect(charonSaw(s, /generating CREATE_CHILD_SA request 2 \[ SA No (KE )?TSi TSr/).length).toBe(1);
    expect(up.usChild.localTs).toEqual(['198.18.2.0/24']);
  }, 90_000);

  // ---- traffic selectors ------------------------------------------------------------------------------------------

  it('two subnets per side in one CHILD SA', async () => {
    const s = await setup({
      swLocalTs: ['198.18.1.0/24', '198.18.3.0/24'],
      swRemoteTs: ['198.18.2.0/24', '198.18.4.0/24'],
      oursLocalNets: ['198.18.2.0/24', '198.18.4.0/24'],
      oursRemoteNets: ['198.18.1.0/24', '198.18.3.0/24'],
    });
    const up = await establish(s, 'ours');
    expect(up.swChild.localTs).toEqual(['198.18.1.0/24', '198.18.3.0/24']);
    expect(up.swChild.remoteTs).toEqual(['198.18.2.0/24', '198.18.4.0/24']);
    expect([...up.usChild.localTs].sort()).toEqual(['198.18.2.0/24', '198.18.4.0/24']);
    expect([...up.usChild.remoteTs].sort()).toEqual(['198.18.1.0/24', '198.18.3.0/24']);
  }, 90_000);

  it('narrowing by us as responder: charon offers a /24 inside our /16', async () => {
    const s = await setup({ oursRemoteNets: ['198.18.0.0/16'], startAction: 'none' });
    const up = await establish(s, 'charon');
    expect(up.usChild.remoteTs).toEqual(['198.18.1.0/24']);
    expect(up.swChild.localTs).toEqual(['198.18.1.0/24']);
  }, 90_000);

  it('narrowing by charon: we ask for a /16, charon grants its /24', async () => {
    const s = await setup({ oursRemoteNets: ['198.18.0.0/16'] });
    const up = await establish(s, 'ours');
    expect(up.usChild.remoteTs).toEqual(['198.18.1.0/24']);
    expect(up.swChild.localTs).toEqual(['198.18.1.0/24']);
  }, 90_000);

  // ---- INVALID_KE and cookies -------------------------------------------------------------------------------------

  it('INVALID_KE: our first KE guess (x25519) is refused, we retry with ecp256', async () => {
    const s = await setup({
      oursIke: ['aes128gcm16-prfsha256-x25519-ecp256'],
      swIke: ['aes128gcm16-prfsha256-ecp256'],
    });
    const up = await establish(s, 'ours');
    expect(charonSaw(s, /DH group CURVE_25519 unacceptable, requesting ECP_256/).length).toBeGreaterThan(0);
    expect(ikeTokens(up.sw)).toContain('ecp256');
    expect(proposalTokens(up.us.ikeSA.algorithms, 'ike')).toContain('ecp256');
  }, 90_000);

  it("INVALID_KE: charon's first guess (ecp256) is refused by us, it retries with x25519", async () => {
    const s = await setup({
      oursIke: ['aes128gcm16-prfsha256-x25519'],
      swIke: ['aes128gcm16-prfsha256-ecp256-x25519'],
      startAction: 'none',
    });
    const up = await establish(s, 'charon');
    expect(charonSaw(s, /peer didn't accept DH group ECP_256, it requested CURVE_25519/).length).toBeGreaterThan(0);
    expect(ikeTokens(up.sw)).toContain('x25519');
  }, 90_000);

  it("cookies: charon's cookie_threshold lowered to 1 while a half-open SA exists", async () => {
    await startCharon({ cookieThreshold: 1 });
    let load: LoadHandle | undefined;
    try {
      const s = await setup({ startAction: 'none' });
      // One half-open IKE SA at charon from another address (our engine, answers ignored): charon needs a
      // connection for that address, or it refuses the IKE_SA_INIT instead of keeping it half-open.
      await charon.load([
        s.conn,
        { ...s.conn, name: 'halfopen', remoteAddrs: ['192.0.2.3'], remoteId: 'half-open.example' },
      ]);
      load = startLoad(topo.o, {
        mode: 'half-open',
        count: 2,
        local: '192.0.2.3',
        target: topo.s.v4,
        localId: 'half-open.example',
        remoteId: 'sw.example',
        psk: PSK,
        localNet: '198.18.2.0/24',
        remoteNet: '198.18.1.0/24',
      });
      await load.next('sent', 30_000);
      await waitFor(
        'a half-open SA at charon',
        async () => /(\d+) half-open/.exec(await charon.stats())?.[1] !== '0',
        5000,
      );
      const mark = charon.mark();
      const from = agent.logs.length;
      agent.setTunnels([{ ...s.tunnel, startAction: 'start' }]);
      await agent.waitLog(
        (l) => l.event === 'child-installed' && l.tunnel === s.key,
        from,
        30_000,
        'CHILD SA behind a cookie',
      );
      expect(
        charon.lines(mark).filter((l) => /generating IKE_SA_INIT response 0 \[ N\(COOKIE\) \]/.test(l.text)).length,
      ).toBeGreaterThan(0);
      expect(
        charon.lines(mark).filter((l) => /parsed IKE_SA_INIT request 0 \[ N\(COOKIE\) SA KE No/.test(l.text)).length,
      ).toBeGreaterThan(0);
      await agree(s.name);
    } finally {
      await load?.stop();
      // afterEach terminates with the special charon still running; the next test gets the default one back.
    }
  }, 120_000);

  // ---- negative cases ---------------------------------------------------------------------------------------------

  it('wrong PSK, ours initiating: charon answers AUTHENTICATION_FAILED, our status says so', async () => {
    if ((charon.options.cookieThreshold ?? 30) !== 30) await startCharon();
    const s = await setup({ swPsk: 'a different pre-shared key 12345' });
    const f = await agent.waitLog((l) => l.event === 'ike-failed' && l.tunnel === s.key, s.from, 30_000, 'ike-failed');
    expect(f.code).toBe('AUTHENTICATION_FAILED');
    expect(charonSaw(s, /MAC mismatched/).length).toBeGreaterThan(0);
    expect(charonSaw(s, /generating IKE_AUTH response 1 \[ N\(AUTH_FAILED\) \]/).length).toBeGreaterThan(0);
    const us = await ours(s.name);
    expect(us.ikeSA.lastError?.code).toBe('AUTHENTICATION_FAILED');
    expect(us.ikeSA.lastError?.message.length).toBeGreaterThan(10);
    expect(us.ikeSA.state).not.toBe('Established');
  }, 90_000);

  it('wrong PSK, charon initiating: we answer AUTHENTICATION_FAILED', async () => {
    const s = await setup({ swPsk: 'a different pre-shared key 12345', startAction: 'none' });
    const r = await charon.initiate({ child: s.child, timeoutS: 10 });
    expect(r.code).not.toBe(0);
    expect(r.stdout).toMatch(/received AUTHENTICATION_FAILED notify error/);
    const us = await ours(s.name);
    expect(us.ikeSA.lastError?.code).toBe('AUTHENTICATION_FAILED');
  }, 90_000);

  it('no common proposal, ours initiating: NO_PROPOSAL_CHOSEN', async () => {
    const s = await setup({ swIke: ['aes256-sha512-modp4096'] });
    const f = await agent.waitLog((l) => l.event === 'ike-failed' && l.tunnel === s.key, s.from, 30_000, 'ike-failed');
    expect(f.code).toBe('NO_PROPOSAL_CHOSEN');
    expect(charonSaw(s, /generating IKE_SA_INIT response 0 \[ N\(NO_PROP\) \]/).length).toBeGreaterThan(0);
    expect((await ours(s.name)).ikeSA.lastError?.code).toBe('NO_PROPOSAL_CHOSEN');
  }, 90_000);

  it('no common proposal, charon initiating: we answer NO_PROPOSAL_CHOSEN', async () => {
    const s = await setup({ swIke: ['aes256-sha512-modp4096'], startAction: 'none' });
    const r = await charon.initiate({ child: s.child, timeoutS: 10 });
    expect(r.code).not.toBe(0);
    expect(r.stdout).toMatch(/received NO_PROPOSAL_CHOSEN notify error/);
    expect((await ours(s.name)).ikeSA.lastError?.code).toBe('NO_PROPOSAL_CHOSEN');
  }, 90_000);

  it('no common ESP proposal, ours initiating: IKE SA up, CHILD SA refused with NO_PROPOSAL_CHOSEN', async () => {
    const s = await setup({ swEsp: ['aes256-sha256'] });
    const f = await agent.waitLog(
      (l) => l.event === 'child-failed' && l.tunnel === s.key,
      s.from,
      30_000,
      'child-failed',
    );
    expect(f.code).toBe('NO_PROPOSAL_CHOSEN');
    expect((await theirs(s.name))?.children ?? []).toHaveLength(0);
  }, 90_000);

  it('traffic selectors that do not match, ours initiating: TS_UNACCEPTABLE', async () => {
    const s = await setup({ oursRemoteNet: '198.18.9.0/24' });
    const f = await agent.waitLog(
      (l) => l.event === 'child-failed' && l.tunnel === s.key,
      s.from,
      30_000,
      'child-failed',
    );
    expect(f.code).toBe('TS_UNACCEPTABLE');
    expect(charonSaw(s, /generating IKE_AUTH response 1 \[ IDr AUTH N\(TS_UNACCEPT\) \]/).length).toBeGreaterThan(0);
    const us = await ours(s.name);
    expect(us.childSAs).toHaveLength(0);
    expect(us.ikeSA.lastError?.code).toBe('TS_UNACCEPTABLE');
  }, 90_000);

  it('traffic selectors that do not match, charon initiating: we answer TS_UNACCEPTABLE', async () => {
    const s = await setup({ oursRemoteNet: '198.18.9.0/24', startAction: 'none' });
    const r = await charon.initiate({ child: s.child, timeoutS: 10 });
    expect(r.code).not.toBe(0);
    expect(r.stdout).toMatch(/received TS_UNACCEPTABLE notify/);
    expect((await ours(s.name)).ikeSA.lastError?.code).toBe('TS_UNACCEPTABLE');
  }, 90_000);

  it('a peer that never answers: retransmits, then RETRANSMITS_EXHAUSTED', async () => {
    topo.blackhole(topo.s, true);
    try {
      const s = await setup();
      const f = await agent.waitLog(
        (l) => l.event === 'ike-failed' && l.tunnel === s.key,
        s.from,
        30_000,
        'ike-failed',
      );
      const dropped = topo.dropped(topo.s);
      expect(f.code).toBe('RETRANSMITS_EXHAUSTED');
      // The IKE_SA_INIT and its three retransmissions reached charon's namespace and were dropped there.
      expect(dropped).toBeGreaterThanOrEqual(1 + RETRANSMIT.tries);
      const us = await ours(s.name);
      expect(us.ikeSA.lastError?.code).toBe('RETRANSMITS_EXHAUSTED');
    } finally {
      topo.blackhole(topo.s, false);
    }
  }, 90_000);

  it('SIGTERM: our agent sends DELETE for its IKE SA and exits 0', async () => {
    const s = await setup();
    await establish(s, 'ours');
    current = undefined;
    expect(await agent.stop()).toBe(true);
    expect(agent.exitCode()).toBe(0);
    await waitFor('charon to drop the SA', async () => !(await theirs(s.name)), 10_000);
    expect(charonSaw(s, new RegExp(`received DELETE for IKE_SA ${s.name}`)).length).toBe(1);
    agent.setTunnels([]);
    await agent.start();
  }, 90_000);

  // Last: restarts our agent with a cookie threshold of 0 (every IKE_SA_INIT needs a cookie).
  it('cookies: our half-open threshold lowered to 0, charon retries with the COOKIE', async () => {
    await agent.stop();
    agent = new Agent(topo.o, topo.dir, { addresses: [topo.o.v4], retransmit: RETRANSMIT, cookieThreshold: 0 });
    agent.setTunnels([]);
    await agent.start();
    const s = await setup({ startAction: 'none' });
    await establish(s, 'charon');
    expect(charonSaw(s, /parsed IKE_SA_INIT response 0 \[ N\(COOKIE\) \]/).length).toBe(1);
    expect(charonSaw(s, /generating IKE_SA_INIT request 0 \[ N\(COOKIE\) SA KE No/).length).toBe(1);
  }, 120_000);
});
