/**
 * Scenario 2 of the agent in User-Mode Linux (real kernel ESP), one boot (scenarios/agent-strongswan.ts): our agent
 * and strongSwan's charon (kernel-netlink: kernel SAs on both sides), each initiating, for AES-GCM, AES-CBC with
 * HMAC-SHA2-256 and ChaCha20-Poly1305: TCP both ways and ping through each tunnel, and the algorithm in both kernels.
 * Needs root, Debian user-mode-linux, strongswan-charon and strongswan-swanctl (scripts/install-deps.sh).
 */
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { runInUml, type UmlRunResult } from './harness.js';
import { STRONGSWAN_CASES as CASES } from './scenarios/agent-params.js';
import type { SwResult } from './scenarios/agent-strongswan.js';
import { buildAgentBundle } from './support/bundle.js';
import { fromWire } from './support/wire.js';

let run: UmlRunResult;
let out: SwResult;

beforeAll(async () => {
  run = await runInUml({
    script: fileURLToPath(new URL('./scenarios/agent-strongswan.ts', import.meta.url)),
    env: { IPSEC_MESH_AGENT_BUNDLE: buildAgentBundle() },
    timeoutMs: 200_000,
  });
  const line = run.output.split('\n').find((l) => l.startsWith('RESULT '));
  if (!line) {
    throw new Error(
      `UML strongSwan scenario failed (exit ${run.exitCode}, timedOut ${run.timedOut}):\n${run.output.slice(-4000)}\n--- console ---\n${run.console.slice(-2000)}`,
    );
  }
  out = fromWire<SwResult>(line.slice('RESULT '.length));
  console.log(`UML strongSwan: boot ${Math.round(run.bootMs ?? -1)} ms, total ${Math.round(run.durationMs)} ms`);
}, 210_000);

const evidence = () => `${out.notable.slice(-40).join('\n')}\n--- charon ---\n${out.charonLog ?? ''}`;

describe('scenario 2: agent <-> strongSwan charon, kernel SAs on both sides (UML)', () => {
  it('ran without error', () => {
    expect(out.error, evidence()).toBeUndefined();
    expect(out.cases).toHaveLength(CASES.length);
  });

  it.each(CASES.map((c) => ({ ...c })))('$alg, $initiator initiating: traffic both ways', ({ alg, initiator }) => {
    const r = out.cases.find((c) => c.alg === alg && c.initiator === initiator);
    expect(r?.errors, evidence()).toEqual([]);
    expect(r?.up).toBe(true);
    expect(r?.ours?.ike).toBe('Established');
    expect(r?.ours?.algorithms).toContain(alg === 'aes256-sha256' ? 'aes256' : alg);
    expect(r?.tcpOursToSw).toEqual({ bytes: expect.any(Number), equal: true });
    expect(r?.tcpSwToOurs).toEqual({ bytes: expect.any(Number), equal: true });
    expect(r?.ping).toBe(true);
    expect(Number(r?.ours?.bytesIn)).toBeGreaterThan(0);
    expect(Number(r?.ours?.bytesOut)).toBeGreaterThan(0);
    expect(r?.kernelOurs).toBe(true);
    expect(r?.kernelSw).toBe(true);
  });

  it("a one-way flow into charon's site: charon ignores our ESP_RECEIVED_QUERY, the agent only warns and stays on ESP", () => {
    const w = out.oneWay;
    expect(w, evidence()).toBeDefined();
    console.log(
      `one-way flow to charon: ${JSON.stringify({ ...w, flow: { sent: w?.flow.sent, lost: w?.flow.lost } }, null, 1)}`,
    );
    expect(w?.flow.sent).toBe(2400);
    expect(w?.flow.lost).toBe(0);
    expect(w?.unconfirmed).toBe(1);
    expect(w?.blocked).toBe(0);
    expect(w?.oneWay).toBe(0);
    expect(w?.message).toMatch(/does not report what it received/);
    expect(w?.encapsulated).toBe(false);
    // charon parsed our query (an unknown private notify) and answered the INFORMATIONAL.
    expect(w?.charonInformational.join('\n')).toMatch(/parsed INFORMATIONAL request \d+ \[ N\(\(?52481\)?\) \]/);
    expect(w?.charonInformational.join('\n')).toMatch(/generating INFORMATIONAL response \d+ \[ \]/);
  });
});
