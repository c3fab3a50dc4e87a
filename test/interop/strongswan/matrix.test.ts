/**
 * Interop matrix: our agent against strongSwan's charon over real UDP between two network namespaces, with us as
 * initiator and as responder. Every listed IKE and ESP proposal appears in both roles (each IKE proposal paired
 * with an ESP proposal); identity (FQDN / IP address) and underlay (IPv4 / IPv6) variants run on two suites.
 * Each case asserts, from charon's side (`swanctl --list-sas`) and ours (`ipsec-mesh status --json`): IKE SA
 * established, CHILD SA installed, the same SPIs (our inbound = charon's outbound), algorithms and selectors.
 *
 * charon and the agent start once for the file; each case loads its connection into charon (`swanctl
 * --load-all`) and swaps the agent's tunnel file (the agent re-reads its directory). A table of pass/fail and
 * handshake times is printed at the end.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  Agent,
  type AgentStatusJson,
  Charon,
  cleanupStale,
  ensurePrerequisites,
  espTokens,
  handshakeMs,
  ikeTokens,
  proposalTokens,
  type SwConnection,
  Topology,
  waitFor,
} from './harness.js';

interface Row {
  ike: string;
  esp: string;
  family: 4 | 6;
  identity: 'fqdn' | 'ip';
  /** Also rekey the CHILD SA from charon's side, so that the PFS group is negotiated and checked. */
  pfsRekey?: boolean;
}

const ROWS: Row[] = [
  { ike: 'aes128gcm16-prfsha256-x25519', esp: 'aes128gcm16', family: 4, identity: 'fqdn' },
  { ike: 'aes256gcm16-prfsha384-ecp384', esp: 'aes256gcm16-x25519', family: 4, identity: 'fqdn', pfsRekey: true },
  { ike: 'aes256-sha256-modp2048', esp: 'aes256-sha256', family: 4, identity: 'fqdn' },
  { ike: 'aes128-sha256-ecp256', esp: 'chacha20poly1305', family: 4, identity: 'fqdn' },
  { ike: 'chacha20poly1305-prfsha256-x25519', esp: 'chacha20poly1305', family: 4, identity: 'fqdn' },
  { ike: 'aes256-sha512-modp4096', esp: 'aes256gcm16-x25519', family: 4, identity: 'fqdn' },
  // identity and underlay variants
  { ike: 'aes128gcm16-prfsha256-x25519', esp: 'aes128gcm16', family: 4, identity: 'ip' },
  { ike: 'aes128gcm16-prfsha256-x25519', esp: 'aes128gcm16', family: 6, identity: 'fqdn' },
  { ike: 'aes256-sha256-modp2048', esp: 'aes256-sha256', family: 6, identity: 'ip' },
];

type Role = 'initiator' | 'responder';
interface Cell {
  row: Row;
  role: Role;
  ok: boolean;
  ms?: number;
  error?: string;
}
const cells: Cell[] = [];

const PSK = 'matrix pre-shared key, 32 bytes!';

describe('interop matrix with strongSwan charon', () => {
  let topo: Topology;
  let charon: Charon;
  let agent: Agent;

  beforeAll(async () => {
    ensurePrerequisites();
    cleanupStale();
    topo = new Topology('m');
    charon = new Charon(topo.s, topo.dir);
    agent = new Agent(topo.o, topo.dir, { addresses: [topo.o.v4, topo.o.v6] });
    agent.setTunnels([]);
    await Promise.all([charon.start(), agent.start()]);
  });

  afterAll(async () => {
    printTable();
    await agent?.stop();
    await charon?.stop();
    topo?.destroy();
  });

  let n = 0;
  for (const row of ROWS) {
    for (const role of ['initiator', 'responder'] as const) {
      const title = `${row.ike} + ${row.esp}, IPv${row.family}, ${row.identity} ids, ours=${role}`;
      it(title, async () => {
        const cell: Cell = { row, role, ok: false };
        cells.push(cell);
        try {
          cell.ms = await runCase(row, role, `m${++n}`);
          cell.ok = true;
        } catch (e) {
          cell.error = e instanceof Error ? e.message.split('\n')[0] : String(e);
          throw e;
        }
      }, 90_000);
    }
  }

  async function runCase(row: Row, role: Role, name: string): Promise<number> {
    const v6 = row.family === 6;
    const s = v6 ? topo.s.v6 : topo.s.v4;
    const o = v6 ? topo.o.v6 : topo.o.v4;
    const sNet = v6 ? '2001:db8:1::/48' : '198.18.1.0/24';
    const oNet = v6 ? '2001:db8:2::/48' : '198.18.2.0/24';
    const sId = row.identity === 'ip' ? s : 'sw.example';
    const oId = row.identity === 'ip' ? o : 'ours.example';
    const conn: SwConnection = {
      name,
      localAddrs: [s],
      remoteAddrs: [o],
      localId: sId,
      remoteId: oId,
      psk: PSK,
      proposals: [row.ike],
      children: [{ name: `${name}c`, localTs: [sNet], remoteTs: [oNet], espProposals: [row.esp] }],
    };
    const key = `default/${name}`;
    await charon.load([conn]);
    const mark = charon.mark();
    const from = agent.logs.length;
    agent.setTunnels([
      {
        name,
        localAddress: o,
        localSubnets: [oNet],
        localId: oId,
        remoteAddress: s,
        remoteSubnets: [sNet],
        remoteId: sId,
        psk: PSK,
        ikeProposals: [row.ike],
        espProposals: [row.esp],
        startAction: role === 'initiator' ? 'start' : 'none',
      },
    ]);
    try {
      if (role === 'responder') {
        await agent.waitLog((l) => l.event === 'tunnel-added' && l.tunnel === key, from, 20_000, `${key} added`);
        const r = await charon.initiate({ child: `${name}c`, timeoutS: 10 });
        expect(r.code, `swanctl --initiate:\n${r.stdout}${r.stderr}\nagent:\n${agent.tail()}`).toBe(0);
      }
      await agent.waitLog(
        (l) => l.event === 'child-installed' && l.tunnel === key,
        from,
        30_000,
        `CHILD SA of ${key} (charon log:\n${charon
          .lines(mark)
          .slice(-15)
          .map((l) => l.text)
          .join('\n')})`,
      );
      const theirs = await waitFor(`charon's CHILD SA of ${name}`, async () => {
        const sa = (await charon.listSas()).find((x) => x.conn === name);
        return sa?.state === 'ESTABLISHED' && sa.children.some((c) => c.state === 'INSTALLED') ? sa : undefined;
      });
      const ms = handshakeMs(charon.lines(mark));
      const ours = await oursTunnel(name);
      // IKE SA
      expect(ours.ikeSA.state).toBe('Established');
      expect([ours.ikeSA.spiI, ours.ikeSA.spiR]).toEqual([theirs.spiI, theirs.spiR]);
      expect(theirs.initiator).toBe(role === 'responder');
      expect(proposalTokens(ours.ikeSA.algorithms, 'ike')).toEqual(ikeTokens(theirs).sort());
      expect(ikeTokens(theirs).sort()).toEqual(proposalTokens(row.ike, 'ike'));
      // charon's kernel-libipsec forces UDP encapsulation by faking a NAT; we must have floated with it.
      expect(ours.ikeSA.natDetected).toBe(true);
      expect(theirs.localId).toBe(sId);
      expect(theirs.remoteId).toBe(oId);
      // CHILD SA
      expect(theirs.children).toHaveLength(1);
      expect(ours.childSAs).toHaveLength(1);
      checkChild(ours.childSAs[0]!, theirs.children[0]!, row.esp, false, oNet, sNet);
      if (row.pfsRekey) {
        const old = theirs.children[0]!;
        await charon.rekey({ child: `${name}c` });
        const rekeyed = await waitFor(
          'the PFS rekey on both sides',
          async () => {
            const sa = (await charon.listSas()).find((x) => x.conn === name);
            const c = sa?.children.find((x) => x.state === 'INSTALLED' && x.spiIn !== old.spiIn);
            if (!c) return undefined;
            const t = await oursTunnel(name);
            const mine = t.childSAs.find((x) => x.spiOut === c.spiIn);
            return mine ? { c, mine } : undefined;
          },
          30_000,
          200,
        );
        checkChild(rekeyed.mine, rekeyed.c, row.esp, true, oNet, sNet);
      }
      if (ms === undefined) throw new Error('no handshake in the charon log');
      return ms;
    } finally {
      const before = agent.logs.length;
      agent.setTunnels([]);
      await agent
        .waitLog((l) => l.event === 'tunnel-removed' && l.tunnel === key, before, 20_000, `${key} removed`)
        .catch(() => undefined);
      await charon.terminateAll();
    }
  }

  async function oursTunnel(name: string): Promise<AgentStatusJson['tunnels'][number]> {
    const t = agent.tunnel(await agent.status(), name);
    if (!t) throw new Error(`no tunnel ${name} in ipsec-mesh status`);
    return t;
  }

  function checkChild(
    mine: AgentStatusJson['tunnels'][number]['childSAs'][number],
    c: Awaited<ReturnType<Charon['listSas']>>[number]['children'][number],
    esp: string,
    rekeyed: boolean,
    oNet: string,
    sNet: string,
  ): void {
    expect(c.state).toBe('INSTALLED');
    expect(c.encap).toBe(true);
    // Our inbound SPI is charon's outbound one and vice versa.
    expect([mine.spiIn, mine.spiOut]).toEqual([c.spiOut, c.spiIn]);
    // The DH group of an ESP proposal is negotiated only when a CHILD SA is created outside IKE_AUTH (rekeys).
    const expected = proposalTokens(esp, 'esp').filter((t) => rekeyed || !/^(x25519|ecp|modp)/.test(t));
    expect(espTokens(c).sort()).toEqual(expected);
    // Ours must report what was negotiated, as charon does: no DH group on a CHILD SA made in IKE_AUTH.
    expect(proposalTokens(mine.algorithms, 'esp')).toEqual(expected);
    expect(mine.localTs).toEqual([oNet]);
    expect(mine.remoteTs).toEqual([sNet]);
    expect(c.localTs).toEqual([sNet]);
    expect(c.remoteTs).toEqual([oNet]);
    expect(mine.mode).toBe('tunnel');
  }
});

function printTable(): void {
  const ikeW = Math.max(...ROWS.map((r) => r.ike.length), 3);
  const espW = Math.max(...ROWS.map((r) => r.esp.length), 3);
  const cell = (r: Row, role: Role) => {
    const c = cells.find((x) => x.row === r && x.role === role);
    if (!c) return 'not run'.padEnd(14);
    return (c.ok ? `pass ${c.ms} ms` : 'FAIL').padEnd(14);
  };
  const lines = [
    '',
    'strongSwan interop matrix (handshake = charon log, IKE_SA_INIT request to CHILD_SA established)',
    `${'IKE'.padEnd(ikeW)}  ${'ESP'.padEnd(espW)}  net   ids   ${'ours=initiator'.padEnd(14)}  ours=responder`,
    ...ROWS.map(
      (r) =>
        `${r.ike.padEnd(ikeW)}  ${r.esp.padEnd(espW)}  IPv${r.family}  ${r.identity.padEnd(4)}  ${cell(r, 'initiator')}  ${cell(r, 'responder')}`,
    ),
    ...cells
      .filter((c) => !c.ok)
      .map((c) => `FAIL ${c.row.ike}/${c.row.esp} IPv${c.row.family} ${c.row.identity} ours=${c.role}: ${c.error}`),
    '',
  ];
  console.log(lines.join('\n'));
}
