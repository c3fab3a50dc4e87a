/**
 * Stateless cookies (RFC 7296 §2.6): when half-open IKE SAs pass a threshold, the responder answers IKE_SA_INIT
 * with only a COOKIE notify and keeps no state; the initiator repeats its request with the cookie first.
 *
 *   Cookie = <VersionIDofSecret> | Hash(Ni | IPi | SPIi | <secret>)
 *
 * The secret rotates; cookies made with the previous secret stay valid for one more period so that an initiator
 * that got a cookie just before the rotation is not turned away.
 */

import { parseIp as addressBytes } from '../codec/ip.js';
import { concatBytes, equalBytes } from '../crypto/checks.js';
import type { CryptoProvider, Random } from '../crypto/provider.js';

interface Secret {
  version: number;
  bytes: Uint8Array;
}

export class CookieJar {
  private current: Secret;
  private previous: Secret | undefined;
  private rotatedAt: number;

  constructor(
    private readonly provider: CryptoProvider,
    private readonly random: Random,
    private readonly now: () => number,
    /** Rotation period in ms (default 10 minutes). */
    private readonly periodMs = 600_000,
  ) {
    this.current = { version: 0, bytes: random(32) };
    this.rotatedAt = now();
  }

  private rotateIfDue(): void {
    const elapsed = this.now() - this.rotatedAt;
    if (elapsed < this.periodMs) return;
    // After two or more idle periods the previous secret is too old to honour as well.
    this.previous = elapsed < 2 * this.periodMs ? this.current : undefined;
    this.current = { version: (this.current.version + 1) & 0xff, bytes: this.random(32) };
    this.rotatedAt = this.now();
  }

  private compute(secret: Secret, ni: Uint8Array, initiatorAddress: string, spiI: Uint8Array): Uint8Array {
    const hash = this.provider.hash('sha256', concatBytes(ni, addressBytes(initiatorAddress), spiI, secret.bytes));
    return concatBytes(new Uint8Array([secret.version]), hash);
  }

  make(ni: Uint8Array, initiatorAddress: string, spiI: Uint8Array): Uint8Array {
    this.rotateIfDue();
    return this.compute(this.current, ni, initiatorAddress, spiI);
  }

  verify(cookie: Uint8Array, ni: Uint8Array, initiatorAddress: string, spiI: Uint8Array): boolean {
    this.rotateIfDue();
    if (cookie.length !== 33) return false;
    for (const s of [this.current, this.previous]) {
      if (s && cookie[0] === s.version && equalBytes(cookie, this.compute(s, ni, initiatorAddress, spiI))) return true;
    }
    return false;
  }
}
