/**
 * The interop harness itself: charon <-> charon in two namespaces (proves namespaces, private /run, vici sockets,
 * kernel-libipsec, swanctl.conf generation, --list-sas parsing, rekey/terminate helpers and cleanup), plus the
 * `swanctl --raw` parser on recorded output.
 */
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  Charon,
  cleanupStale,
  ensurePrerequisites,
  espTokens,
  ikeTokens,
  parseListSas,
  proposalTokens,
  run,
  type SwConnection,
  Topology,
  tunnelYaml,
  waitFor,
} from './harness.js';

const RECORDED =
  'list-sa event {t1 {uniqueid=1 version=2 state=ESTABLISHED local-host=192.0.2.1 local-port=4500 ' +
  'local-id=a.example remote-host=192.0.2.2 remote-port=4500 remote-id=b.example initiator=yes ' +
  'initiator-spi=566872dcdf9da299 responder-spi=7337f238b2a714f0 nat-remote=yes nat-any=yes encr-alg=AES_GCM_16 ' +
  'encr-keysize=128 prf-alg=PRF_HMAC_SHA2_256 dh-group=CURVE_25519 established=0 rekey-time=13233 child-sas ' +
  '{c1-1 {name=c1 uniqueid=1 reqid=1 state=INSTALLED mode=TUNNEL protocol=ESP encap=yes spi-in=c6b5c0c2 ' +
  'spi-out=cd1d5ee2 encr-alg=AES_CBC encr-keysize=256 integ-alg=HMAC_SHA2_256_128 dh-group=CURVE_25519 ' +
  'bytes-in=0 packets-in=0 bytes-out=0 packets-out=0 rekey-time=3289 life-time=3600 install-time=0 ' +
  'local-ts=[198.18.1.0/24] remote-ts=[198.18.2.0/24 198.18.3.0/24]}}}}\nlist-sas reply {}\n';

describe('swanctl --raw parsing', () => {
  it('parses IKE and CHILD SAs with lists', () => {
    const [sa, ...rest] = parseListSas(RECORDED);
    expect(rest).toHaveLength(0);
    expect(sa).toMatchObject({
      conn: 't1',
      state: 'ESTABLISHED',
      initiator: true,
      spiI: '566872dcdf9da299',
      spiR: '7337f238b2a714f0',
      localPort: 4500,
      natAny: true,
    });
    expect(ikeTokens(sa!).sort()).toEqual(proposalTokens('aes128gcm16-prfsha256-x25519', 'ike'));
    const c = sa!.children[0]!;
    expect(c).toMatchObject({ name: 'c1', state: 'INSTALLED', spiIn: 'c6b5c0c2', spiOut: 'cd1d5ee2', encap: true });
    expect(c.remoteTs).toEqual(['198.18.2.0/24', '198.18.3.0/24']);
    expect(espTokens(c).sort()).toEqual(proposalTokens('aes256-sha256-x25519', 'esp'));
  });

  it('implies the PRF of non-AEAD IKE proposals', () => {
    expect(proposalTokens('aes256-sha256-modp2048', 'ike')).toEqual(['aes256', 'modp2048', 'prfsha256', 'sha256']);
    expect(proposalTokens('aes256gcm16-prfsha384-ecp384', 'ike')).toEqual(['aes256gcm16', 'ecp384', 'prfsha384']);
  });

  it('rejects truncated output instead of guessing', () => {
    expect(() => parseListSas('list-sa event {t1 {uniqueid=1')).toThrow(/unterminated/);
  });

  it('writes tunnels as an IPsecTunnel plus its Secret', () => {
    const y = tunnelYaml({
      name: 't',
      localAddress: '192.0.2.2',
      localSubnets: ['198.18.2.0/24'],
      remoteAddress: '192.0.2.1',
      remoteSubnets: ['198.18.1.0/24'],
      psk: 'a pre-shared key of some length',
      ikeProposals: ['aes128gcm16-prfsha256-x25519'],
      espProposals: ['aes128gcm16'],
    });
    expect(y).toContain('kind: Secret');
    expect(y).toContain('kind: IPsecTunnel');
    expect(y).not.toContain('a pre-shared key');
  });
});

describe('charon <-> charon in two namespaces', () => {
  let topo: Topology;
  let left: Charon;
  let right: Charon;
  const psk = 'harness smoke test pre-shared key';
  const conn = (self: 's' | 'o', v6 = false): SwConnection => {
    const me = self === 's' ? topo.s : topo.o;
    const peer = self === 's' ? topo.o : topo.s;
    const [mine, theirs] = self === 's' ? ['198.18.1.0/24', '198.18.2.0/24'] : ['198.18.2.0/24', '198.18.1.0/24'];
    return {
      name: v6 ? 'smoke6' : 'smoke',
      localAddrs: [v6 ? me.v6 : me.v4],
      remoteAddrs: [v6 ? peer.v6 : peer.v4],
      localId: `${self}.example`,
      remoteId: `${self === 's' ? 'o' : 's'}.example`,
      psk,
      proposals: ['aes128gcm16-prfsha256-x25519'],
      children: [
        { name: v6 ? 'net6' : 'net', localTs: [mine], remoteTs: [theirs], espProposals: ['aes256gcm16-x25519'] },
      ],
    };
  };

  beforeAll(async () => {
    ensurePrerequisites();
    cleanupStale();
    topo = new Topology('h');
    left = new Charon(topo.s, topo.dir);
    right = new Charon(topo.o, topo.dir);
    await Promise.all([left.start(), right.start()]);
    await left.load([conn('s'), conn('s', true)]);
    await right.load([conn('o'), conn('o', true)]);
  });

  afterAll(async () => {
    await left?.stop();
    await right?.stop();
    topo?.destroy();
  });

  it('runs each charon with its own /run, vici socket and kernel-libipsec', async () => {
    expect(left.charonPid()).not.toBe(right.charonPid());
    expect(existsSync(left.vici) && existsSync(right.vici)).toBe(true);
    expect(left.log()).toMatch(/created TUN device/);
    // The host's /run is untouched: neither charon wrote its pid file there.
    expect(existsSync('/run/charon.pid')).toBe(false);
    expect(await left.stats()).toMatch(/kernel-libipsec/);
  });

  it('establishes over IPv4 and IPv6, both sides agree on SPIs, algorithms and selectors', async () => {
    for (const [child, ike] of [
      ['net', 'smoke'],
      ['net6', 'smoke6'],
    ] as const) {
      const r = await left.initiate({ child });
      expect(r.code, r.stdout).toBe(0);
      const [l] = (await left.listSas()).filter((s) => s.conn === ike);
      const [rr] = (await right.listSas()).filter((s) => s.conn === ike);
      expect(l?.state).toBe('ESTABLISHED');
      expect(rr?.state).toBe('ESTABLISHED');
      expect([l!.spiI, l!.spiR]).toEqual([rr!.spiI, rr!.spiR]);
      expect(l!.initiator && !rr!.initiator).toBe(true);
      // kernel-libipsec forces UDP encapsulation: charon fakes a NAT and floats to 4500.
      expect(l!.localPort).toBe(4500);
      expect(ikeTokens(l!).sort()).toEqual(proposalTokens('aes128gcm16-prfsha256-x25519', 'ike'));
      const lc = l!.children[0]!;
      const rc = rr!.children[0]!;
      expect(lc.state).toBe('INSTALLED');
      expect([lc.spiIn, lc.spiOut]).toEqual([rc.spiOut, rc.spiIn]);
      expect(lc.localTs).toEqual(rc.remoteTs);
      expect(espTokens(lc).sort()).toEqual(['aes256gcm16']);
    }
  });

  it('rekeys CHILD and IKE SAs and terminates through the helpers', async () => {
    const before = (await left.listSas()).find((s) => s.conn === 'smoke')!;
    await left.rekey({ child: 'net' });
    const afterChild = await waitFor('CHILD rekey', async () => {
      const sa = (await right.listSas()).find((s) => s.conn === 'smoke');
      const c = sa?.children.find((x) => x.state === 'INSTALLED');
      return c && sa!.children.length === 1 && c.spiOut !== before.children[0]!.spiIn ? c : undefined;
    });
    // A rekey with PFS negotiates the DH group (charon lists it on the new CHILD SA).
    expect(espTokens(afterChild).sort()).toEqual(['aes256gcm16', 'x25519']);
    await right.rekey({ ike: 'smoke' });
    await waitFor('IKE rekey', async () => {
      const sas = (await left.listSas()).filter((s) => s.conn === 'smoke');
      return sas.length === 1 && sas[0]!.spiI !== before.spiI && sas[0]!.state === 'ESTABLISHED';
    });
    const t = await left.terminate({ ike: 'smoke' });
    expect(t.code, t.stderr).toBe(0);
    await waitFor('termination seen by the peer', async () => !(await right.listSas()).some((s) => s.conn === 'smoke'));
  });

  it('survives kill and restart of one charon', async () => {
    await right.kill();
    expect(right.running).toBe(false);
    await right.start();
    await right.load([conn('o'), conn('o', true)]);
    expect((await right.listSas()).length).toBe(0);
    const r = await right.initiate({ child: 'net' });
    expect(r.code, r.stdout).toBe(0);
  });

  it('cleans up namespaces and processes', async () => {
    const t = new Topology('c');
    const c = new Charon(t.s, t.dir);
    await c.start();
    const pid = c.charonPid();
    t.destroy();
    expect(run('ip', ['netns', 'list'])).not.toContain(t.s.ns);
    await waitFor('charon to exit', () => !existsSync(`/proc/${pid}`), 5000);
  });
});
