/** Shared helpers of the codec tests (not a test file). */
import { IkeError } from '../../src/ike/errors.js';

export const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/[\s:]/g, ''), 'hex'));
export const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

export function catchError(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  throw new Error('expected an exception');
}

/** The IkeError code thrown by f (rethrows anything that is not an IkeError). */
export function codeOf(f: () => unknown): string {
  const e = catchError(f);
  if (!(e instanceof IkeError)) throw e;
  return e.code;
}
