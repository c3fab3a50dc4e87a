/**
 * Kubernetes Events (core/v1) for state changes: gateway elected or failed over, spec rejected, tunnel ready.
 * Best effort and rate limited (token bucket; excess events are dropped and counted), like client-go's recorder
 * spam filter, so that 10,000 tunnels changing at once cannot flood the API server.
 */
import type { KubeClient } from './kube.js';
import type { KObject } from './types.js';

export interface EventRecorderOptions {
  component: string;
  instance: string;
  /** Namespace for events about cluster-scoped objects. */
  clusterNamespace: string;
  qps?: number;
  burst?: number;
}

export class EventRecorder {
  private tokens: number;
  private last = Date.now();
  dropped = 0;
  sent = 0;

  constructor(
    private readonly client: KubeClient,
    private readonly o: EventRecorderOptions,
  ) {
    this.tokens = o.burst ?? 50;
  }

  record(
    obj: KObject & { apiVersion: string; kind: string },
    type: 'Normal' | 'Warning',
    reason: string,
    message: string,
  ): void {
    const now = Date.now();
    const qps = this.o.qps ?? 10;
    this.tokens = Math.min(this.o.burst ?? 50, this.tokens + ((now - this.last) / 1000) * qps);
    this.last = now;
    if (this.tokens < 1) {
      this.dropped++;
      return;
    }
    this.tokens--;
    const ns = obj.metadata.namespace ?? this.o.clusterNamespace;
    const ts = new Date(now).toISOString();
    this.sent++;
    void this.client
      .create(`/api/v1/namespaces/${ns}/events`, {
        apiVersion: 'v1',
        kind: 'Event',
        metadata: { generateName: `${obj.metadata.name}.`, namespace: ns },
        involvedObject: {
          apiVersion: obj.apiVersion,
          kind: obj.kind,
          name: obj.metadata.name,
          namespace: obj.metadata.namespace,
          uid: obj.metadata.uid,
          resourceVersion: obj.metadata.resourceVersion,
        },
        reason,
        message: message.slice(0, 1024),
        type,
        source: { component: this.o.component },
        reportingComponent: this.o.component,
        reportingInstance: this.o.instance,
        firstTimestamp: ts,
        lastTimestamp: ts,
        count: 1,
      })
      .catch(() => {
        this.dropped++;
      });
  }
}
