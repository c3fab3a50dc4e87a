import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import * as C from '../../../src/xfrm/constants.js';
import * as S from '../../../src/xfrm/structs.js';

const v4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((a) => a.join('.'));
const v6 = fc.array(fc.nat(0xffff), { minLength: 8, maxLength: 8 }).map((w) => S.decodeXfrmSelector(selBytes(w)).daddr); // canonical text through our own formatter
function selBytes(words: number[]): Buffer {
  const b = Buffer.alloc(C.SIZEOF_XFRM_SELECTOR);
  words.forEach((w, i) => {
    b.writeUInt16BE(w, 2 * i);
  });
  b.writeUInt16LE(C.AF_INET6, 40);
  return b;
}
const u8 = fc.nat(255);
const u16 = fc.nat(0xffff);
const u32 = fc.nat(0xffffffff);
const u64 = fc.bigInt({ min: 0n, max: C.XFRM_INF });

const selector = (family: number, addr: fc.Arbitrary<string>) =>
  fc.record({
    daddr: addr,
    saddr: addr,
    dport: u16,
    dportMask: u16,
    sport: u16,
    sportMask: u16,
    family: fc.constant(family),
    prefixlenD: u8,
    prefixlenS: u8,
    proto: u8,
    ifindex: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
    user: u32,
  });
const lftCfg = fc.record({
  softByteLimit: u64,
  hardByteLimit: u64,
  softPacketLimit: u64,
  hardPacketLimit: u64,
  softAddExpiresSeconds: u64,
  hardAddExpiresSeconds: u64,
  softUseExpiresSeconds: u64,
  hardUseExpiresSeconds: u64,
});
const lftCur = fc.record({ bytes: u64, packets: u64, addTime: u64, useTime: u64 });
const famAddr = fc.oneof(
  fc.record({ family: fc.constant(C.AF_INET), addr: fc.constant(v4) }),
  fc.record({ family: fc.constant(C.AF_INET6), addr: fc.constant(v6) }),
);
const usersaInfo = famAddr.chain(({ family, addr }) =>
  fc.record({
    sel: selector(family, addr),
    id: fc.record({ daddr: addr, spi: u32, proto: u8 }),
    saddr: addr,
    lft: lftCfg,
    curlft: lftCur,
    stats: fc.record({ replayWindow: u32, replay: u32, integrityFailed: u32 }),
    seq: u32,
    reqid: u32,
    family: fc.constant(family),
    mode: u8,
    replayWindow: u8,
    flags: u8,
  }),
);
const policyInfo = famAddr.chain(({ family, addr }) =>
  fc.record({
    sel: selector(family, addr),
    lft: lftCfg,
    curlft: lftCur,
    priority: u32,
    index: u32,
    dir: u8,
    action: u8,
    flags: u8,
    share: u8,
  }),
);
const tmpl = famAddr.chain(({ family, addr }) =>
  fc.record({
    id: fc.record({ daddr: addr, spi: u32, proto: u8 }),
    family: fc.constant(family),
    saddr: addr,
    reqid: u32,
    mode: u8,
    share: u8,
    optional: u8,
    aalgos: u32,
    ealgos: u32,
    calgos: u32,
  }),
);

describe('struct sizes match the kernel ABI (x86_64)', () => {
  it('encoders produce sizeof(struct)', () => {
    const sel = S.xfrmSelector({ family: C.AF_INET });
    const info: S.XfrmUsersaInfo = {
      sel,
      id: { daddr: '0.0.0.0', spi: 0, proto: 50 },
      saddr: '0.0.0.0',
      lft: S.xfrmLifetimeCfg(),
      curlft: S.xfrmLifetimeCur(),
      stats: { replayWindow: 0, replay: 0, integrityFailed: 0 },
      seq: 0,
      reqid: 0,
      family: C.AF_INET,
      mode: 1,
      replayWindow: 0,
      flags: 0,
    };
    expect(S.encodeXfrmSelector(sel)).toHaveLength(56);
    expect(S.encodeXfrmUsersaInfo(info)).toHaveLength(224);
    expect(S.encodeXfrmUsersaId({ daddr: '0.0.0.0', spi: 1, family: 2, proto: 50 })).toHaveLength(24);
    expect(S.encodeXfrmUserspiInfo({ info, min: 1, max: 2 })).toHaveLength(232);
    expect(S.encodeXfrmUserpolicyInfo(S.xfrmUserpolicyInfo({ sel, dir: 1 }))).toHaveLength(168);
    expect(S.encodeXfrmUserpolicyId({ sel, dir: 1, index: 0 })).toHaveLength(64);
    expect(S.encodeXfrmUserExpire({ state: info, hard: 1 })).toHaveLength(232);
    expect(S.encodeXfrmEncapTmpl({ type: 2, sport: 4500, dport: 4500, oa: '0.0.0.0' }, 2)).toHaveLength(24);
    expect(S.encodeXfrmUserpolicyType(1)).toHaveLength(6);
  });

  it('places xfrm_usersa_info fields at the kernel offsets', () => {
    const info: S.XfrmUsersaInfo = {
      sel: S.xfrmSelector({ family: C.AF_INET, daddr: '198.18.2.0', prefixlenD: 24, dport: 4500 }),
      id: { daddr: '192.0.2.2', spi: 0xc0ffee01, proto: C.IPPROTO_ESP },
      saddr: '192.0.2.1',
      lft: S.xfrmLifetimeCfg({ softByteLimit: 0x1122334455667788n }),
      curlft: S.xfrmLifetimeCur(),
      stats: { replayWindow: 0, replay: 0, integrityFailed: 0 },
      seq: 7,
      reqid: 0x4d490001,
      family: C.AF_INET,
      mode: C.XFRM_MODE_TUNNEL,
      replayWindow: 32,
      flags: C.XFRM_STATE_ESN,
    };
    const b = S.encodeXfrmUsersaInfo(info);
    expect(b.subarray(0, 4).toString('hex')).toBe('c6120200'); // sel.daddr
    expect(b.readUInt16BE(32)).toBe(4500); // sel.dport, network order
    expect(b.readUInt16LE(40)).toBe(C.AF_INET); // sel.family, host order
    expect(b[42]).toBe(24);
    expect(b.subarray(56, 60).toString('hex')).toBe('c0000202'); // id.daddr
    expect(b.readUInt32BE(72)).toBe(0xc0ffee01); // id.spi, network order
    expect(b[76]).toBe(50); // id.proto
    expect(b.subarray(80, 84).toString('hex')).toBe('c0000201'); // saddr
    expect(b.readBigUInt64LE(96)).toBe(0x1122334455667788n); // lft.soft_byte_limit
    expect(b.readBigUInt64LE(104)).toBe(C.XFRM_INF);
    expect(b.readUInt32LE(204)).toBe(7); // seq
    expect(b.readUInt32LE(208)).toBe(0x4d490001); // reqid
    expect(b.readUInt16LE(212)).toBe(C.AF_INET);
    expect([b[214], b[215], b[216]]).toEqual([1, 32, 128]);
  });

  it('places xfrm_user_tmpl and xfrm_userpolicy_info fields at the kernel offsets', () => {
    const t = S.encodeXfrmUserTmpls([
      {
        id: { daddr: '2001:db8:ff::2', spi: 0, proto: 50 },
        family: C.AF_INET6,
        saddr: '2001:db8:ff::1',
        reqid: 0x4d490002,
        mode: 1,
        share: 0,
        optional: 0,
        aalgos: 0xffffffff,
        ealgos: 0xffffffff,
        calgos: 0xffffffff,
      },
    ]);
    expect(t).toHaveLength(64);
    expect(t.readUInt16LE(24)).toBe(C.AF_INET6);
    expect(t.subarray(28, 44).toString('hex')).toBe('20010db800ff00000000000000000001');
    expect(t.readUInt32LE(44)).toBe(0x4d490002);
    expect(t[48]).toBe(1);
    const p = S.encodeXfrmUserpolicyInfo(
      S.xfrmUserpolicyInfo({
        sel: S.xfrmSelector({ family: C.AF_INET }),
        dir: 2,
        priority: 99,
        index: 0x4d49000a,
        action: 1,
      }),
    );
    expect(p.readUInt32LE(152)).toBe(99);
    expect(p.readUInt32LE(156)).toBe(0x4d49000a);
    expect([p[160], p[161]]).toEqual([2, 1]);
  });
});

describe('round trips (fast-check)', () => {
  it('xfrm_usersa_info', () => {
    fc.assert(
      fc.property(usersaInfo, (i) => {
        expect(S.decodeXfrmUsersaInfo(S.encodeXfrmUsersaInfo(i))).toEqual(i);
      }),
    );
  });
  it('xfrm_userpolicy_info', () => {
    fc.assert(
      fc.property(policyInfo, (p) => {
        expect(S.decodeXfrmUserpolicyInfo(S.encodeXfrmUserpolicyInfo(p))).toEqual(p);
      }),
    );
  });
  it('xfrm_user_tmpl[]', () => {
    fc.assert(
      fc.property(fc.array(tmpl, { maxLength: 4 }), (ts) => {
        expect(S.decodeXfrmUserTmpls(S.encodeXfrmUserTmpls(ts))).toEqual(ts);
      }),
    );
  });
  it('xfrm_userspi_info, xfrm_user_expire, xfrm_user_acquire', () => {
    fc.assert(
      fc.property(usersaInfo, u32, u32, (info, min, max) => {
        expect(S.decodeXfrmUserspiInfo(S.encodeXfrmUserspiInfo({ info, min, max }))).toEqual({ info, min, max });
        expect(S.decodeXfrmUserExpire(S.encodeXfrmUserExpire({ state: info, hard: 1 }))).toEqual({
          state: info,
          hard: 1,
        });
      }),
    );
    fc.assert(
      fc.property(policyInfo, u32, (policy, seq) => {
        const fam = policy.sel.family;
        const any = fam === C.AF_INET ? '0.0.0.0' : '::';
        const a: S.XfrmUserAcquire = {
          id: { daddr: any, spi: 0, proto: 50 },
          saddr: any,
          sel: policy.sel,
          policy,
          aalgos: 1,
          ealgos: 2,
          calgos: 3,
          seq,
        };
        expect(S.decodeXfrmUserAcquire(S.encodeXfrmUserAcquire(a))).toEqual(a);
      }),
    );
  });
  it('xfrm_usersa_id and xfrm_userpolicy_id', () => {
    const id = { daddr: '2001:db8::2', spi: 0xdeadbeef, family: C.AF_INET6, proto: 50 };
    expect(S.decodeXfrmUsersaId(S.encodeXfrmUsersaId(id))).toEqual(id);
    const pid = { sel: S.xfrmSelector({ family: C.AF_INET, saddr: '198.18.1.0', prefixlenS: 24 }), index: 9, dir: 1 };
    expect(S.decodeXfrmUserpolicyId(S.encodeXfrmUserpolicyId(pid))).toEqual(pid);
  });
  it('algorithm, encap, mark, ESN attributes', () => {
    const key = Buffer.from('00112233445566778899aabbccddeeff0011223344556677', 'hex');
    expect(S.decodeXfrmAlgo(S.encodeXfrmAlgo({ name: 'cbc(aes)', key }))).toEqual({ name: 'cbc(aes)', key });
    const auth = { name: 'hmac(sha256)', key, truncLen: 128 };
    expect(S.decodeXfrmAlgoAuth(S.encodeXfrmAlgoAuth(auth))).toEqual(auth);
    const aead = { name: 'rfc4106(gcm(aes))', key: key.subarray(0, 20), icvLen: 128 };
    expect(S.decodeXfrmAlgoAead(S.encodeXfrmAlgoAead(aead))).toEqual(aead);
    const enc = S.encodeXfrmAlgoAead(aead);
    expect(enc.readUInt32LE(64)).toBe(160); // key length in BITS
    expect(enc.readUInt32LE(68)).toBe(128);
    const e6 = { type: C.UDP_ENCAP_ESPINUDP, sport: 4500, dport: 4501, oa: '2001:db8::9' };
    expect(S.decodeXfrmEncapTmpl(S.encodeXfrmEncapTmpl(e6, C.AF_INET6), C.AF_INET6)).toEqual(e6);
    expect(S.encodeXfrmEncapTmpl(e6, C.AF_INET6).readUInt16BE(2)).toBe(4500);
    expect(S.decodeXfrmMark(S.encodeXfrmMark({ v: 0x100, m: 0xff00 }))).toEqual({ v: 0x100, m: 0xff00 });
    const esn = S.xfrmReplayStateEsn(128);
    esn.oseq = 5;
    esn.bmp[3] = 0x80000000;
    expect(S.encodeXfrmReplayStateEsn(esn)).toHaveLength(24 + 16);
    expect(S.decodeXfrmReplayStateEsn(S.encodeXfrmReplayStateEsn(esn))).toEqual(esn);
  });
  it('rejects short input with StructError', () => {
    expect(() => S.decodeXfrmUsersaInfo(Buffer.alloc(100))).toThrow(S.StructError);
    expect(() => S.decodeXfrmUserTmpls(Buffer.alloc(65))).toThrow(S.StructError);
    expect(() => S.decodeXfrmAlgoAead(Buffer.alloc(40))).toThrow(S.StructError);
  });
});
