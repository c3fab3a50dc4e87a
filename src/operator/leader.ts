/**
 * Leader election with a coordination.k8s.io/v1 Lease, as client-go's leaderelection: the holder renews every
 * retryPeriod; a candidate takes over once it has observed no renewal for leaseDuration (measured on its own
 * clock from when it last saw the record change, so clock skew between replicas does not matter). Updates use the
 * resourceVersion for optimistic concurrency. release() hands the lease over at once on a clean shutdown.
 */
import { KubeApiError, type KubeClient } from './kube.js';

export interface LeaderElectionOptions {
  namespace: string;
  name: string;
  identity: string;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  onStartedLeading(): void;
  onStoppedLeading(): void;
  onNewLeader?(identity: string): void;
  log?: (msg: string, extra?: Record<string, unknown>) => void;
}

interface Lease {
  metadata: { name: string; namespace: string; resourceVersion?: string };
  spec: {
    holderIdentity?: string;
    leaseDurationSeconds?: number;
    acquireTime?: string;
    renewTime?: string;
    leaseTransitions?: number;
  };
}

const micro = (d: Date) => d.toISOString().replace('Z', '000Z');

export class LeaderElector {
  private timer?: NodeJS.Timeout;
  private leading = false;
  private stopped = false;
  private observed?: { holder: string; renewTime: string; at: number };
  private lastRenew = 0;
  private lastLeader = '';

  constructor(
    private readonly client: KubeClient,
    private readonly o: LeaderElectionOptions,
  ) {}

  get isLeader(): boolean {
    return this.leading;
  }

  private get path() {
    return `/apis/coordination.k8s.io/v1/namespaces/${this.o.namespace}/leases`;
  }

  start(): void {
    const tick = async () => {
      if (this.stopped) return;
      let ok = false;
      try {
        ok = await this.tryAcquireOrRenew();
      } catch (e) {
        this.o.log?.('lease update failed', { error: (e as Error).message });
      }
      if (this.stopped) return;
      const now = Date.now();
      if (ok) {
        this.lastRenew = now;
        if (!this.leading) {
          this.leading = true;
          this.o.onStartedLeading();
        }
      } else if (this.leading && now - this.lastRenew > this.o.renewDeadlineMs) {
        this.leading = false;
        this.o.onStoppedLeading();
      }
      this.timer = setTimeout(tick, this.o.retryPeriodMs);
    };
    void tick();
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const now = new Date();
    const durationS = Math.max(1, Math.ceil(this.o.leaseDurationMs / 1000));
    const lease = await this.client.getOrUndefined<Lease>(`${this.path}/${this.o.name}`);
    if (!lease) {
      try {
        await this.client.create(this.path, {
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: { name: this.o.name, namespace: this.o.namespace },
          spec: {
            holderIdentity: this.o.identity,
            leaseDurationSeconds: durationS,
            acquireTime: micro(now),
            renewTime: micro(now),
            leaseTransitions: 0,
          },
        });
        this.noteLeader(this.o.identity);
        return true;
      } catch (e) {
        if (e instanceof KubeApiError && e.conflict) return false;
        throw e;
      }
    }
    const holder = lease.spec.holderIdentity ?? '';
    const renewTime = lease.spec.renewTime ?? '';
    if (!this.observed || this.observed.holder !== holder || this.observed.renewTime !== renewTime) {
      this.observed = { holder, renewTime, at: Date.now() };
    }
    this.noteLeader(holder);
    const iHold = holder === this.o.identity;
    const expired = !holder || Date.now() - this.observed.at > (lease.spec.leaseDurationSeconds ?? durationS) * 1000;
    if (!iHold && !expired) return false;
    const spec = {
      ...lease.spec,
      holderIdentity: this.o.identity,
      leaseDurationSeconds: durationS,
      renewTime: micro(now),
      ...(iHold ? {} : { acquireTime: micro(now), leaseTransitions: (lease.spec.leaseTransitions ?? 0) + 1 }),
    };
    try {
      await this.client.request('PUT', `${this.path}/${this.o.name}`, { body: { ...lease, spec } });
    } catch (e) {
      if (e instanceof KubeApiError && e.conflict) return false;
      throw e;
    }
    this.observed = { holder: this.o.identity, renewTime: spec.renewTime, at: Date.now() };
    this.noteLeader(this.o.identity);
    return true;
  }

  private noteLeader(id: string) {
    if (id && id !== this.lastLeader) {
      this.lastLeader = id;
      this.o.onNewLeader?.(id);
    }
  }

  /** Stop campaigning; if leading, clear the holder so another replica takes over without waiting. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    if (!this.leading) return;
    this.leading = false;
    try {
      const lease = await this.client.getOrUndefined<Lease>(`${this.path}/${this.o.name}`);
      if (lease && lease.spec.holderIdentity === this.o.identity) {
        await this.client.request('PUT', `${this.path}/${this.o.name}`, {
          body: { ...lease, spec: { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1 } },
        });
      }
    } catch (e) {
      this.o.log?.('lease release failed', { error: (e as Error).message });
    }
  }
}
