/** The simulation harness of the IKEv2 engine: a fake clock, seeded randomness, a lossy network, a fake kernel. */
export { DEFAULT_EPOCH_MS, FakeClock, type FakeClockOptions, type PendingTimer } from './clock.js';
export {
  ERRNO,
  type ErrnoCode,
  type Expiration,
  equalKeys,
  type KernelCall,
  KernelError,
  type KernelOp,
  keyMismatch,
  RecordingKernel,
  type RecordingKernelOptions,
  redactSa,
  type TrafficResult,
  verifyPairing,
} from './kernel.js';
export {
  type CapturedPacket,
  canonicalAddress,
  type DropReason,
  type FilterPacket,
  formatTraceEvent,
  type LinkConditions,
  type NetworkStats,
  type PacketFilter,
  type PacketHandler,
  SimNetwork,
  type SimNetworkOptions,
  type TraceEvent,
} from './network.js';
export { SeededRandom, seededBytes } from './random.js';
export { type SimHost, SimWorld, type SimWorldOptions } from './world.js';
