import { createHash, createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { PrfId } from '../../src/ike/constants.js';
import { defaultProvider, nobleProvider } from '../../src/ike/crypto/index.js';
import { pskAuth, signedOctets, verifyPskAuth } from '../../src/ike/sa/auth-psk.js';
import { CookieJar } from '../../src/ike/sa/cookie.js';
import { detectNat, natdHash } from '../../src/ike/sa/natd.js';

const hex = (s: string) => Uint8Array.from(Buffer.from(s, 'hex'));
const bytes = (n: number, fill: number) => new Uint8Array(n).fill(fill);

describe('PSK AUTH (RFC 7296 §2.15)', () => {
  const input = {
    ownInitMessage: bytes(300, 0x11),
    peerNonce: bytes(32, 0x22),
    skP: bytes(32, 0x33),
    idBody: hex('02000000') /* ID_FQDN + reserved */,
  };
  const psk = new TextEncoder().encode('correct horse battery staple');

  it('matches an independent computation with node:crypto HMAC, for both providers', () => {
    const idBody = Buffer.concat([Buffer.from(input.idBody), Buffer.from('site-a.example')]);
    const withId = { ...input, idBody: Uint8Array.from(idBody) };
    const maced = createHmac('sha256', Buffer.from(input.skP)).update(idBody).digest();
    const octets = Buffer.concat([Buffer.from(input.ownInitMessage), Buffer.from(input.peerNonce), maced]);
    const inner = createHmac('sha256', Buffer.from(psk)).update('Key Pad for IKEv2').digest();
    const expected = createHmac('sha256', inner).update(octets).digest();
    for (const p of [defaultProvider(), nobleProvider()]) {
      const so = signedOctets(p, PrfId.HMAC_SHA2_256, withId);
      expect(Buffer.from(so)).toEqual(octets);
      expect(Buffer.from(pskAuth(p, PrfId.HMAC_SHA2_256, psk, so))).toEqual(expected);
      expect(verifyPskAuth(p, PrfId.HMAC_SHA2_256, psk, so, Uint8Array.from(expected))).toBe(true);
    }
  });

  it('changes with every input and rejects a wrong PSK', () => {
    const p = defaultProvider();
    const base = pskAuth(p, PrfId.HMAC_SHA2_384, psk, signedOctets(p, PrfId.HMAC_SHA2_384, input));
    expect(base).toHaveLength(48);
    const variants = [
      { ...input, ownInitMessage: bytes(300, 0x12) },
      { ...input, peerNonce: bytes(32, 0x23) },
      { ...input, skP: bytes(32, 0x34) },
      { ...input, idBody: hex('01000000c0000201') },
    ];
    for (const v of variants) {
      expect(pskAuth(p, PrfId.HMAC_SHA2_384, psk, signedOctets(p, PrfId.HMAC_SHA2_384, v))).not.toEqual(base);
    }
    const so = signedOctets(p, PrfId.HMAC_SHA2_384, input);
    expect(verifyPskAuth(p, PrfId.HMAC_SHA2_384, new TextEncoder().encode('wrong'), so, base)).toBe(false);
    expect(verifyPskAuth(p, PrfId.HMAC_SHA2_384, psk, so, base.subarray(0, 47))).toBe(false);
  });
});

describe('NAT detection (RFC 7296 §2.23)', () => {
  const spiI = hex('0102030405060708');
  const spiR = bytes(8, 0);
  const p = defaultProvider();

  it('hashes SPIs, address and port with SHA-1', () => {
    const expected = createHash('sha1')
      .update(Buffer.concat([Buffer.from(spiI), Buffer.from(spiR), Buffer.from([192, 0, 2, 1]), Buffer.from([1, 244])]))
      .digest();
    expect(Buffer.from(natdHash(p, spiI, spiR, { address: '192.0.2.1', port: 500 }))).toEqual(expected);
    const v6 = natdHash(p, spiI, spiR, { address: '2001:db8::1', port: 4500 });
    const e6 = createHash('sha1')
      .update(
        Buffer.concat([
          Buffer.from(spiI),
          Buffer.from(spiR),
          Buffer.from('20010db8000000000000000000000001', 'hex'),
          Buffer.from([0x11, 0x94]),
        ]),
      )
      .digest();
    expect(Buffer.from(v6)).toEqual(e6);
  });

  it('detects which side is translated', () => {
    const peer = { address: '203.0.113.5', port: 500 };
    const me = { address: '192.0.2.10', port: 500 };
    const src = natdHash(p, spiI, spiR, peer);
    const dst = natdHash(p, spiI, spiR, me);
    const seen = { source: peer, destination: me };
    expect(detectNat(p, spiI, spiR, seen, [src], dst)).toEqual({ localBehindNat: false, remoteBehindNat: false });
    // The peer thought it was 198.51.100.7 (behind a NAT that rewrote it to 203.0.113.5).
    const natted = natdHash(p, spiI, spiR, { address: '198.51.100.7', port: 500 });
    expect(detectNat(p, spiI, spiR, seen, [natted], dst)).toEqual({ localBehindNat: false, remoteBehindNat: true });
    // The peer sent to an address that is not ours as we see it: we are behind a NAT.
    const otherDst = natdHash(p, spiI, spiR, { address: '198.51.100.1', port: 500 });
    expect(detectNat(p, spiI, spiR, seen, [src], otherDst)).toEqual({ localBehindNat: true, remoteBehindNat: false });
    // Any one matching source hash is enough (multi-homed peers send several).
    expect(detectNat(p, spiI, spiR, seen, [natted, src], dst).remoteBehindNat).toBe(false);
  });
});

describe('stateless cookies (RFC 7296 §2.6)', () => {
  function jar() {
    let t = 0;
    let seed = 1;
    const random = (n: number) => Uint8Array.from({ length: n }, () => (seed = (seed * 1103515245 + 12345) & 0xff));
    const j = new CookieJar(defaultProvider(), random, () => t, 1000);
    return { j, advance: (ms: number) => (t += ms) };
  }
  const ni = bytes(32, 7);
  const spi = hex('1122334455667788');

  it('accepts its own cookie and rejects any change', () => {
    const { j } = jar();
    const c = j.make(ni, '192.0.2.1', spi);
    expect(c).toHaveLength(33);
    expect(j.verify(c, ni, '192.0.2.1', spi)).toBe(true);
    expect(j.verify(c, bytes(32, 8), '192.0.2.1', spi)).toBe(false);
    expect(j.verify(c, ni, '192.0.2.2', spi)).toBe(false);
    expect(j.verify(c, ni, '192.0.2.1', hex('1122334455667789'))).toBe(false);
    const bad = c.slice();
    bad[10]! ^= 1;
    expect(j.verify(bad, ni, '192.0.2.1', spi)).toBe(false);
    expect(j.verify(c.subarray(0, 32), ni, '192.0.2.1', spi)).toBe(false);
  });

  it('rotates its secret: the previous one stays valid for one period', () => {
    const { j, advance } = jar();
    const c = j.make(ni, '2001:db8::1', spi);
    advance(1000);
    const c2 = j.make(ni, '2001:db8::1', spi);
    expect(c2[0]).not.toBe(c[0]);
    expect(j.verify(c, ni, '2001:db8::1', spi)).toBe(true);
    advance(1000);
    j.make(ni, '2001:db8::1', spi);
    expect(j.verify(c, ni, '2001:db8::1', spi)).toBe(false);
    expect(j.verify(c2, ni, '2001:db8::1', spi)).toBe(true);
  });
});

describe('stateless cookies after a long idle time', () => {
  it('does not honour a cookie two periods old even if nothing happened in between', () => {
    let t = 0;
    let seed = 3;
    const random = (n: number) => Uint8Array.from({ length: n }, () => (seed = (seed * 1103515245 + 12345) & 0xff));
    const j = new CookieJar(defaultProvider(), random, () => t, 1000);
    const ni = new Uint8Array(16).fill(1);
    const spi = new Uint8Array(8).fill(2);
    const c = j.make(ni, '192.0.2.9', spi);
    t = 2500;
    expect(j.verify(c, ni, '192.0.2.9', spi)).toBe(false);
  });
});
