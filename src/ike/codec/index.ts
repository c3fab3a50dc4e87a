/** Public API of the IKEv2 wire format codec. */
export type { Proposal, Transform, TransformAttribute } from './payloads/sa-types.js';
