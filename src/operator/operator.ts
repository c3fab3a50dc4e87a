/**
 * The operator process: metrics/health endpoint, leader election, and the controller while leading.
 * Only the leader reconciles; a replica that loses the lease stops (and its supervisor restarts it as a standby).
 */
import { createServer, type Server } from 'node:http';
import { hostname } from 'node:os';
import type { KubeConfig } from '@kubernetes/client-node';
import { collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import { Controller, errText, type Logger } from './controller.js';
import { KubeClient } from './kube.js';
import { LeaderElector } from './leader.js';

export interface OperatorConfig {
  kubeconfig: KubeConfig;
  namespace: string;
  site?: string;
  gatewaySelector: Record<string, string>;
  heartbeatTimeoutMs: number;
  resyncMs: number;
  agentSecretsRole: string;
  identity?: string;
  workers: number;
  leaderElection: boolean;
  leaseName: string;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  /** host:port for /metrics, /healthz, /readyz; empty disables. */
  metricsAddr: string;
  log: Logger;
}

export class Operator {
  readonly registry = new Registry();
  readonly identity: string;
  private controller?: Controller;
  private elector?: LeaderElector;
  private server?: Server;
  private leaderClient?: KubeClient;
  private stopping = false;
  private exitResolve!: (code: number) => void;
  /** Resolves with the process exit code once the operator has stopped. */
  readonly done: Promise<number>;
  private readonly leaderGauge: Gauge;

  constructor(private readonly c: OperatorConfig) {
    this.identity = c.identity ?? `${hostname()}-${process.pid}`;
    this.done = new Promise((r) => {
      this.exitResolve = r;
    });
    collectDefaultMetrics({ register: this.registry, prefix: 'ipsec_mesh_operator_' });
    this.leaderGauge = new Gauge({
      name: 'ipsec_mesh_operator_leader',
      help: '1 while this replica holds the leader lease.',
      registers: [this.registry],
    });
  }

  get activeController(): Controller | undefined {
    return this.controller;
  }

  async start(): Promise<void> {
    const log = this.c.log;
    if (this.c.metricsAddr) this.server = await this.serve(this.c.metricsAddr);
    const lead = () => {
      this.leaderGauge.set(1);
      log.info({ identity: this.identity }, 'became leader; starting controllers');
      this.controller = new Controller({
        kubeconfig: this.c.kubeconfig,
        namespace: this.c.namespace,
        site: this.c.site,
        gatewaySelector: this.c.gatewaySelector,
        heartbeatTimeoutMs: this.c.heartbeatTimeoutMs,
        resyncMs: this.c.resyncMs,
        agentSecretsRole: this.c.agentSecretsRole,
        identity: this.identity,
        workers: this.c.workers,
        secretTtlMs: 60_000,
        log,
        registry: this.registry,
      });
      this.controller.start().catch((e: unknown) => {
        log.error({ error: errText(e) }, 'controller failed to start');
        void this.stop(1);
      });
    };
    if (!this.c.leaderElection) {
      lead();
      return;
    }
    this.leaderClient = new KubeClient(this.c.kubeconfig, { maxSockets: 2 });
    this.elector = new LeaderElector(this.leaderClient, {
      namespace: this.c.namespace,
      name: this.c.leaseName,
      identity: this.identity,
      leaseDurationMs: this.c.leaseDurationMs,
      renewDeadlineMs: this.c.renewDeadlineMs,
      retryPeriodMs: this.c.retryPeriodMs,
      onStartedLeading: lead,
      onStoppedLeading: () => {
        this.leaderGauge.set(0);
        log.error({ identity: this.identity }, 'lost the leader lease; stopping');
        void this.stop(1);
      },
      onNewLeader: (id) => log.info({ leader: id }, 'leader observed'),
      log: (msg, extra) => log.warn(extra ?? {}, msg),
    });
    this.elector.start();
  }

  private serve(addr: string): Promise<Server> {
    const i = addr.lastIndexOf(':');
    const host = i > 0 ? addr.slice(0, i) : '0.0.0.0';
    const port = Number(addr.slice(i + 1));
    const server = createServer((req, res) => {
      if (req.url === '/metrics') {
        this.registry.metrics().then(
          (text) => {
            res.writeHead(200, { 'content-type': this.registry.contentType });
            res.end(text);
          },
          () => {
            res.writeHead(500);
            res.end();
          },
        );
        return;
      }
      if (req.url === '/healthz' || req.url === '/readyz') {
        res.writeHead(this.stopping ? 503 : 200, { 'content-type': 'text/plain' });
        res.end(this.stopping ? 'stopping\n' : 'ok\n');
        return;
      }
      res.writeHead(404);
      res.end();
    });
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve(server));
    });
  }

  async stop(code = 0): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    await this.controller?.stop().catch(() => undefined);
    await this.elector?.stop();
    this.leaderClient?.close();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
    this.leaderGauge.set(0);
    this.exitResolve(code);
  }
}
