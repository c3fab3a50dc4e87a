import { describe, expect, it } from 'vitest';
import { addressBytes, canonicalAddress, familyOf, readAddress, writeAddress } from '../../../src/xfrm/address.js';
import { AF_INET, AF_INET6 } from '../../../src/xfrm/constants.js';

describe('xfrm_address_t text codec', () => {
  it.each([
    ['192.0.2.1', 'c0000201'],
    ['0.0.0.0', '00000000'],
    ['255.255.255.255', 'ffffffff'],
  ])('IPv4 %s', (text, hex) => {
    expect(addressBytes(text).toString('hex')).toBe(hex);
    const b = Buffer.alloc(16, 0xaa);
    writeAddress(b, 0, text, AF_INET);
    expect(b.subarray(4).every((x) => x === 0)).toBe(true); // the union's tail is zeroed
    expect(readAddress(b, 0, AF_INET)).toBe(text);
  });

  it.each([
    ['2001:db8::1', '2001:db8::1'],
    ['2001:DB8:0:0:0:0:0:1', '2001:db8::1'],
    ['::', '::'],
    ['::1', '::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'], // RFC 5952 4.2.3: first of equal runs
    ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1'], // longest run
    ['2001:db8:1:2:3:4:5:6', '2001:db8:1:2:3:4:5:6'],
    ['2001:db8::1:0', '2001:db8::1:0'],
    ['::ffff:192.0.2.1', '::ffff:c000:201'],
    ['2001:db8:ff::', '2001:db8:ff::'],
  ])('IPv6 %s -> %s', (text, canon) => {
    expect(familyOf(text)).toBe(AF_INET6);
    expect(canonicalAddress(text)).toBe(canon);
  });

  it.each([
    '1.2.3',
    '1.2.3.256',
    '1.2.3.4.5',
    'a.b.c.d',
    '2001:db8::1::2',
    '2001:db8:1:2:3:4:5:6:7',
    'g::1',
    '1:2:3:4:5:6:7::8',
  ])('rejects %s', (bad) => {
    expect(() => addressBytes(bad)).toThrow(RangeError);
  });
});
