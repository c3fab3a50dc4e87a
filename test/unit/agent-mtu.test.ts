/**
 * ESP overhead and inner MTU (src/agent/mtu.ts). Every expected value is worked out by hand below from the packet
 * layout (RFC 4303 §2; IVs: RFC 3602 §3, RFC 4106 §3.1, RFC 7634 §2; ICVs: RFC 4106 §3.3, RFC 2404, RFC 4868 §2.3;
 * UDP encapsulation RFC 3948 §2.1) and equals Linux's esp4_get_mtu() for tunnel mode:
 *   inner = floor((MTU - outerIP - udp - 8 - iv - icv) / block) * block - 2
 */
import { describe, expect, it } from 'vitest';
import { type EspShape, espOverhead, innerMtu, MtuInputError, mssFor, tunnelMtu } from '../../src/agent/mtu.js';
import { EncrId, IntegId } from '../../src/ike/constants.js';

const shape = (o: Partial<EspShape> & Pick<EspShape, 'encryption'>): EspShape => ({
  mode: 'tunnel',
  outerFamily: 4,
  udpEncapsulation: false,
  ...o,
});

describe('innerMtu: a table worked out by hand', () => {
  const rows: { name: string; s: EspShape; mtu: number; inner: number; why: string }[] = [
    {
      name: 'aes256gcm16, IPv4, no NAT, 1500',
      s: shape({ encryption: EncrId.AES_GCM_16 }),
      mtu: 1500,
      inner: 1446,
      why: '1500-20-8-8-16 = 1448 (multiple of 4) - 2',
    },
    {
      name: 'aes256gcm16, IPv4, NAT-T, 1500',
      s: shape({ encryption: EncrId.AES_GCM_16, udpEncapsulation: true }),
      mtu: 1500,
      inner: 1438,
      why: '1500-20-8-8-8-16 = 1440 - 2',
    },
    {
      name: 'aes256gcm16, IPv4, no NAT, 1300 (the UML test path)',
      s: shape({ encryption: EncrId.AES_GCM_16 }),
      mtu: 1300,
      inner: 1246,
      why: '1300-52 = 1248 - 2',
    },
    {
      name: 'aes256gcm16, IPv4, no NAT, 1301 (alignment to 4 bytes)',
      s: shape({ encryption: EncrId.AES_GCM_16 }),
      mtu: 1301,
      inner: 1246,
      why: '1301-52 = 1249 -> 1248 - 2',
    },
    {
      name: 'aes128gcm12, IPv4, 1500',
      s: shape({ encryption: EncrId.AES_GCM_12 }),
      mtu: 1500,
      inner: 1450,
      why: '1500-20-8-8-12 = 1452 - 2',
    },
    {
      name: 'aes128gcm8, IPv6 outer, 1280',
      s: shape({ encryption: EncrId.AES_GCM_8, outerFamily: 6 }),
      mtu: 1280,
      inner: 1214,
      why: '1280-40-8-8-8 = 1216 - 2',
    },
    {
      name: 'chacha20poly1305, IPv4, 1500',
      s: shape({ encryption: EncrId.CHACHA20_POLY1305 }),
      mtu: 1500,
      inner: 1446,
      why: 'same layout as GCM-16: IV 8, ICV 16',
    },
    {
      name: 'aes128-sha256 (CBC), IPv4, 1500',
      s: shape({ encryption: EncrId.AES_CBC, integrity: IntegId.HMAC_SHA2_256_128 }),
      mtu: 1500,
      inner: 1438,
      why: '1500-20-8-16-16 = 1440 = 90*16, - 2',
    },
    {
      name: 'aes128-sha1 (CBC), IPv4, 1500',
      s: shape({ encryption: EncrId.AES_CBC, integrity: IntegId.HMAC_SHA1_96 }),
      mtu: 1500,
      inner: 1438,
      why: '1500-20-8-16-12 = 1444 -> 1440 (90*16), - 2',
    },
    {
      name: 'aes256-sha512 (CBC), IPv4, NAT-T, 1400',
      s: shape({ encryption: EncrId.AES_CBC, integrity: IntegId.HMAC_SHA2_512_256, udpEncapsulation: true }),
      mtu: 1400,
      inner: 1310,
      why: '1400-20-8-8-16-32 = 1316 -> 1312 (82*16), - 2',
    },
    {
      name: 'aes256-sha384 (CBC), IPv6 outer, 1500',
      s: shape({ encryption: EncrId.AES_CBC, integrity: IntegId.HMAC_SHA2_384_192, outerFamily: 6 }),
      mtu: 1500,
      inner: 1406,
      why: '1500-40-8-16-24 = 1412 -> 1408 (88*16), - 2',
    },
  ];
  for (const r of rows) {
    it(`${r.name}: ${r.inner} (${r.why})`, () => {
      expect(innerMtu(r.mtu, r.s)).toBe(r.inner);
    });
  }

  it('the outer packet at the inner MTU is exactly the underlay MTU or at most block-1 below it', () => {
    for (const r of rows) {
      const o = espOverhead(r.s);
      const padded = Math.ceil((r.inner + 2) / o.block) * o.block;
      const outer = o.outerHeader + o.udp + 8 + o.iv + padded + o.icv;
      expect(outer, r.name).toBeLessThanOrEqual(r.mtu);
      expect(r.mtu - outer, r.name).toBeLessThan(o.block);
      // One byte more inside would not fit.
      const padded1 = Math.ceil((r.inner + 3) / o.block) * o.block;
      expect(o.outerHeader + o.udp + 8 + o.iv + padded1 + o.icv, r.name).toBeGreaterThan(r.mtu);
    }
  });

  it('transport mode keeps the inner header in front and adds no outer header', () => {
    // 1500-8-8-16-20 = 1448 (multiple of 4) + 20 - 2 = 1466
    expect(innerMtu(1500, shape({ encryption: EncrId.AES_GCM_16, mode: 'transport' }), 20)).toBe(1466);
  });
});

describe('espOverhead', () => {
  it('adds up the fixed parts', () => {
    expect(espOverhead(shape({ encryption: EncrId.AES_GCM_16 }))).toEqual({
      fixed: 20 + 8 + 8 + 2 + 16,
      block: 4,
      iv: 8,
      icv: 16,
      outerHeader: 20,
      udp: 0,
    });
    expect(
      espOverhead(shape({ encryption: EncrId.AES_CBC, integrity: IntegId.HMAC_SHA2_256_128, udpEncapsulation: true }))
        .fixed,
    ).toBe(20 + 8 + 8 + 16 + 2 + 16);
  });
});

describe('MSS and tunnelMtu', () => {
  it('MSS is the inner MTU minus IP and TCP headers', () => {
    expect(mssFor(1246, 4)).toBe(1206);
    expect(mssFor(1446, 6)).toBe(1386);
    expect(tunnelMtu(1300, shape({ encryption: EncrId.AES_GCM_16 }))).toEqual({
      underlayMtu: 1300,
      innerMtu: 1246,
      overhead: 54,
      mssV4: 1206,
      mssV6: 1186,
    });
  });
});

describe('bad input gets typed errors', () => {
  it.each([
    ['unknown cipher', () => innerMtu(1500, shape({ encryption: EncrId.AES_CCM_16 }))],
    ['CBC without integrity', () => innerMtu(1500, shape({ encryption: EncrId.AES_CBC }))],
    ['unknown integrity', () => innerMtu(1500, shape({ encryption: EncrId.AES_CBC, integrity: IntegId.AES_XCBC_96 }))],
    ['MTU too small', () => innerMtu(500, shape({ encryption: EncrId.AES_GCM_16 }))],
    ['MTU not an integer', () => innerMtu(1400.5, shape({ encryption: EncrId.AES_GCM_16 }))],
    ['inner below 576', () => tunnelMtu(600, shape({ encryption: EncrId.AES_GCM_16 }))],
  ])('%s', (_name, fn) => {
    expect(fn).toThrow(MtuInputError);
  });
});
