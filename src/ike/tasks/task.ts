/**
 * A task is one concern of the protocol (IKE init, NAT detection, authentication, CHILD create/rekey/delete, IKE
 * rekey/delete, liveness) in one role. An exchange is carried by the set of tasks active for it: each task adds its
 * payloads to the outgoing message and reads its payloads from the incoming one, as in strongSwan's libcharon.
 *
 * Initiator: build(request) then process(response). Responder: process(request) then build(response).
 * Only the task manager assigns message IDs, retransmits, and caches responses; tasks never send anything.
 */

/** Outcome of a task's step. */
export type TaskStatus =
  /** The task is finished. */
  | 'done'
  /** The task needs another exchange (e.g. IKE_AUTH after IKE_SA_INIT); it stays active. */
  | 'again'
  /**
   * Initiator only: the exchange must be sent again from the start with the same message ID, e.g. after
   * INVALID_KE_PAYLOAD or COOKIE in IKE_SA_INIT (RFC 7296 §1.2, §2.6).
   */
  | 'retry'
  /** The task failed; the owner decides what that means for the SA (the task has recorded why). */
  | 'failed';

export interface Task<In, Out> {
  /** Stable name for logs and tests, e.g. 'ike-init', 'child-rekey'. */
  readonly name: string;
  /** Exchange type this task needs for its next round as initiator. */
  exchange(): number;
  /** Initiator: add payloads to the request. */
  build(request: Out): void | Promise<void>;
  /** Initiator: read the response. */
  process(response: In): TaskStatus | Promise<TaskStatus>;
  /** Responder: read the request. */
  processRequest?(request: In): void | Promise<void>;
  /** Responder: add payloads to the response. */
  buildResponse?(response: Out): TaskStatus | Promise<TaskStatus>;
  /**
   * Initiator: whether the task still has something to do when its batch is about to start (e.g. the CHILD SA to
   * rekey may have been deleted meanwhile). A batch whose tasks are all not ready is dropped.
   */
  ready?(): boolean;
  /** The task was dropped without completing (SA destroyed, retransmits exhausted); release what it holds. */
  abort?(reason: string): void;
}
