/**
 * In-memory types of the SA payload (RFC 7296 §3.3). Kept in their own module so that the proposal parser
 * (src/ike/crypto/proposals.ts) can import them without pulling in the codec.
 */
import type { ProtocolId, TransformType } from '../../constants.js';

/** A transform attribute other than Key Length (RFC 7296 §3.3.5): a number is TV format, bytes are TLV format. */
export interface TransformAttribute {
  type: number;
  value: number | Uint8Array;
}

/** One transform substructure (RFC 7296 §3.3.2). `keyLength` is the Key Length TV attribute (type 14), in bits. */
export interface Transform {
  type: TransformType;
  id: number;
  keyLength?: number;
  /** Attributes other than Key Length, in wire order. */
  attributes?: TransformAttribute[];
}

/** One proposal substructure (RFC 7296 §3.3.1). `spi` is empty for the IKE SA in IKE_SA_INIT. */
export interface Proposal {
  num: number;
  protocol: ProtocolId;
  spi: Uint8Array;
  transforms: Transform[];
}
