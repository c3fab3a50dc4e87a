/**
 * The task manager of one IKE SA: the only owner of message IDs, the window, retransmissions and the response cache
 * (RFC 7296 §2.1-§2.3, RFC 7383 §2.6.1 for fragments).
 *
 * - As initiator it activates queued task batches, asks each active task to build the request, sends it, and
 *   retransmits with exponential back-off until the response arrives or the tries are exhausted. Up to the peer's
 *   window size (SET_WINDOW_SIZE, default 1) requests may be outstanding.
 * - As responder it processes requests whose message ID is inside our window, answers them, and keeps the answers
 *   so that a retransmitted request is answered with the identical response without processing it again.
 *   Out-of-window and stale messages are dropped and counted.
 *
 * Work on one IKE SA is serialised: incoming packets and timers queue behind each other, so tasks may await the
 * kernel without interleaving.
 *
 * The manager is generic in the message types; the IKE SA supplies encoding, decoding and protection.
 */

import type { Cancel, Clock } from '../ports.js';
import type { RetransmitConfig } from '../sa/config.js';
import type { Task, TaskStatus } from './task.js';

/** The IKE header fields the manager routes on. */
export interface RoutingHeader {
  exchangeType: number;
  messageId: number;
  isResponse: boolean;
}

/** Result of decoding a packet: a message, a fragment that is not yet complete, or an error to answer or drop. */
export type DecodeOutcome<In> =
  | { kind: 'message'; message: In }
  | { kind: 'incomplete' }
  | { kind: 'invalid'; reason: string; notify?: number };

export interface TaskManagerHost<In, Out> {
  clock: Clock;
  retransmit: RetransmitConfig;
  /** A fresh outgoing message of this exchange with this message ID. */
  createMessage(exchangeType: number, isResponse: boolean, messageId: number): Out;
  /** Protect and (if needed) fragment; the packets of one message, sent and retransmitted together. */
  encode(message: Out): Uint8Array[] | Promise<Uint8Array[]>;
  send(packets: Uint8Array[]): void;
  /** Verify, decrypt and reassemble (keeps partial fragments itself). */
  decode(header: RoutingHeader, packet: Uint8Array, meta: unknown): DecodeOutcome<In> | Promise<DecodeOutcome<In>>;
  /** Whether the packet is a fragment other than the first (RFC 7383 §2.6.1: only the first triggers a resend). */
  isNonFirstFragment(packet: Uint8Array): boolean;
  /** Responder tasks for a request (e.g. by exchange type and payloads). An empty list answers with an empty response. */
  responderTasks(request: In, header: RoutingHeader): Task<In, Out>[];
  /** An invalid request inside the window: answer with this notify (e.g. INVALID_SYNTAX), or drop when undefined. */
  answerInvalid?(response: Out, notify: number): void;
  /** A task batch finished (or failed); the owner updates SA state and may queue further tasks. */
  onBatchDone?(tasks: Task<In, Out>[], status: 'done' | 'failed'): void;
  /** Retransmissions are exhausted: the peer is unreachable; the owner destroys or restarts the SA. */
  onRetransmitsExhausted(exchangeType: number, tasks: Task<In, Out>[]): void;
  /** Something went wrong in a task (a bug or a kernel error); the owner logs it. */
  onError?(err: unknown, where: string): void;
}

export interface TaskManagerStats {
  requestsSent: number;
  retransmits: number;
  responsesSent: number;
  /** Retransmitted requests answered from the cache. */
  cachedResponses: number;
  /** Requests or responses dropped because their message ID was outside the window or unknown. */
  droppedOutOfWindow: number;
  /** Packets dropped because they failed to decode or verify. */
  droppedInvalid: number;
}

interface Outstanding<In, Out> {
  messageId: number;
  exchangeType: number;
  tasks: Task<In, Out>[];
  packets: Uint8Array[];
  tries: number;
  timer: Cancel | undefined;
  /** Set while the response is being processed, so duplicates are ignored. */
  processing: boolean;
}

export class TaskManager<In, Out> {
  readonly stats: TaskManagerStats = {
    requestsSent: 0,
    retransmits: 0,
    responsesSent: 0,
    cachedResponses: 0,
    droppedOutOfWindow: 0,
    droppedInvalid: 0,
  };

  private readonly host: TaskManagerHost<In, Out>;
  private readonly queued: Task<In, Out>[][] = [];
  /** Tasks that returned 'again' and wait for their next exchange, oldest first. */
  private readonly continuing: Task<In, Out>[][] = [];
  private readonly outstanding = new Map<number, Outstanding<In, Out>>();
  private nextMid = 0;
  /** Lowest request message ID from the peer not yet answered. */
  private lowestUnanswered = 0;
  private readonly answered = new Map<number, Uint8Array[]>();
  private readonly inProgress = new Set<number>();
  private peerWindow = 1;
  private ourWindow = 1;
  /** Persistent responder tasks (e.g. created at IKE_SA_INIT and continued in IKE_AUTH). */
  private responderContinuing: Task<In, Out>[] = [];
  private chain: Promise<void> = Promise.resolve();
  private destroyed = false;

  constructor(host: TaskManagerHost<In, Out>) {
    this.host = host;
  }

  /** Our window (SET_WINDOW_SIZE we announced): how many peer requests we accept ahead. */
  setOurWindow(size: number): void {
    this.ourWindow = Math.max(1, Math.floor(size));
  }

  /** The peer's window: how many of our requests may be outstanding. */
  setPeerWindow(size: number): void {
    this.peerWindow = Math.max(1, Math.floor(size));
    this.kick();
  }

  /** Next message ID we will use for a request (for IKE SA rekeying and status). */
  get nextRequestId(): number {
    return this.nextMid;
  }

  /** Message ID of the next request we expect from the peer. */
  get expectedRequestId(): number {
    return this.lowestUnanswered;
  }

  /** Tasks queued or active as initiator, for collision checks (e.g. "is a rekey of this CHILD SA running?"). */
  initiatorTasks(): Task<In, Out>[] {
    const active = [...this.outstanding.values()].flatMap((o) => o.tasks);
    return [...active, ...this.continuing.flat(), ...this.queued.flat()];
  }

  /** Tasks whose request is on the wire now. */
  outstandingTasks(): Task<In, Out>[] {
    return [...this.outstanding.values()].flatMap((o) => o.tasks);
  }

  hasOutstanding(): boolean {
    return this.outstanding.size > 0;
  }

  /** Queue a batch of tasks that run together in their exchanges; starts it when the window allows. */
  queue(tasks: Task<In, Out>[]): void {
    if (this.destroyed || tasks.length === 0) return;
    this.queued.push(tasks);
    this.kick();
  }

  /** Keep responder tasks across exchanges (e.g. IKE_AUTH after IKE_SA_INIT). */
  keepResponderTasks(tasks: Task<In, Out>[]): void {
    this.responderContinuing = tasks;
  }

  /** Feed a packet that belongs to this SA (its header already parsed). */
  handle(header: RoutingHeader, packet: Uint8Array, meta?: unknown): Promise<void> {
    return this.serialise(() => this.doHandle(header, packet, meta), 'handle');
  }

  /** Stop everything: timers cancelled, tasks aborted, nothing sent any more. */
  destroy(reason: string): void {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const o of this.outstanding.values()) {
      o.timer?.();
      for (const t of o.tasks) t.abort?.(reason);
    }
    this.outstanding.clear();
    for (const batch of [...this.continuing, ...this.queued]) for (const t of batch) t.abort?.(reason);
    this.continuing.length = 0;
    this.queued.length = 0;
    for (const t of this.responderContinuing) t.abort?.(reason);
    this.responderContinuing = [];
    this.answered.clear();
  }

  get isDestroyed(): boolean {
    return this.destroyed;
  }

  /** Resolves when all queued work on this SA has run (for tests and orderly shutdown). */
  idle(): Promise<void> {
    return this.chain;
  }

  /** Run `fn` after all earlier work on this SA. Errors are reported, never thrown into the caller's chain. */
  serialise(fn: () => void | Promise<void>, where: string): Promise<void> {
    const next = this.chain.then(async () => {
      if (this.destroyed) return;
      try {
        await fn();
      } catch (err) {
        this.host.onError?.(err, where);
      }
    });
    this.chain = next;
    return next;
  }

  private kick(): void {
    if (this.destroyed) return;
    void this.serialise(() => this.initiate(), 'initiate');
  }

  private async initiate(): Promise<void> {
    while (!this.destroyed && this.outstanding.size < this.peerWindow) {
      // With a window above 1, never run two batches of the same multi-exchange sequence at once: continuing
      // batches go first, in order.
      const next = this.continuing.shift() ?? this.queued.shift();
      if (!next) return;
      const batch = next.filter((t) => t.ready?.() ?? true);
      for (const t of next) if (!batch.includes(t)) t.abort?.('no longer needed');
      if (batch.length === 0) continue;
      await this.sendRequest(batch, this.nextMid);
      this.nextMid = (this.nextMid + 1) >>> 0;
    }
  }

  private async sendRequest(tasks: Task<In, Out>[], messageId: number): Promise<void> {
    const exchangeType = tasks[0]!.exchange();
    const members = tasks.filter((t) => t.exchange() === exchangeType);
    const message = this.host.createMessage(exchangeType, false, messageId);
    for (const t of members) await t.build(message);
    const packets = await this.host.encode(message);
    const o: Outstanding<In, Out> = {
      messageId,
      exchangeType,
      tasks,
      packets,
      tries: 0,
      timer: undefined,
      processing: false,
    };
    this.outstanding.set(messageId, o);
    this.host.send(packets);
    this.stats.requestsSent++;
    this.armRetransmit(o);
  }

  private retransmitDelay(tries: number): number {
    const r = this.host.retransmit;
    const d = r.timeoutMs * r.base ** tries;
    return Math.round(r.maxTimeoutMs !== undefined ? Math.min(d, r.maxTimeoutMs) : d);
  }

  private armRetransmit(o: Outstanding<In, Out>): void {
    o.timer = this.host.clock.setTimer(
      this.retransmitDelay(o.tries),
      () => {
        void this.serialise(() => this.onRetransmitTimer(o), 'retransmit');
      },
      `retransmit:${o.messageId}`,
    );
  }

  private onRetransmitTimer(o: Outstanding<In, Out>): void {
    if (this.outstanding.get(o.messageId) !== o || o.processing) return;
    if (o.tries >= this.host.retransmit.tries) {
      this.outstanding.delete(o.messageId);
      for (const t of o.tasks) t.abort?.('retransmits exhausted');
      this.host.onRetransmitsExhausted(o.exchangeType, o.tasks);
      return;
    }
    o.tries++;
    this.stats.retransmits++;
    this.host.send(o.packets);
    this.armRetransmit(o);
  }

  private async doHandle(header: RoutingHeader, packet: Uint8Array, meta: unknown): Promise<void> {
    if (header.isResponse) await this.handleResponse(header, packet, meta);
    else await this.handleRequest(header, packet, meta);
  }

  private async handleResponse(header: RoutingHeader, packet: Uint8Array, meta: unknown): Promise<void> {
    const o = this.outstanding.get(header.messageId);
    if (!o || o.processing || o.exchangeType !== header.exchangeType) {
      this.stats.droppedOutOfWindow++;
      return;
    }
    const outcome = await this.host.decode(header, packet, meta);
    if (outcome.kind === 'incomplete') return;
    if (outcome.kind === 'invalid') {
      // A response that fails verification is dropped; the retransmit timer keeps running (RFC 7296 §2.21).
      this.stats.droppedInvalid++;
      return;
    }
    o.processing = true;
    o.timer?.();
    const members = o.tasks.filter((t) => t.exchange() === o.exchangeType);
    const waiting = o.tasks.filter((t) => t.exchange() !== o.exchangeType);
    const again: Task<In, Out>[] = [];
    let failed = false;
    let retry = false;
    for (const t of members) {
      const status: TaskStatus = await t.process(outcome.message);
      if (status === 'again') again.push(t);
      else if (status === 'retry') retry = true;
      else if (status === 'failed') failed = true;
    }
    this.outstanding.delete(o.messageId);
    if (this.destroyed) return;
    if (retry && !failed) {
      // Same message ID again (IKE_SA_INIT restarts at 0); nothing else may have been sent meanwhile.
      await this.sendRequest(o.tasks, o.messageId);
      return;
    }
    const rest = [...again, ...waiting];
    if (failed) {
      for (const t of rest) t.abort?.('batch failed');
      this.host.onBatchDone?.(o.tasks, 'failed');
    } else if (rest.length > 0) {
      this.continuing.push(rest);
    } else {
      this.host.onBatchDone?.(o.tasks, 'done');
    }
    await this.initiate();
  }

  private async handleRequest(header: RoutingHeader, packet: Uint8Array, meta: unknown): Promise<void> {
    const mid = header.messageId;
    const cached = this.answered.get(mid);
    if (cached) {
      // A retransmission: answer identically, once per retransmitted message (first fragment only).
      if (!this.host.isNonFirstFragment(packet)) {
        this.host.send(cached);
        this.stats.cachedResponses++;
      }
      return;
    }
    const inWindow = (mid - this.lowestUnanswered) >>> 0 < this.ourWindow;
    if (!inWindow || this.inProgress.has(mid)) {
      this.stats.droppedOutOfWindow++;
      return;
    }
    const outcome = await this.host.decode(header, packet, meta);
    if (outcome.kind === 'incomplete') return;
    if (outcome.kind === 'invalid') {
      this.stats.droppedInvalid++;
      if (outcome.notify !== undefined && this.host.answerInvalid) {
        const response = this.host.createMessage(header.exchangeType, true, mid);
        this.host.answerInvalid(response, outcome.notify);
        await this.respond(mid, response);
      }
      return;
    }
    this.inProgress.add(mid);
    try {
      const continuing = this.responderContinuing.some((t) => t.exchange() === header.exchangeType);
      const tasks = continuing ? this.responderContinuing : this.host.responderTasks(outcome.message, header);
      if (continuing) this.responderContinuing = [];
      // Tasks of a later exchange of the same batch (e.g. IKE_AUTH while answering IKE_SA_INIT) wait.
      const members = tasks.filter((t) => t.exchange() === header.exchangeType);
      const waiting = tasks.filter((t) => t.exchange() !== header.exchangeType);
      for (const t of members) await t.processRequest?.(outcome.message);
      const response = this.host.createMessage(header.exchangeType, true, mid);
      const again: Task<In, Out>[] = [];
      let failed = false;
      for (const t of members) {
        const status = (await t.buildResponse?.(response)) ?? 'done';
        if (status === 'again') again.push(t);
        else if (status === 'failed') failed = true;
      }
      if (this.destroyed) return;
      await this.respond(mid, response);
      const rest = [...again, ...waiting];
      if (failed) {
        for (const t of rest) t.abort?.('batch failed');
        this.host.onBatchDone?.(tasks, 'failed');
      } else if (rest.length > 0) {
        this.responderContinuing = rest;
      } else if (tasks.length > 0) {
        this.host.onBatchDone?.(tasks, 'done');
      }
    } finally {
      this.inProgress.delete(mid);
    }
  }

  private async respond(mid: number, response: Out): Promise<void> {
    const packets = await this.host.encode(response);
    if (this.destroyed) return;
    this.host.send(packets);
    this.stats.responsesSent++;
    this.answered.set(mid, packets);
    while (this.answered.has(this.lowestUnanswered)) this.lowestUnanswered = (this.lowestUnanswered + 1) >>> 0;
    // Keep the answers a retransmitting peer may still ask for: the last `ourWindow` message IDs.
    for (const m of this.answered.keys()) {
      if ((this.lowestUnanswered - m) >>> 0 > this.ourWindow) this.answered.delete(m);
    }
  }

  /** Whether the scheduled work is done, outstanding requests included (for tests). */
  get pendingRequests(): number {
    return this.outstanding.size;
  }

  /** Drop all cached responses (IKE SA rekeyed: the old SA answers nothing more). */
  forgetResponses(): void {
    this.answered.clear();
  }

  /** For an IKE SA created by rekeying: message IDs start again at 0 (RFC 7296 §2.18). */
  resetMessageIds(): void {
    this.nextMid = 0;
    this.lowestUnanswered = 0;
  }
}
