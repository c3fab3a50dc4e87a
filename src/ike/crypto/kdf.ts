/**
 * IKEv2 key derivation (RFC 7296 §2.14, §2.17, §2.18; RFC 9370 §2.2.2 for additional key exchanges).
 *
 *   SKEYSEED = prf(Ni | Nr, g^ir)
 *   {SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr} = prf+(SKEYSEED, Ni | Nr | SPIi | SPIr)
 *   KEYMAT   = prf+(SK_d, [g^ir (new) | [SK(1) | ... ]] Ni | Nr)               (CHILD SA, §2.17 / RFC 9370 §2.2.4)
 *   SKEYSEED = prf(SK_d (old), [g^ir (new) | [SK(1) | ...]] Ni | Nr)           (IKE SA rekey, §2.18 / RFC 9370)
 *   SKEYSEED(n) = prf(SK_d(n-1), SK(n) | Ni | Nr)                              (IKE_INTERMEDIATE ADDKE, RFC 9370 §2.2.2)
 *
 * Nothing here logs or puts key bytes in errors.
 */
import type { EncrId, IntegId, PrfId } from '../constants.js';
import { CryptoError } from '../errors.js';
import { concatBytes } from './checks.js';
import { prf, prfPlus } from './prf.js';
import type { CryptoProvider } from './provider.js';
import { type CipherSuite, cipherSuiteKeyLengths, prfKeyLength } from './transforms.js';

/** The negotiated IKE SA transforms that decide the key lengths. */
export interface IkeSuite {
  prfId: PrfId;
  encrId: EncrId;
  /** Key Length attribute in bits (absent for ChaCha20-Poly1305). */
  keyLength?: number | undefined;
  /** Absent or NONE with an AEAD. */
  integId?: IntegId | undefined;
}

export interface IkeSaKeys {
  skD: Uint8Array;
  skAi: Uint8Array;
  skAr: Uint8Array;
  skEi: Uint8Array;
  skEr: Uint8Array;
  skPi: Uint8Array;
  skPr: Uint8Array;
}

export interface IkeKeyLengths {
  /** SK_d, SK_pi, SK_pr: the PRF's preferred key length. */
  prf: number;
  /** SK_ai, SK_ar (0 for AEAD). */
  integ: number;
  /** SK_ei, SK_er (including the AEAD salt). */
  encr: number;
  total: number;
}

export function ikeKeyLengths(suite: IkeSuite): IkeKeyLengths {
  const p = prfKeyLength(suite.prfId);
  const { encKeyLength, integKeyLength } = cipherSuiteKeyLengths(suite);
  return { prf: p, integ: integKeyLength, encr: encKeyLength, total: 3 * p + 2 * integKeyLength + 2 * encKeyLength };
}

function checkSpi(spi: Uint8Array, name: string): void {
  if (spi.length !== 8) throw new CryptoError('CRYPTO_INVALID_LENGTH', `${name} must be 8 bytes, got ${spi.length}`);
}

/** SKEYSEED = prf(Ni | Nr, g^ir) (RFC 7296 §2.14). */
export function skeyseed(
  provider: CryptoProvider,
  prfId: PrfId,
  ni: Uint8Array,
  nr: Uint8Array,
  sharedSecret: Uint8Array,
): Uint8Array {
  return prf(provider, prfId, concatBytes(ni, nr), sharedSecret);
}

/**
 * SKEYSEED for a rekeyed IKE SA: prf(SK_d(old), g^ir(new) | Ni | Nr) (RFC 7296 §2.18); with RFC 9370 additional key
 * exchanges pass every shared secret in order (g^ir first, then SK(1), SK(2), ...).
 */
export function rekeySkeyseed(
  provider: CryptoProvider,
  prfId: PrfId,
  oldSkD: Uint8Array,
  sharedSecrets: Uint8Array | readonly Uint8Array[],
  ni: Uint8Array,
  nr: Uint8Array,
): Uint8Array {
  const secrets = sharedSecrets instanceof Uint8Array ? [sharedSecrets] : sharedSecrets;
  return prf(provider, prfId, oldSkD, concatBytes(...secrets, ni, nr));
}

/**
 * RFC 9370 §2.2.2: after the n-th additional key exchange in IKE_INTERMEDIATE, SKEYSEED(n) =
 * prf(SK_d(n-1), SK(n) | Ni | Nr); all SK_* are then derived again with `deriveIkeSaKeys` (same nonces and SPIs).
 */
export function additionalKeSkeyseed(
  provider: CryptoProvider,
  prfId: PrfId,
  previousSkD: Uint8Array,
  sharedSecret: Uint8Array,
  ni: Uint8Array,
  nr: Uint8Array,
): Uint8Array {
  return prf(provider, prfId, previousSkD, concatBytes(sharedSecret, ni, nr));
}

/** The whole prf+ output for the IKE SA keys (the "DKM" of SP 800-135 §7.4), `length` bytes. */
export function ikeKeyMaterial(
  provider: CryptoProvider,
  prfId: PrfId,
  seed: Uint8Array,
  ni: Uint8Array,
  nr: Uint8Array,
  spiI: Uint8Array,
  spiR: Uint8Array,
  length: number,
): Uint8Array {
  checkSpi(spiI, 'SPIi');
  checkSpi(spiR, 'SPIr');
  return prfPlus(provider, prfId, seed, concatBytes(ni, nr, spiI, spiR), length);
}

/** {SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr} = prf+(SKEYSEED, Ni | Nr | SPIi | SPIr) (RFC 7296 §2.14). */
export function deriveIkeSaKeys(
  provider: CryptoProvider,
  suite: IkeSuite,
  seed: Uint8Array,
  ni: Uint8Array,
  nr: Uint8Array,
  spiI: Uint8Array,
  spiR: Uint8Array,
): IkeSaKeys {
  const len = ikeKeyLengths(suite);
  const km = ikeKeyMaterial(provider, suite.prfId, seed, ni, nr, spiI, spiR, len.total);
  let offset = 0;
  const next = (n: number) => {
    const part = km.slice(offset, offset + n);
    offset += n;
    return part;
  };
  const keys: IkeSaKeys = {
    skD: next(len.prf),
    skAi: next(len.integ),
    skAr: next(len.integ),
    skEi: next(len.encr),
    skEr: next(len.encr),
    skPi: next(len.prf),
    skPr: next(len.prf),
  };
  km.fill(0);
  return keys;
}

/**
 * KEYMAT = prf+(SK_d, [g^ir(new) | [SK(1) | ...]] Ni | Nr) (RFC 7296 §2.17, RFC 9370 §2.2.4), `length` bytes.
 * `sharedSecrets` is empty for a CHILD SA without PFS.
 */
export function childKeyMaterial(
  provider: CryptoProvider,
  prfId: PrfId,
  skD: Uint8Array,
  ni: Uint8Array,
  nr: Uint8Array,
  length: number,
  sharedSecrets: readonly Uint8Array[] = [],
): Uint8Array {
  return prfPlus(provider, prfId, skD, concatBytes(...sharedSecrets, ni, nr), length);
}

export interface DirectionKeys {
  /** Cipher key (plus salt for AEAD), as the kernel's ESP algorithm expects it. */
  encKey: Uint8Array;
  /** Integrity key; empty for AEAD. */
  integKey: Uint8Array;
}

export interface ChildSaKeys {
  /** Keys of the SA carrying initiator -> responder traffic (the responder's inbound SA). */
  initiatorToResponder: DirectionKeys;
  /** Keys of the SA carrying responder -> initiator traffic. */
  responderToInitiator: DirectionKeys;
}

/** Total KEYMAT bytes for a CHILD SA pair with `suite` (both directions). */
export function childKeyMaterialLength(suite: CipherSuite): number {
  const { encKeyLength, integKeyLength } = cipherSuiteKeyLengths(suite);
  return 2 * (encKeyLength + integKeyLength);
}

/**
 * Split KEYMAT for an ESP CHILD SA pair (RFC 7296 §2.17): initiator->responder keys first, and within one direction
 * the encryption key before the integrity key.
 */
export function deriveChildSaKeys(
  provider: CryptoProvider,
  prfId: PrfId,
  skD: Uint8Array,
  suite: CipherSuite,
  ni: Uint8Array,
  nr: Uint8Array,
  sharedSecrets: readonly Uint8Array[] = [],
): ChildSaKeys {
  const { encKeyLength, integKeyLength } = cipherSuiteKeyLengths(suite);
  const km = childKeyMaterial(provider, prfId, skD, ni, nr, 2 * (encKeyLength + integKeyLength), sharedSecrets);
  let offset = 0;
  const next = (n: number) => {
    const part = km.slice(offset, offset + n);
    offset += n;
    return part;
  };
  const initiatorToResponder = { encKey: next(encKeyLength), integKey: next(integKeyLength) };
  const responderToInitiator = { encKey: next(encKeyLength), integKey: next(integKeyLength) };
  km.fill(0);
  return { initiatorToResponder, responderToInitiator };
}
