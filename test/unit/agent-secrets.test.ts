/**
 * Key material that goes missing from the desired state (the agent read its Secret between two writes of the
 * operator, or someone deleted it): a running tunnel keeps what it has instead of being torn down; a tunnel that
 * never had its material reports SecretNotFound.
 */
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { Agent } from '../../src/agent/agent.js';
import { loadConfigDir } from '../../src/agent/config-dir.js';
import { MemoryKernel } from '../../src/agent/memory-kernel.js';
import { SystemClock, systemRandom } from '../../src/agent/runtime.js';
import type { UdpTransport } from '../../src/agent/transport.js';
import { agentDir, LoopTransport, pskSecret, tunnel, waitFor } from '../agent/helpers.js';

const PSK = 'a pre-shared key for the secrets test';
const running: Agent[] = [];
afterEach(async () => {
  for (const a of running.splice(0)) await a.stop();
});

function mk(name: string, me: 1 | 2) {
  const peer = me === 1 ? 2 : 1;
  const d = agentDir(name, { addresses: [`192.0.2.${me}`] });
  d.write('t.yaml', [
    tunnel('t', {
      localAddress: `192.0.2.${me}`,
      remoteAddress: `192.0.2.${peer}`,
      localSubnets: [`198.18.${me}.0/24`],
      remoteSubnets: [`198.18.${peer}.0/24`],
      localId: `site-${me}.example`,
      remoteId: `site-${peer}.example`,
      startAction: me === 1 ? 'start' : 'none',
    }),
    pskSecret('t-psk', PSK),
  ]);
  const s = loadConfigDir(d.dir);
  const logs: string[] = [];
  const transport = new LoopTransport();
  const agent = new Agent({
    settings: s.settings!,
    kernel: new MemoryKernel(systemRandom),
    dataplane: 'none',
    logger: pino({ level: 'info' }, { write: (l: string) => void logs.push(l) }),
    clock: new SystemClock(),
    random: systemRandom,
    transport: transport as unknown as UdpTransport,
  });
  return { agent, transport, logs, desired: s };
}

describe('key material missing from the desired state', () => {
  it('keeps a running tunnel up with the key it has, and refuses a new tunnel without one', async () => {
    const a = mk('sec-a', 1);
    const b = mk('sec-b', 2);
    a.transport.peer = b.transport;
    b.transport.peer = a.transport;
    for (const x of [a, b]) {
      await x.agent.start();
      running.push(x.agent);
    }
    b.agent.apply({ tunnels: b.desired.tunnels, secrets: b.desired.secrets });
    a.agent.apply({ tunnels: a.desired.tunnels, secrets: a.desired.secrets });
    const up = await waitFor('tunnel up', async () => {
      const t = (await a.agent.status()).tunnels[0]!;
      return t.ikeSA.state === 'Established' ? t : undefined;
    });
    // The same tunnels, no key material: nothing changes.
    a.agent.apply({ tunnels: a.desired.tunnels, secrets: new Map() });
    const after = (await a.agent.status()).tunnels[0]!;
    expect(after.ikeSA.state).toBe('Established');
    expect(after.ikeSA.spiI).toBe(up.ikeSA.spiI);
    expect(after.configError).toBeUndefined();
    expect(after.ikeSA.lastError).toBeUndefined();
    expect(a.logs.join('\n')).toContain('secret-missing-kept');
    expect(a.logs.join('\n')).not.toContain('tunnel-changed');
    // A fresh agent that never had the key reports it.
    const c = mk('sec-c', 1);
    await c.agent.start();
    running.push(c.agent);
    c.agent.apply({ tunnels: c.desired.tunnels, secrets: new Map() });
    const t = (await c.agent.status()).tunnels[0]!;
    expect(JSON.stringify(t)).toContain('SecretNotFound');
  });
});
