/**
 * Informers over @kubernetes/client-node's ListWatch: list through our counting KubeClient, watch through
 * client-node's Watch, restart with back-off after errors, and expose hasSynced() for the initial list.
 */
import { type KubeConfig, type KubernetesObject, ListWatch, Watch } from '@kubernetes/client-node';
import type { KubeClient, KubeList } from './kube.js';
import type { KObject } from './types.js';

export interface InformerHandlers<T> {
  onAdd?(obj: T): void;
  onUpdate?(obj: T): void;
  onDelete?(obj: T): void;
}

export class Informer<T extends KObject> {
  private lw?: ListWatch<KubernetesObject>;
  private stopped = false;
  private synced = false;
  private restartTimer?: NodeJS.Timeout;
  private backoffMs = 500;
  private readonly syncWaiters: Array<() => void> = [];

  constructor(
    private readonly kc: KubeConfig,
    private readonly client: KubeClient,
    readonly path: string,
    private readonly handlers: InformerHandlers<T>,
    private readonly opts: { labelSelector?: string; fieldSelector?: string; onError?: (e: unknown) => void } = {},
  ) {}

  async start(): Promise<void> {
    this.stopped = false;
    const watch = new Watch(this.kc);
    // Quiet resources get no events for minutes; reconnect from the resourceVersion, not a relist.
    (watch as unknown as { requestTimeoutMs: number }).requestTimeoutMs = 300_000;
    const listFn = async () => {
      const query: Record<string, string | undefined> = {
        labelSelector: this.opts.labelSelector,
        fieldSelector: this.opts.fieldSelector,
      };
      const l: KubeList<T> = await this.client.list<T>(this.path, query);
      return l;
    };
    const lw = new ListWatch<KubernetesObject>(
      this.path,
      watch,
      listFn as never,
      false,
      this.opts.labelSelector,
      this.opts.fieldSelector,
    );
    this.lw = lw;
    lw.on('add', (o) => this.handlers.onAdd?.(o as unknown as T));
    lw.on('update', (o) => this.handlers.onUpdate?.(o as unknown as T));
    lw.on('delete', (o) => this.handlers.onDelete?.(o as unknown as T));
    lw.on('error', (e) => {
      if (this.stopped) return;
      this.opts.onError?.(e);
      clearTimeout(this.restartTimer);
      this.restartTimer = setTimeout(() => {
        this.backoffMs = Math.min(this.backoffMs * 2, 30_000);
        void this.lw?.start().catch((err: unknown) => this.opts.onError?.(err));
      }, this.backoffMs);
    });
    lw.on('connect', () => {
      this.backoffMs = 500;
    });
    for (;;) {
      try {
        await lw.start();
        break;
      } catch (e) {
        this.opts.onError?.(e);
        if (this.stopped) return;
        await new Promise((r) => setTimeout(r, this.backoffMs));
        this.backoffMs = Math.min(this.backoffMs * 2, 30_000);
      }
    }
    this.synced = true;
    for (const w of this.syncWaiters.splice(0)) w();
  }

  hasSynced(): boolean {
    return this.synced;
  }

  waitForSync(): Promise<void> {
    return this.synced ? Promise.resolve() : new Promise((r) => this.syncWaiters.push(r));
  }

  get(name: string, namespace?: string): T | undefined {
    return this.lw?.get(name, namespace) as T | undefined;
  }

  list(namespace?: string): ReadonlyArray<T> {
    return (this.lw?.list(namespace) ?? []) as unknown as ReadonlyArray<T>;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.restartTimer);
    await this.lw?.stop();
  }
}
