/**
 * A thin Kubernetes REST client over node:https (keep-alive), authenticated through @kubernetes/client-node's
 * KubeConfig. It counts every request by verb (the bench reports them) and maps failures to KubeApiError.
 * Server-side apply goes through apply()/applyStatus() with the fixed field manager.
 */
import { Agent, request as httpsRequest, type RequestOptions } from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';

export const FIELD_MANAGER = 'ipsec-mesh-operator';

export class KubeApiError extends Error {
  readonly code = 'ERR_IPSEC_MESH_KUBE_API';
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
    readonly method: string,
    readonly path: string,
  ) {
    super(`${method} ${path}: ${status} ${reason}: ${message}`);
    this.name = 'KubeApiError';
  }
  get notFound(): boolean {
    return this.status === 404;
  }
  get conflict(): boolean {
    return this.status === 409;
  }
  /** 4xx other than conflict/throttling: retrying the same request will not help. */
  get terminal(): boolean {
    return this.status >= 400 && this.status < 500 && this.status !== 409 && this.status !== 429;
  }
}

export interface KubeList<T> {
  items: T[];
  metadata: { resourceVersion?: string; continue?: string };
}

export interface RequestStats {
  total: number;
  byVerb: Record<string, number>;
}

export class KubeClient {
  readonly stats: RequestStats = { total: 0, byVerb: {} };
  private readonly agent: Agent;
  private readonly server: URL;

  constructor(
    readonly kc: KubeConfig,
    opts: { maxSockets?: number } = {},
  ) {
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new Error('kubeconfig has no current cluster');
    this.server = new URL(cluster.server);
    this.agent = new Agent({ keepAlive: true, maxSockets: opts.maxSockets ?? 16 });
  }

  close(): void {
    this.agent.destroy();
  }

  count(verb: string): void {
    this.stats.total++;
    this.stats.byVerb[verb] = (this.stats.byVerb[verb] ?? 0) + 1;
  }

  async request<T>(
    method: string,
    path: string,
    opts: { body?: unknown; contentType?: string; query?: Record<string, string | undefined> } = {},
  ): Promise<T> {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(opts.query ?? {})) if (v !== undefined) q.set(k, v);
    const fullPath = `${this.server.pathname.replace(/\/$/, '')}${path}${q.size ? `?${q}` : ''}`;
    const headers: Record<string, string | number> = { accept: 'application/json' };
    const reqOpts: RequestOptions = {
      host: this.server.hostname,
      port: this.server.port || 443,
      path: fullPath,
      method,
      agent: this.agent,
      headers,
    };
    const data = opts.body === undefined ? undefined : JSON.stringify(opts.body);
    if (data !== undefined) {
      headers['content-type'] = opts.contentType ?? 'application/json';
      headers['content-length'] = Buffer.byteLength(data);
    }
    await this.kc.applyToHTTPSOptions(reqOpts);
    reqOpts.agent = this.agent;
    this.count(method);
    return new Promise<T>((resolve, reject) => {
      const req = httpsRequest(reqOpts, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) {
            try {
              resolve((text ? JSON.parse(text) : {}) as T);
            } catch (e) {
              reject(e);
            }
            return;
          }
          let reason = res.statusMessage ?? 'Error';
          let message = text.slice(0, 2000);
          try {
            const st = JSON.parse(text) as { reason?: string; message?: string };
            reason = st.reason ?? reason;
            message = st.message ?? message;
          } catch {
            /* not a Status */
          }
          reject(new KubeApiError(status, reason, message, method, path));
        });
      });
      req.on('error', reject);
      req.setTimeout(60_000, () => req.destroy(new Error(`${method} ${path}: timeout`)));
      req.end(data);
    });
  }

  get<T>(path: string): Promise<T> {
    return this.request<T>('GET', path);
  }

  /** GET that maps 404 to undefined. */
  async getOrUndefined<T>(path: string): Promise<T | undefined> {
    try {
      return await this.get<T>(path);
    } catch (e) {
      if (e instanceof KubeApiError && e.notFound) return undefined;
      throw e;
    }
  }

  /** List all pages. */
  async list<T>(path: string, query: Record<string, string | undefined> = {}): Promise<KubeList<T>> {
    const items: T[] = [];
    let cont: string | undefined;
    let rv: string | undefined;
    do {
      const page = await this.request<KubeList<T>>('GET', path, { query: { ...query, limit: '500', continue: cont } });
      items.push(...page.items);
      cont = page.metadata.continue || undefined;
      rv = page.metadata.resourceVersion;
    } while (cont);
    return { items, metadata: { resourceVersion: rv } };
  }

  create<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>('POST', path, { body });
  }

  delete(path: string): Promise<unknown> {
    return this.request('DELETE', path);
  }

  /** Server-side apply of the main resource with our field manager. */
  apply<T>(path: string, body: unknown, force = true): Promise<T> {
    return this.request<T>('PATCH', path, {
      body,
      contentType: 'application/apply-patch+yaml',
      query: { fieldManager: FIELD_MANAGER, force: force ? 'true' : undefined },
    });
  }

  /** Server-side apply of the status subresource. */
  applyStatus<T>(path: string, body: unknown, fieldManager = FIELD_MANAGER): Promise<T> {
    return this.request<T>('PATCH', `${path}/status`, {
      body,
      contentType: 'application/apply-patch+yaml',
      query: { fieldManager, force: 'true' },
    });
  }

  /** JSON merge patch. */
  mergePatch<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>('PATCH', path, { body, contentType: 'application/merge-patch+json' });
  }

  /** JSON patch (RFC 6902), e.g. guarded finalizer edits with a `test` op. */
  jsonPatch<T>(path: string, ops: unknown[]): Promise<T> {
    return this.request<T>('PATCH', path, { body: ops, contentType: 'application/json-patch+json' });
  }
}
