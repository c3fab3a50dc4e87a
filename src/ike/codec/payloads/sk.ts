/**
 * Encrypted and Authenticated payload SK (RFC 7296 §3.14).
 *
 *                      1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * | Next Payload  |C|  RESERVED   |         Payload Length        |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                     Initialization Vector                     |
 * |         (length is block size for encryption algorithm)       |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * ~                    Encrypted IKE Payloads                     ~
 * +               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |               |             Padding (0-255 octets)            |
 * +-+-+-+-+-+-+-+-+                               +-+-+-+-+-+-+-+-+
 * |                                               |  Pad Length   |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * ~                    Integrity Checksum Data                    ~
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * Next Payload is the type of the first inner payload. SK is always the last payload of a message. The cipher
 * (SkCipher) sees "aad" = the message from the IKE header through this payload's generic header, and the
 * plaintext = inner payloads || padding || pad length; for AEAD (RFC 5282, RFC 7634) the IV is 8 bytes and the
 * ICV is the tag.
 */
import { NotifyType, type PayloadType } from '../../constants.js';
import type { SkCipher } from '../../crypto/provider.js';
import { DecodeError, IkeError } from '../../errors.js';
import { fail, invalid } from '../reader.js';
import type { PayloadBase } from './generic.js';

/** A received SK payload, not yet decrypted. */
export interface SkPayload extends PayloadBase {
  type: PayloadType.SK;
  /** Type of the first inner payload (the generic header's Next Payload). */
  innerNext: number;
  /** IV || ciphertext || ICV, as received. */
  body: Uint8Array;
  /** The message bytes authenticated along with the body (header through this payload's generic header). */
  aad: Uint8Array;
}

/** Padding for `innerLength` bytes of inner payloads: the pad length byte plus pad bytes fill a whole block. */
export function skPadLength(innerLength: number, blockSize: number): number {
  const rem = (innerLength + 1) % blockSize;
  return rem === 0 ? 0 : blockSize - rem;
}

/** Length of the SK/SKF body (IV || ciphertext || ICV) for `innerLength` bytes of inner payloads. */
export function skBodyLength(innerLength: number, cipher: SkCipher): number {
  return cipher.ivLength + innerLength + skPadLength(innerLength, cipher.blockSize) + 1 + cipher.icvLength;
}

/** Build the padded plaintext (zero padding, RFC 7296 §3.14 lets the sender choose) and seal it. */
export function sealSkBody(cipher: SkCipher, aad: Uint8Array, inner: Uint8Array, iv: Uint8Array): Uint8Array {
  if (!(iv instanceof Uint8Array) || iv.length !== cipher.ivLength) invalid(`IV must be ${cipher.ivLength} bytes`);
  const pad = skPadLength(inner.length, cipher.blockSize);
  const plaintext = new Uint8Array(inner.length + pad + 1);
  plaintext.set(inner);
  plaintext[plaintext.length - 1] = pad;
  const body = cipher.seal(aad, plaintext, iv);
  if (body.length !== cipher.ivLength + plaintext.length + cipher.icvLength) {
    invalid('cipher returned a body of unexpected length');
  }
  return body;
}

/**
 * Verify and decrypt an SK/SKF body; returns the inner payload bytes (padding removed).
 * Throws DecodeError: DECODE_BAD_LENGTH for a body the cipher cannot hold, DECODE_INTEGRITY when authentication
 * fails, DECODE_BAD_VALUE for a pad length larger than the plaintext.
 */
export function openSkBody(cipher: SkCipher, aad: Uint8Array, body: Uint8Array): Uint8Array {
  const ctLength = body.length - cipher.ivLength - cipher.icvLength;
  if (ctLength < 1) fail('DECODE_BAD_LENGTH', `encrypted payload body of ${body.length} bytes is too short`);
  if (ctLength % cipher.blockSize !== 0) fail('DECODE_BAD_LENGTH', 'ciphertext is not a whole number of blocks');
  let plaintext: Uint8Array;
  try {
    plaintext = cipher.open(aad, body);
  } catch (e) {
    if (e instanceof DecodeError) throw e;
    if (e instanceof IkeError) {
      // AUTHENTICATION_FAILED is not sent for a bad ICV (RFC 7296 §2.21.2: drop silently); the code tells the engine.
      throw new DecodeError('DECODE_INTEGRITY', 'encrypted payload failed integrity check', { cause: e });
    }
    throw e;
  }
  if (plaintext.length !== ctLength) fail('DECODE_BAD_LENGTH', 'cipher returned plaintext of unexpected length');
  const pad = plaintext[plaintext.length - 1]!;
  if (pad + 1 > plaintext.length) {
    throw new DecodeError('DECODE_BAD_VALUE', `pad length ${pad} exceeds the plaintext`, {
      notify: NotifyType.INVALID_SYNTAX,
    });
  }
  return plaintext.subarray(0, plaintext.length - pad - 1);
}
