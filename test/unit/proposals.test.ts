import { describe, expect, it } from 'vitest';
import {
  EncrId,
  type EsnId,
  type IntegId,
  KeId,
  PrfId,
  ProtocolId,
  TransformType as T,
} from '../../src/ike/constants.js';
import {
  DEFAULT_PROPOSALS,
  formatProposal,
  NoProposalChosenError,
  type ProposalKind,
  parseProposals,
  type SaProposal,
  selectProposal,
  verifyChosen,
} from '../../src/ike/crypto/proposals.js';
import { ProposalError } from '../../src/ike/errors.js';

/** Compact transform notation for the table: "type:id[/keylen]". */
function compact(p: SaProposal): string {
  return p.transforms.map((t) => `${T[t.type]}:${t.id}${t.keyLength ? `/${t.keyLength}` : ''}`).join(' ');
}

const E = (id: EncrId, k?: number) => `ENCR:${id}${k ? `/${k}` : ''}`;
const P = (id: PrfId) => `PRF:${id}`;
const I = (id: IntegId) => `INTEG:${id}`;
const K = (id: KeId) => `KE:${id}`;
const N = (id: EsnId) => `ESN:${id}`;

// [input, kind, expected proposals in compact notation]
const VALID: [string, ProposalKind, string[]][] = [
  ['aes128gcm16-prfsha256-x25519', 'ike', [[E(20, 128), P(5), K(31)].join(' ')]],
  ['aes256-sha256-modp3072', 'ike', [[E(12, 256), P(5), I(12), K(15)].join(' ')]],
  ['chacha20poly1305-prfsha256-x25519', 'ike', [[E(28), P(5), K(31)].join(' ')]],
  ['aes256gcm16-prfsha384-ecp384-ke1_mlkem768', 'ike', [[E(20, 256), P(6), K(20), 'ADDKE1:36'].join(' ')]],
  ['aes256gcm16-x25519-esn', 'esp', [[E(20, 256), K(31), N(1)].join(' ')]],
  ['aes128-sha256-noesn', 'esp', [[E(12, 128), I(12), N(0)].join(' ')]],
  ['aes128gcm16', 'esp', [[E(20, 128), N(0)].join(' ')]],
  ['aes256gcm16-none', 'esp', [[E(20, 256), N(0)].join(' ')]],
  ['aes256gcm16-modpnone', 'esp', [[E(20, 256), N(0)].join(' ')]],
  ['aes256gcm16-x25519-none', 'esp', [[E(20, 256), K(31), K(0), N(0)].join(' ')]],
  ['aes256-sha256', 'esp', [[E(12, 256), I(12), N(0)].join(' ')]],
  ['chacha20poly1305', 'esp', [[E(28), N(0)].join(' ')]],
  ['aes128-sha1-modp2048', 'ike', [[E(12, 128), P(2), I(2), K(14)].join(' ')]],
  ['aes128-sha256-ecp256', 'ike', [[E(12, 128), P(5), I(12), K(19)].join(' ')]],
  ['aes256-sha512-modp4096', 'ike', [[E(12, 256), P(7), I(14), K(16)].join(' ')]],
  ['aes256-sha384-ecp521', 'ike', [[E(12, 256), P(6), I(13), K(21)].join(' ')]],
  ['aes-sha256-x448', 'ike', [[E(12, 128), P(5), I(12), K(32)].join(' ')]],
  ['aes192-sha2_256-curve25519', 'ike', [[E(12, 192), P(5), I(12), K(31)].join(' ')]],
  ['aes128gcm8-prfsha256-ecp256', 'ike', [[E(18, 128), P(5), K(19)].join(' ')]],
  ['aes128gcm12-prfsha256-ecp256', 'ike', [[E(19, 128), P(5), K(19)].join(' ')]],
  ['aes128gcm128-prfsha256-ecp256', 'ike', [[E(20, 128), P(5), K(19)].join(' ')]],
  ['aes256gcm64-prfsha512-ecp521', 'ike', [[E(18, 256), P(7), K(21)].join(' ')]],
  ['aes128gcm-prfsha256-x25519', 'ike', [[E(20, 128), P(5), K(31)].join(' ')]],
  // explicit PRF wins over inference
  ['aes256-sha256-prfsha384-x25519', 'ike', [[E(12, 256), P(6), I(12), K(31)].join(' ')]],
  // several integrity algorithms infer several PRFs, in order
  ['aes128-sha256-sha384-x25519', 'ike', [[E(12, 128), P(5), P(6), I(12), I(13), K(31)].join(' ')]],
  // several algorithms of a kind keep their order
  [
    'aes256gcm16-aes128gcm16-prfsha384-prfsha256-ecp384-x25519',
    'ike',
    [[E(20, 256), E(20, 128), P(6), P(5), K(20), K(31)].join(' ')],
  ],
  // duplicates collapse
  ['aes128-aes128-sha256-x25519', 'ike', [[E(12, 128), P(5), I(12), K(31)].join(' ')]],
  // lists
  [
    'aes128gcm16-prfsha256-x25519, aes256-sha256-modp3072',
    'ike',
    [[E(20, 128), P(5), K(31)].join(' '), [E(12, 256), P(5), I(12), K(15)].join(' ')],
  ],
  ['aes128gcm16,aes256-sha256', 'esp', [[E(20, 128), N(0)].join(' '), [E(12, 256), I(12), N(0)].join(' ')]],
  // case and whitespace are forgiven
  ['  AES128GCM16-PRFSHA256-X25519 ', 'ike', [[E(20, 128), P(5), K(31)].join(' ')]],
  // AEAD with integrity: integrity dropped (warning)
  ['aes128gcm16-sha256-prfsha256-x25519', 'ike', [[E(20, 128), P(5), K(31)].join(' ')]],
  ['aes128-sha256-esn-noesn', 'esp', [[E(12, 128), I(12), N(1), N(0)].join(' ')]],
  ['aes256gcm16-prfsha256-mlkem768', 'ike', [[E(20, 256), P(5), K(36)].join(' ')]],
  [
    'aes256gcm16-prfsha256-x25519-ke1_mlkem768-ke2_none',
    'ike',
    [[E(20, 256), P(5), K(31), 'ADDKE1:36', 'ADDKE2:0'].join(' ')],
  ],
];

// [input, kind, substring the message must contain, bad token]
const INVALID: [string, ProposalKind, string, string | undefined][] = [
  ['aes128gcm16-prfsha256-x25519-bogus', 'ike', "unknown algorithm 'bogus'", 'bogus'],
  ['aes512-sha256-x25519', 'ike', 'did you mean one of: aes', 'aes512'],
  ['aes128-sha256-modp1024', 'ike', 'weak or obsolete', 'modp1024'],
  ['3des-sha1-modp2048', 'ike', 'weak or obsolete', '3des'],
  ['aes128-md5-modp2048', 'ike', 'weak or obsolete', 'md5'],
  ['aes128ccm16-prfsha256-x25519', 'ike', 'not implemented', 'aes128ccm16'],
  ['null-sha256', 'esp', 'no confidentiality', 'null'],
  ['aes128-sha256', 'ike', 'needs a key exchange method', undefined],
  ['aes128gcm16-x25519', 'ike', 'needs an explicit PRF', undefined],
  ['aes128-x25519', 'ike', 'no integrity algorithm', undefined],
  ['aes128', 'esp', 'no integrity algorithm', undefined],
  ['sha256-x25519', 'ike', 'no encryption algorithm', undefined],
  ['aes128-aes128gcm16-sha256-x25519', 'ike', 'mixes AEAD and classic', 'aes128gcm16'],
  ['aes128gcm16-aes256-prfsha256-x25519', 'ike', 'mixes AEAD and classic', 'aes256'],
  ['aes128-sha256-x25519-esn', 'ike', 'applies to ESP, not IKE', 'esn'],
  ['aes128gcm16-prfsha256', 'esp', 'applies to IKE proposals, not ESP', 'prfsha256'],
  ['aes128--sha256-x25519', 'ike', 'two dashes', ''],
  ['', 'ike', 'empty IKE proposal list', undefined],
  ['aes128gcm16,', 'esp', 'empty proposal', undefined],
  ['aes128-default', 'esp', "'default' must stand alone", 'default'],
  ['ke1_sha256-aes128gcm16-prfsha256-x25519', 'ike', "unknown algorithm 'ke1_sha256'", 'ke1_sha256'],
  ['ke8_mlkem768-aes128gcm16-prfsha256-x25519', 'ike', "unknown algorithm 'ke8_mlkem768'", 'ke8_mlkem768'],
  ['aes128gcm16-prfsha256-none', 'ike', 'needs a key exchange method', undefined],
  ['aes128-sha256_96-x25519', 'ike', 'non-standard 96-bit', 'sha256_96'],
];

describe('parseProposals (swanctl syntax)', () => {
  it('has a table of at least 40 strings', () => {
    expect(VALID.length + INVALID.length).toBeGreaterThanOrEqual(40);
  });

  it.each(VALID)('parses %j as %s', (input, kind, expected) => {
    const { proposals } = parseProposals(input, kind);
    expect(proposals.map(compact)).toEqual(expected);
    expect(proposals.map((p) => p.num)).toEqual(expected.map((_, i) => i + 1));
    for (const p of proposals) expect(p.protocol).toBe(kind === 'ike' ? ProtocolId.IKE : ProtocolId.ESP);
  });

  it.each(INVALID)('rejects %j (%s) saying %j', (input, kind, text, token) => {
    let err: unknown;
    try {
      parseProposals(input, kind);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ProposalError);
    const pe = err as ProposalError;
    expect(pe.code).toBe('PROPOSAL_SYNTAX');
    expect(pe.message).toContain(text);
    expect(pe.token).toBe(token);
  });

  it('lists valid alternatives for an unknown token', () => {
    expect(() => parseProposals('foo-sha256-x25519', 'ike')).toThrow(/valid keywords: .*aes128gcm16.*x25519/);
  });

  it('warns when integrity is given with AEAD', () => {
    const { warnings } = parseProposals('aes128gcm16-sha256-prfsha256-x25519', 'ike');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('ignored');
  });

  it('expands default, alone or in a list', () => {
    const ike = parseProposals('default', 'ike').proposals;
    expect(ike).toHaveLength(DEFAULT_PROPOSALS.ike.length);
    const both = parseProposals(['aes256-sha512-modp4096', 'default'], 'ike').proposals;
    expect(both).toHaveLength(1 + DEFAULT_PROPOSALS.ike.length);
    expect(both.map((p) => p.num)).toEqual([1, 2, 3]);
    const esp = parseProposals('default', 'esp').proposals;
    expect(esp[0]!.transforms[0]).toEqual({ type: T.ENCR, id: EncrId.AES_GCM_16, keyLength: 128 });
  });

  it('prints proposals back in swanctl syntax', () => {
    for (const s of [
      'aes128gcm16-prfsha256-x25519',
      'aes256-prfsha256-sha256-modp3072',
      'chacha20poly1305-prfsha256-x448',
      'aes256gcm16-prfsha384-ecp384-ke1_mlkem768',
      'aes256gcm16-x25519-esn',
      'aes128-sha256-noesn',
    ]) {
      const kind: ProposalKind = s.includes('prf') ? 'ike' : 'esp';
      const [p] = parseProposals(s, kind).proposals;
      expect(formatProposal(p!)).toBe(s);
      // and the printed form parses to the same transforms
      expect(parseProposals(formatProposal(p!), kind).proposals[0]).toEqual(p);
    }
  });
});

describe('selectProposal (responder)', () => {
  const ike = (s: string) => parseProposals(s, 'ike').proposals;
  const esp = (s: string) => parseProposals(s, 'esp').proposals;

  it('prefers our order by default', () => {
    const ours = ike('aes256gcm16-prfsha384-ecp384, aes128gcm16-prfsha256-x25519');
    const theirs = ike('aes128gcm16-prfsha256-x25519, aes256gcm16-prfsha384-ecp384');
    const sel = selectProposal(ours, theirs);
    expect(formatProposal(sel.chosen)).toBe('aes256gcm16-prfsha384-ecp384');
    expect(sel.chosen.num).toBe(2); // the peer's proposal number
    expect(sel.ourIndex).toBe(0);
  });

  it('prefers the peer order when asked', () => {
    const ours = ike('aes256gcm16-prfsha384-ecp384, aes128gcm16-prfsha256-x25519');
    const theirs = ike('aes128gcm16-prfsha256-x25519, aes256gcm16-prfsha384-ecp384');
    const sel = selectProposal(ours, theirs, { preferOurs: false });
    expect(formatProposal(sel.chosen)).toBe('aes128gcm16-prfsha256-x25519');
    expect(sel.chosen.num).toBe(1);
    expect(sel.ourIndex).toBe(1);
  });

  it('picks one transform per type, in our preference within a proposal', () => {
    const ours = ike('aes256gcm16-aes128gcm16-prfsha384-prfsha256-ecp384-x25519');
    const theirs = ike('aes128gcm16-aes256gcm16-prfsha256-prfsha384-x25519-ecp384');
    expect(formatProposal(selectProposal(ours, theirs).chosen)).toBe('aes256gcm16-prfsha384-ecp384');
  });

  it('keeps the peer SPI', () => {
    const theirs = esp('aes128gcm16');
    theirs[0]!.spi = Uint8Array.of(1, 2, 3, 4);
    expect(selectProposal(esp('aes128gcm16'), theirs).chosen.spi).toEqual(Uint8Array.of(1, 2, 3, 4));
  });

  it('requires equal key lengths', () => {
    expect(() => selectProposal(ike('aes256-sha256-x25519'), ike('aes128-sha256-x25519'))).toThrow(
      NoProposalChosenError,
    );
  });

  it('matches "no PFS" with a peer that offers KE NONE, and PFS only when both have it', () => {
    const chosen = selectProposal(esp('aes128gcm16'), esp('aes128gcm16-x25519-none')).chosen;
    expect(formatProposal(chosen)).toBe('aes128gcm16-none-noesn');
    expect(() => selectProposal(esp('aes128gcm16'), esp('aes128gcm16-x25519'))).toThrow(NoProposalChosenError);
    expect(formatProposal(selectProposal(esp('aes128gcm16-x25519'), esp('aes128gcm16-x25519')).chosen)).toBe(
      'aes128gcm16-x25519-noesn',
    );
  });

  it('explains every mismatch with the NO_PROPOSAL_CHOSEN notify', () => {
    let err: unknown;
    try {
      selectProposal(ike('aes256-sha256-modp2048'), ike('aes256-sha256-ecp256'));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(NoProposalChosenError);
    const e = err as NoProposalChosenError;
    expect(e.code).toBe('NO_PROPOSAL_CHOSEN');
    expect(e.notify).toBe(14);
    expect(e.mismatches[0]!.types).toEqual([{ type: 'KE', ours: ['modp2048'], theirs: ['ecp256'] }]);
    expect(e.message).toContain('KE: ours modp2048 vs theirs ecp256');
  });

  it('never matches across protocols', () => {
    expect(() => selectProposal(esp('aes128gcm16'), ike('aes128gcm16-prfsha256-x25519'))).toThrow(
      NoProposalChosenError,
    );
  });
});

describe('verifyChosen (initiator)', () => {
  const offered = parseProposals(
    'aes256gcm16-aes128gcm16-prfsha256-x25519-ecp256, aes256-sha256-modp3072',
    'ike',
  ).proposals;

  it('accepts a proper narrowing of an offered proposal', () => {
    const chosen = selectProposal(offered, parseProposals('aes128gcm16-prfsha256-ecp256', 'ike').proposals).chosen;
    // The responder echoes its own proposal number; make it ours for the check.
    const ours = verifyChosen(offered, { ...chosen, num: 1 });
    expect(ours.num).toBe(1);
  });

  it('rejects a transform we did not offer, two of a type, a missing type, or an unknown number', () => {
    const base = { num: 1, protocol: ProtocolId.IKE, spi: new Uint8Array(0) };
    const good = [
      { type: T.ENCR, id: EncrId.AES_GCM_16, keyLength: 128 },
      { type: T.PRF, id: PrfId.HMAC_SHA2_256 },
      { type: T.KE, id: KeId.CURVE25519 },
    ];
    expect(() => verifyChosen(offered, { ...base, transforms: good })).not.toThrow();
    expect(() =>
      verifyChosen(offered, { ...base, transforms: [...good.slice(0, 2), { type: T.KE, id: KeId.ECP_384 }] }),
    ).toThrow(/did not offer ecp384/);
    expect(() => verifyChosen(offered, { ...base, transforms: [...good, { type: T.KE, id: KeId.ECP_256 }] })).toThrow(
      /more than one KE/,
    );
    expect(() => verifyChosen(offered, { ...base, transforms: good.slice(0, 2) })).toThrow(/no KE transform/);
    expect(() => verifyChosen(offered, { ...base, num: 7, transforms: good })).toThrow(/no proposal number 7/);
  });
});
