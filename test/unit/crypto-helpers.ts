/** Shared helpers for the crypto tests: hex, vector loading, deterministic Random ports, both providers. */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createNobleProvider, createNodeProvider } from '../../src/ike/crypto/index.js';
import type { CryptoProvider, Random } from '../../src/ike/crypto/provider.js';

export const providers: readonly CryptoProvider[] = [createNodeProvider(), createNobleProvider()];

export function fromHex(hex: string): Uint8Array {
  return Uint8Array.from(Buffer.from(hex, 'hex'));
}

export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('hex');
}

export function ascii(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

/** Parse a KAT data file from test/vectors/. */
export function loadVectors<T>(file: string): T & { source: string } {
  const path = fileURLToPath(new URL(`../vectors/${file}`, import.meta.url));
  return JSON.parse(readFileSync(path, 'utf8')) as T & { source: string };
}

/** A Random port that hands out exactly the given chunks, in order, and fails on any other request. */
export function scriptedRandom(...chunks: Uint8Array[]): Random {
  const queue = [...chunks];
  return (length: number) => {
    const next = queue.shift();
    if (!next) throw new Error(`scripted random exhausted (asked for ${length} bytes)`);
    if (next.length !== length)
      throw new Error(`scripted random: asked for ${length} bytes, next chunk has ${next.length}`);
    return Uint8Array.from(next);
  };
}

/** A deterministic Random port: SHA-256 in counter mode over a seed label. */
export function seededRandom(seed: string): Random {
  let counter = 0;
  return (length: number) => {
    const out = new Uint8Array(length);
    for (let offset = 0; offset < length; offset += 32) {
      const block = createHash('sha256').update(`${seed}/${counter++}`).digest();
      out.set(block.subarray(0, Math.min(32, length - offset)), offset);
    }
    return out;
  };
}

/** Big-endian integer from hex. */
export function hexToBigint(hex: string): bigint {
  return BigInt(`0x${hex}`);
}

/** `value` as big-endian bytes of exactly `length` bytes. */
export function bigintBytes(value: bigint, length: number): Uint8Array {
  return fromHex(value.toString(16).padStart(length * 2, '0'));
}

/** Expect `fn` to throw an IkeError with `code`. */
export function errorCode(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return (err as { code?: string }).code ?? `untyped: ${String(err)}`;
  }
  return undefined;
}
