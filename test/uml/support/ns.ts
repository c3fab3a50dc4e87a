/** Namespace helpers for scripts running inside UML (or as root on the host): sh, netns workers. */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { fromWire, toWire } from './wire.js';

export function sh(cmd: string): string {
  return execFileSync('sh', ['-c', cmd], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

const here = dirname(fileURLToPath(import.meta.url));
const tsxLoader = (): string => {
  const req = createRequire(import.meta.url);
  return `file://${join(dirname(req.resolve('tsx/package.json')), 'dist/loader.mjs')}`;
};

export class NsWorker {
  private readonly child: ChildProcess;
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  readonly events: unknown[] = [];
  private readonly eventWaiters: { pred(e: unknown): boolean; resolve(e: unknown): void }[] = [];
  readonly ready: Promise<void>;
  stderr = '';

  constructor(readonly ns: string) {
    this.child = spawn(
      'ip',
      ['netns', 'exec', ns, process.execPath, '--import', tsxLoader(), join(here, 'worker.ts')],
      {
        stdio: ['pipe', 'pipe', 'pipe'],
      },
    );
    this.child.stderr?.on('data', (d: Buffer) => {
      this.stderr += d.toString();
    });
    let readyResolve!: () => void;
    let readyReject!: (e: Error) => void;
    this.ready = new Promise((res, rej) => {
      readyResolve = res;
      readyReject = rej;
    });
    this.child.once('exit', (code) => {
      const err = new Error(`worker in ${ns} exited (${code}): ${this.stderr.slice(-2000)}`);
      readyReject(err);
      for (const w of this.waiting.values()) w.reject(err);
      this.waiting.clear();
    });
    const rl = createInterface({ input: this.child.stdout! });
    rl.on('line', (line) => {
      const m = fromWire<{
        id?: number;
        ok?: boolean;
        value?: unknown;
        error?: string;
        code?: string;
        event?: unknown;
        ready?: boolean;
      }>(line);
      if (m.ready) return readyResolve();
      if (m.event !== undefined) {
        this.events.push(m.event);
        for (let i = this.eventWaiters.length - 1; i >= 0; i--) {
          const w = this.eventWaiters[i]!;
          if (w.pred(m.event)) {
            this.eventWaiters.splice(i, 1);
            w.resolve(m.event);
          }
        }
        return;
      }
      const w = m.id !== undefined ? this.waiting.get(m.id) : undefined;
      if (!w) return;
      this.waiting.delete(m.id!);
      if (m.ok) w.resolve(m.value);
      else w.reject(Object.assign(new Error(`${ns}: ${m.error}`), { code: m.code }));
    });
  }

  call<T = unknown>(cmd: string, args: Record<string, unknown> = {}): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.child.stdin!.write(`${toWire({ id, cmd, args })}\n`);
    });
  }

  xfrm<T = unknown>(method: string, ...args: unknown[]): Promise<T> {
    return this.call<T>('xfrm', { method, args });
  }

  waitEvent<T = unknown>(pred: (e: T) => boolean, timeoutMs: number): Promise<T> {
    const found = this.events.find((e) => pred(e as T));
    if (found) return Promise.resolve(found as T);
    return new Promise<T>((resolve, reject) => {
      const w = { pred: pred as (e: unknown) => boolean, resolve: resolve as (e: unknown) => void };
      this.eventWaiters.push(w);
      setTimeout(() => {
        const i = this.eventWaiters.indexOf(w);
        if (i >= 0) {
          this.eventWaiters.splice(i, 1);
          reject(new Error(`no matching event in ${timeoutMs} ms`));
        }
      }, timeoutMs).unref();
    });
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise<void>((r) => this.child.once('exit', () => r()));
    this.call('exit').catch(() => {});
    const t = setTimeout(() => this.child.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(t);
  }
}
