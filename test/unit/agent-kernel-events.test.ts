/**
 * The agent's answers to kernel events, with two agents joined by an in-memory transport and kernels that can
 * raise XFRM events: ACQUIRE on a trapped tunnel starts the negotiation, a soft EXPIRE rekeys the CHILD SA, a hard
 * EXPIRE without a replacement is reported as HARD_EXPIRY and the CHILD SA is negotiated again.
 * (The kernel side of these events, that XFRM raises them, is proven in User-Mode Linux: test/uml/xfrm.test.ts.)
 */

import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { Agent } from '../../src/agent/agent.js';
import { loadConfigDir } from '../../src/agent/config-dir.js';
import { MemoryKernel } from '../../src/agent/memory-kernel.js';
import { SystemClock, systemRandom } from '../../src/agent/runtime.js';
import type { UdpTransport } from '../../src/agent/transport.js';
import type { Endpoint } from '../../src/ike/ports.js';
import type { XfrmEvent } from '../../src/xfrm/socket.js';
import { agentDir, pskSecret, tunnel, waitFor } from '../agent/helpers.js';

type Receiver = (p: Uint8Array, from: Endpoint, to: Endpoint) => void;

class LoopTransport {
  peer: LoopTransport | undefined;
  private receiver: Receiver = () => {};
  onReceive(r: Receiver): void {
    this.receiver = r;
  }
  async start(): Promise<void> {}
  async stop(): Promise<void> {}
  nattSockets(): [] {
    return [];
  }
  keepalive(): void {}
  send(p: Uint8Array, from: Endpoint, to: Endpoint): void {
    const copy = p.slice();
    setImmediate(() => this.peer?.receiver(copy, from, to));
  }
}

class EventKernel extends MemoryKernel {
  private readonly listeners: ((ev: XfrmEvent) => void)[] = [];
  onEvent(fn: (ev: XfrmEvent) => void): () => void {
    this.listeners.push(fn);
    return () => {};
  }
  raise(ev: unknown): void {
    for (const l of this.listeners) l(ev as XfrmEvent);
  }
}

const PSK = 'kernel events test pre-shared key';
const running: Agent[] = [];

afterEach(async () => {
  for (const a of running.splice(0)) await a.stop();
});

async function twoAgents(startA: 'start' | 'trap') {
  const mk = (
    name: string,
    address: string,
    peer: string,
    local: string,
    remote: string,
    start: 'start' | 'trap' | 'none',
  ) => {
    const d = agentDir(name, { addresses: [address] });
    d.write('t.yaml', [
      tunnel('t', {
        localAddress: address,
        remoteAddress: peer,
        localSubnets: [local],
        remoteSubnets: [remote],
        startAction: start,
      }),
      pskSecret('t-psk', PSK),
    ]);
    const state = loadConfigDir(d.dir);
    expect(state.problems).toEqual([]);
    const kernel = new EventKernel(systemRandom);
    const transport = new LoopTransport();
    const agent = new Agent({
      settings: state.settings!,
      kernel,
      dataplane: 'none',
      logger: pino({ level: 'silent' }),
      clock: new SystemClock(),
      random: systemRandom,
      transport: transport as unknown as UdpTransport,
    });
    return { agent, kernel, transport, state };
  };
  const a = mk('ev-a', '192.0.2.1', '192.0.2.2', '198.18.1.0/24', '198.18.2.0/24', startA);
  const b = mk('ev-b', '192.0.2.2', '192.0.2.1', '198.18.2.0/24', '198.18.1.0/24', 'none');
  a.transport.peer = b.transport;
  b.transport.peer = a.transport;
  for (const x of [a, b]) {
    await x.agent.start();
    running.push(x.agent);
    x.agent.apply({ tunnels: x.state.tunnels, secrets: x.state.secrets });
  }
  const up = () =>
    waitFor('tunnel up', async () => {
      const t = (await a.agent.status()).tunnels[0]!;
      const c = t.childSAs.find((x) => x.state === 'installed');
      return t.ikeSA.state === 'Established' && c ? c : undefined;
    });
  return { a, b, up };
}

describe('agent: kernel events', () => {
  it('a trapped tunnel negotiates on ACQUIRE, not before', async () => {
    const { a, up } = await twoAgents('trap');
    await new Promise((r) => setTimeout(r, 300));
    expect((await a.agent.status()).tunnels[0]!.ikeSA.state).toBe('Down');
    const reqid = (a.agent as unknown as { reqids: Map<string, number> }).reqids.get('default/t')!;
    a.kernel.raise({ kind: 'acquire', acquire: {}, tmpls: [{ reqid }] });
    expect(await up()).toBeDefined();
  });

  it('a soft EXPIRE rekeys the CHILD SA (new SPIs), a hard one is reported and the CHILD SA negotiated again', async () => {
    const { a, up } = await twoAgents('start');
    const first = await up();
    a.kernel.raise({ kind: 'expire', hard: false, sa: { info: { id: { spi: Number.parseInt(first.spiOut, 16) } } } });
    const second = await waitFor('rekeyed', async () => {
      const c = (await a.agent.status()).tunnels[0]!.childSAs.find((x) => x.state === 'installed');
      return c && c.spiIn !== first.spiIn ? c : undefined;
    });
    expect(second.spiOut).not.toBe(first.spiOut);
    a.kernel.raise({ kind: 'expire', hard: true, sa: { info: { id: { spi: Number.parseInt(second.spiIn, 16) } } } });
    const err = await waitFor('hard expiry reported', async () => (await a.agent.status()).tunnels[0]!.ikeSA.lastError);
    expect(err.code).toBe('HARD_EXPIRY');
    const third = await waitFor('renegotiated', async () => {
      const c = (await a.agent.status()).tunnels[0]!.childSAs.find((x) => x.state === 'installed');
      return c && c.spiIn !== second.spiIn ? c : undefined;
    });
    expect(third.spiIn).not.toBe(first.spiIn);
  });
});
