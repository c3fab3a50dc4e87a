/**
 * Prometheus metrics of the agent (prom-client): SAs by state, handshakes and rekeys with their outcome, handshake
 * latency, DPD failures, per-tunnel bytes/packets from the kernel, kernel errors. Labels carry tunnel names and
 * outcomes, never addresses of peers' inner traffic or key material.
 */
import { createServer, type Server } from 'node:http';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { EngineEvent } from '../ike/sa/events.js';

export interface SaSnapshot {
  ikeByState: Map<string, number>;
  children: number;
  traffic: { tunnel: string; direction: 'in' | 'out'; bytes: number; packets: number }[];
}

export class AgentMetrics {
  readonly registry = new Registry();
  readonly handshakes = new Counter({
    name: 'ipsec_mesh_handshakes_total',
    help: 'IKE SA negotiations by result (ok, failed) and failure code',
    labelNames: ['result', 'code'] as const,
    registers: [this.registry],
  });
  readonly rekeys = new Counter({
    name: 'ipsec_mesh_rekeys_total',
    help: 'Rekeys by kind (ike, child) and result',
    labelNames: ['kind', 'result'] as const,
    registers: [this.registry],
  });
  readonly handshakeSeconds = new Histogram({
    name: 'ipsec_mesh_handshake_seconds',
    help: 'Time from initiating an IKE SA to its establishment',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  readonly dpdFailures = new Counter({
    name: 'ipsec_mesh_dpd_failures_total',
    help: 'Peers declared dead by liveness checks',
    registers: [this.registry],
  });
  readonly kernelErrors = new Counter({
    name: 'ipsec_mesh_kernel_errors_total',
    help: 'Errors from the kernel data plane',
    registers: [this.registry],
  });
  private readonly ikeSas = new Gauge({
    name: 'ipsec_mesh_ike_sas',
    help: 'IKE SAs by state',
    labelNames: ['state'] as const,
    registers: [this.registry],
  });
  private readonly childSas = new Gauge({
    name: 'ipsec_mesh_child_sas',
    help: 'Installed CHILD SAs',
    registers: [this.registry],
  });
  private readonly bytes = new Gauge({
    name: 'ipsec_mesh_tunnel_bytes',
    help: 'Bytes through the tunnel’s current CHILD SAs, from the kernel counters',
    labelNames: ['tunnel', 'direction'] as const,
    registers: [this.registry],
  });
  private readonly packets = new Gauge({
    name: 'ipsec_mesh_tunnel_packets',
    help: 'Packets through the tunnel’s current CHILD SAs, from the kernel counters',
    labelNames: ['tunnel', 'direction'] as const,
    registers: [this.registry],
  });
  private readonly encrypted = new Gauge({
    name: 'ipsec_mesh_encrypted',
    help: 'Proof of encryption per tunnel: 1 policies and SAs in place, 0 not, -1 unknown (no CHILD SA)',
    labelNames: ['tunnel'] as const,
    registers: [this.registry],
  });
  readonly policyRestores = new Counter({
    name: 'ipsec_mesh_policy_restores_total',
    help: 'Kernel policies of installed CHILD SAs found missing or wrong and put back',
    labelNames: ['tunnel'] as const,
    registers: [this.registry],
  });
  private readonly started = new Map<number, number>();

  /** Result of one encryption check of a tunnel (src/agent/encryption-check.ts). */
  encryptionChecked(tunnel: string, status: 'True' | 'False' | 'Unknown', restored: number): void {
    this.encrypted.set({ tunnel }, status === 'True' ? 1 : status === 'False' ? 0 : -1);
    if (restored > 0) this.policyRestores.inc({ tunnel }, restored);
  }

  constructor(
    private readonly snapshot: () => Promise<SaSnapshot>,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Refresh the gauges from the current SA state (called on every scrape). */
  async collect(): Promise<void> {
    const s = await this.snapshot();
    this.ikeSas.reset();
    for (const [state, n] of s.ikeByState) this.ikeSas.set({ state }, n);
    this.childSas.set(s.children);
    this.bytes.reset();
    this.packets.reset();
    for (const t of s.traffic) {
      this.bytes.set({ tunnel: t.tunnel, direction: t.direction }, t.bytes);
      this.packets.set({ tunnel: t.tunnel, direction: t.direction }, t.packets);
    }
  }

  /** Note the start of a negotiation (for the latency histogram). */
  initiated(uid: number): void {
    this.started.set(uid, this.now());
  }

  onEngineEvent(e: EngineEvent): void {
    switch (e.type) {
      case 'ike-established': {
        this.handshakes.inc({ result: 'ok', code: '' });
        const t0 = this.started.get(e.sa.uid);
        if (t0 !== undefined) {
          this.handshakeSeconds.observe((this.now() - t0) / 1000);
          this.started.delete(e.sa.uid);
        }
        break;
      }
      case 'ike-failed':
        this.handshakes.inc({ result: 'failed', code: e.failure.code });
        this.started.delete(e.sa.uid);
        break;
      case 'ike-rekeyed':
        this.rekeys.inc({ kind: 'ike', result: 'ok' });
        break;
      case 'child-installed':
        if (e.rekeyOf !== undefined) this.rekeys.inc({ kind: 'child', result: 'ok' });
        break;
      case 'child-failed':
        this.rekeys.inc({ kind: 'child', result: 'failed' });
        break;
      case 'peer-dead':
        this.dpdFailures.inc();
        break;
      case 'kernel-error':
        this.kernelErrors.inc();
        break;
      default:
        break;
    }
  }

  serve(port: number, address = '0.0.0.0'): Server {
    const server = createServer((req, res) => {
      if (req.url !== '/metrics') {
        res.writeHead(404).end('not found\n');
        return;
      }
      this.collect()
        .then(() => this.registry.metrics())
        .then(
          (text) => res.writeHead(200, { 'content-type': this.registry.contentType }).end(text),
          (e: unknown) => res.writeHead(500).end(`${e instanceof Error ? e.message : String(e)}\n`),
        );
    });
    server.listen(port, address);
    return server;
  }
}
