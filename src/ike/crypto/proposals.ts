/**
 * Proposals in strongSwan's swanctl syntax, and proposal selection (RFC 7296 §2.7, §3.3).
 *
 * Syntax: a comma-separated list of proposals; each proposal is a dash-separated list of algorithm keywords,
 * e.g. `aes128gcm16-prfsha256-x25519, aes256-sha256-modp3072`. The keyword `default` expands to our defaults.
 * Semantics follow strongSwan's:
 *  - the order of proposals, and of algorithms of one kind inside a proposal, is the order of preference;
 *  - AEAD (GCM, ChaCha20-Poly1305) and classic encryption cannot be mixed in one proposal; integrity algorithms
 *    given with AEAD are dropped with a warning;
 *  - for IKE, a missing PRF is inferred from each integrity algorithm (sha256 -> prfsha256); AEAD IKE proposals
 *    need an explicit PRF; IKE proposals need a key exchange method;
 *  - for ESP, `esn`/`noesn` choose extended sequence numbers (default `noesn`); a key exchange method is PFS;
 *    `none` (alias `modpnone`) says "no PFS" explicitly;
 *  - `keN_<method>` (N = 1..7) adds an RFC 9370 additional key exchange, e.g. `ke1_mlkem768`.
 * Keywords strongSwan knows but we deliberately do not implement (weak or obsolete algorithms) are rejected with
 * an error that says so; unknown keywords are rejected with the valid alternatives.
 */

import type { Proposal, Transform } from '../codec/payloads/sa-types.js';
import { EncrId, EsnId, IntegId, KeId, nameOf, PrfId, ProtocolId, TransformType } from '../constants.js';
import { ProposalError } from '../errors.js';

/** A transform of an SA payload proposal (the codec's type). */
export type ProposalTransform = Transform;
/** An SA payload proposal (the codec's type). */
export type SaProposal = Proposal;

export type ProposalKind = 'ike' | 'esp';

interface Keyword {
  type: TransformType;
  id: number;
  keyLength?: number;
  aead?: boolean;
  /** Why we reject a keyword strongSwan accepts. */
  unsupported?: string;
}

const WEAK = 'weak or obsolete; not implemented by ipsec-mesh';
const NOT_IMPL = 'not implemented by ipsec-mesh';

function encr(id: EncrId, keyLength: number | undefined, aead: boolean, unsupported?: string): Keyword {
  const k: Keyword = { type: TransformType.ENCR, id, aead };
  if (keyLength !== undefined) k.keyLength = keyLength;
  if (unsupported) k.unsupported = unsupported;
  return k;
}

/** Keyword table: strongSwan's proposal keywords that name algorithms, mapped to IKEv2 transforms. */
const KEYWORDS: ReadonlyMap<string, Keyword> = (() => {
  const m = new Map<string, Keyword>();
  // Encryption, classic (CBC)
  m.set('aes', encr(EncrId.AES_CBC, 128, false));
  for (const bits of [128, 192, 256]) {
    m.set(`aes${bits}`, encr(EncrId.AES_CBC, bits, false));
    // AES-GCM: ICV 8/12/16 bytes, also spelled in bits (gcm64/96/128); plain `gcm` is 16.
    m.set(`aes${bits}gcm`, encr(EncrId.AES_GCM_16, bits, true));
    for (const [icv, id] of [
      [8, EncrId.AES_GCM_8],
      [12, EncrId.AES_GCM_12],
      [16, EncrId.AES_GCM_16],
    ] as const) {
      m.set(`aes${bits}gcm${icv}`, encr(id, bits, true));
      m.set(`aes${bits}gcm${icv * 8}`, encr(id, bits, true));
    }
    m.set(`aes${bits}ctr`, encr(EncrId.AES_CTR, bits, false, NOT_IMPL));
    for (const [icv, id] of [
      [8, EncrId.AES_CCM_8],
      [12, EncrId.AES_CCM_12],
      [16, EncrId.AES_CCM_16],
    ] as const) {
      m.set(`aes${bits}ccm${icv}`, encr(id, bits, true, NOT_IMPL));
      m.set(`aes${bits}ccm${icv * 8}`, encr(id, bits, true, NOT_IMPL));
    }
    m.set(`aes${bits}gmac`, encr(EncrId.NULL_AUTH_AES_GMAC, bits, true, NOT_IMPL));
    m.set(`camellia${bits}`, encr(EncrId.CAMELLIA_CBC, bits, false, NOT_IMPL));
  }
  m.set('chacha20poly1305', encr(EncrId.CHACHA20_POLY1305, undefined, true));
  m.set('3des', encr(EncrId.TRIPLE_DES, undefined, false, WEAK));
  m.set('des', encr(EncrId.DES, undefined, false, WEAK));
  m.set('null', encr(EncrId.NULL, undefined, false, 'provides no confidentiality; not allowed'));

  // Integrity
  const integ = (id: IntegId, unsupported?: string): Keyword =>
    unsupported ? { type: TransformType.INTEG, id, unsupported } : { type: TransformType.INTEG, id };
  m.set('sha1', integ(IntegId.HMAC_SHA1_96));
  m.set('sha', integ(IntegId.HMAC_SHA1_96));
  m.set('sha256', integ(IntegId.HMAC_SHA2_256_128));
  m.set('sha2_256', integ(IntegId.HMAC_SHA2_256_128));
  m.set('sha384', integ(IntegId.HMAC_SHA2_384_192));
  m.set('sha2_384', integ(IntegId.HMAC_SHA2_384_192));
  m.set('sha512', integ(IntegId.HMAC_SHA2_512_256));
  m.set('sha2_512', integ(IntegId.HMAC_SHA2_512_256));
  m.set('md5', integ(IntegId.HMAC_MD5_96, WEAK));
  m.set('aesxcbc', integ(IntegId.AES_XCBC_96, NOT_IMPL));
  m.set('aescmac', integ(IntegId.AES_CMAC_96, NOT_IMPL));
  m.set('sha256_96', integ(IntegId.HMAC_SHA2_256_128, 'non-standard 96-bit truncation of SHA-256; not allowed'));

  // PRF
  const prf = (id: PrfId, unsupported?: string): Keyword =>
    unsupported ? { type: TransformType.PRF, id, unsupported } : { type: TransformType.PRF, id };
  m.set('prfsha1', prf(PrfId.HMAC_SHA1));
  m.set('prfsha256', prf(PrfId.HMAC_SHA2_256));
  m.set('prfsha384', prf(PrfId.HMAC_SHA2_384));
  m.set('prfsha512', prf(PrfId.HMAC_SHA2_512));
  m.set('prfmd5', prf(PrfId.HMAC_MD5, WEAK));
  m.set('prfaesxcbc', prf(PrfId.AES128_XCBC, NOT_IMPL));
  m.set('prfaescmac', prf(PrfId.AES128_CMAC, NOT_IMPL));

  // Key exchange methods
  const ke = (id: number, unsupported?: string): Keyword =>
    unsupported ? { type: TransformType.KE, id, unsupported } : { type: TransformType.KE, id };
  m.set('modp2048', ke(KeId.MODP_2048));
  m.set('modp3072', ke(KeId.MODP_3072));
  m.set('modp4096', ke(KeId.MODP_4096));
  m.set('modp6144', ke(KeId.MODP_6144, NOT_IMPL));
  m.set('modp8192', ke(KeId.MODP_8192, NOT_IMPL));
  m.set('modp768', ke(1, WEAK));
  m.set('modp1024', ke(2, WEAK));
  m.set('modp1536', ke(5, WEAK));
  m.set('modp1024s160', ke(22, WEAK));
  m.set('modp2048s224', ke(23, WEAK));
  m.set('modp2048s256', ke(24, WEAK));
  m.set('ecp256', ke(KeId.ECP_256));
  m.set('ecp384', ke(KeId.ECP_384));
  m.set('ecp521', ke(KeId.ECP_521));
  m.set('ecp192', ke(25, WEAK));
  m.set('ecp224', ke(26, NOT_IMPL));
  m.set('ecp224bp', ke(27, NOT_IMPL));
  m.set('ecp256bp', ke(28, NOT_IMPL));
  m.set('ecp384bp', ke(29, NOT_IMPL));
  m.set('ecp512bp', ke(30, NOT_IMPL));
  m.set('curve25519', ke(KeId.CURVE25519));
  m.set('x25519', ke(KeId.CURVE25519));
  m.set('curve448', ke(KeId.CURVE448));
  m.set('x448', ke(KeId.CURVE448));
  m.set('mlkem512', ke(KeId.ML_KEM_512, NOT_IMPL));
  m.set('mlkem768', ke(KeId.ML_KEM_768));
  m.set('mlkem1024', ke(KeId.ML_KEM_1024, NOT_IMPL));
  m.set('none', ke(KeId.NONE));
  m.set('modpnone', ke(KeId.NONE));

  // Extended sequence numbers
  m.set('esn', { type: TransformType.ESN, id: EsnId.ESN });
  m.set('noesn', { type: TransformType.ESN, id: EsnId.NO_ESN });
  return m;
})();

const ADDKE_TYPES = [
  TransformType.ADDKE1,
  TransformType.ADDKE2,
  TransformType.ADDKE3,
  TransformType.ADDKE4,
  TransformType.ADDKE5,
  TransformType.ADDKE6,
  TransformType.ADDKE7,
] as const;

/** Default proposals, most preferred first (close to strongSwan's defaults, without the algorithms we lack). */
export const DEFAULT_PROPOSALS: Readonly<Record<ProposalKind, readonly string[]>> = {
  ike: [
    'aes128gcm16-aes256gcm16-chacha20poly1305-prfsha256-prfsha384-prfsha512-x25519-ecp256-ecp384-x448-ecp521-modp3072-modp4096',
    'aes128-aes256-sha256-sha384-sha512-x25519-ecp256-ecp384-x448-ecp521-modp3072-modp4096',
  ],
  esp: ['aes128gcm16-aes256gcm16-chacha20poly1305', 'aes128-aes256-sha256-sha384-sha512'],
};

/** Canonical keyword for each transform, used to print proposals back in swanctl syntax. */
const CANONICAL: ReadonlyMap<string, string> = (() => {
  const preferred = new Set([
    'sha1',
    'sha256',
    'sha384',
    'sha512',
    'x25519',
    'x448',
    'none',
    'aes128',
    'aes192',
    'aes256',
    'chacha20poly1305',
  ]);
  const out = new Map<string, string>();
  for (const [word, k] of KEYWORDS) {
    const key = transformKey(k);
    // Prefer the short canonical names above; otherwise the first keyword that names the transform wins,
    // except spellings in bits (gcm128) and plain `gcm`, which are aliases.
    if (preferred.has(word)) out.set(key, word);
    else if (!out.has(key) && !/gcm(64|96|128)$|gcm$|ccm(64|96|128)$/.test(word) && word !== 'aes' && word !== 'sha')
      out.set(key, word);
  }
  return out;
})();

function transformKey(t: { type: number; id: number; keyLength?: number }): string {
  return `${t.type}:${t.id}:${t.keyLength ?? 0}`;
}

export interface ParsedProposals {
  proposals: SaProposal[];
  /** Non-fatal remarks, e.g. integrity algorithms dropped from an AEAD proposal. */
  warnings: string[];
}

/** Every keyword we accept, for error messages. */
export function supportedKeywords(kind: ProposalKind): string[] {
  const words: string[] = [];
  for (const [word, k] of KEYWORDS) {
    if (k.unsupported) continue;
    if (kind === 'ike' && k.type === TransformType.ESN) continue;
    if (kind === 'esp' && k.type === TransformType.PRF) continue;
    words.push(word);
  }
  return words;
}

function suggest(token: string, kind: ProposalKind): string {
  // Offer keywords of the same family (shared prefix) first, then the full list.
  const words = supportedKeywords(kind);
  const stem = token.replace(/[0-9_]+.*$/, '');
  const close = stem.length >= 2 ? words.filter((w) => w.startsWith(stem)) : [];
  return close.length > 0 && close.length < words.length
    ? `did you mean one of: ${close.join(', ')}?`
    : `valid keywords: ${words.join(', ')}`;
}

/**
 * Parse one swanctl proposal list (or an array of them) into SA payload proposals.
 * Throws ProposalError('PROPOSAL_SYNTAX') naming the bad token and the valid alternatives.
 */
export function parseProposals(input: string | readonly string[], kind: ProposalKind): ParsedProposals {
  const items = (typeof input === 'string' ? [input] : input)
    .flatMap((s) => s.split(','))
    .map((s) => s.trim().toLowerCase());
  if (items.length === 0 || items.every((s) => s === '')) {
    throw new ProposalError('PROPOSAL_SYNTAX', `empty ${kind.toUpperCase()} proposal list`);
  }
  const proposals: SaProposal[] = [];
  const warnings: string[] = [];
  for (const item of items) {
    if (item === '') throw new ProposalError('PROPOSAL_SYNTAX', `empty proposal in ${kind.toUpperCase()} list`);
    const expanded = item === 'default' ? DEFAULT_PROPOSALS[kind] : [item];
    for (const text of expanded) {
      const p = parseOne(text, kind, warnings);
      p.num = proposals.length + 1;
      proposals.push(p);
    }
  }
  if (proposals.length > 255) {
    throw new ProposalError(
      'PROPOSAL_SYNTAX',
      'more than 255 proposals (RFC 7296 §3.3.1: proposal numbers are 8 bits)',
    );
  }
  return { proposals, warnings };
}

function parseOne(text: string, kind: ProposalKind, warnings: string[]): SaProposal {
  const tokens = text.split('-').map((t) => t.trim());
  const by = new Map<TransformType, ProposalTransform[]>();
  let aead: boolean | undefined;
  const add = (type: TransformType, t: ProposalTransform) => {
    const list = by.get(type) ?? [];
    if (!list.some((x) => x.id === t.id && x.keyLength === t.keyLength)) list.push(t);
    by.set(type, list);
  };
  for (const token of tokens) {
    if (token === '') {
      throw new ProposalError('PROPOSAL_SYNTAX', `empty algorithm in proposal '${text}' (two dashes in a row?)`, {
        token,
      });
    }
    let type: TransformType | undefined;
    let word = token;
    const addke = /^ke([1-7])_(.+)$/.exec(token);
    if (addke) {
      type = ADDKE_TYPES[Number(addke[1]) - 1];
      word = addke[2]!;
    }
    const k = KEYWORDS.get(word);
    if (!k || (addke && k.type !== TransformType.KE)) {
      if (token === 'default') {
        throw new ProposalError(
          'PROPOSAL_SYNTAX',
          `'default' must stand alone as a list item, not inside proposal '${text}'`,
          { token },
        );
      }
      throw new ProposalError(
        'PROPOSAL_SYNTAX',
        `unknown algorithm '${token}' in ${kind.toUpperCase()} proposal '${text}'; ${suggest(word, kind)}`,
        { token },
      );
    }
    if (k.unsupported) {
      throw new ProposalError(
        'PROPOSAL_SYNTAX',
        `algorithm '${token}' in proposal '${text}' is ${k.unsupported}; ${suggest(word, kind)}`,
        { token },
      );
    }
    if (kind === 'ike' && k.type === TransformType.ESN) {
      throw new ProposalError('PROPOSAL_SYNTAX', `'${token}' (extended sequence numbers) applies to ESP, not IKE`, {
        token,
      });
    }
    if (kind === 'esp' && k.type === TransformType.PRF) {
      throw new ProposalError('PROPOSAL_SYNTAX', `'${token}' (a PRF) applies to IKE proposals, not ESP`, { token });
    }
    const t: ProposalTransform = { type: type ?? k.type, id: k.id };
    if (k.keyLength !== undefined) t.keyLength = k.keyLength;
    if (k.type === TransformType.ENCR) {
      if (aead !== undefined && aead !== k.aead) {
        throw new ProposalError(
          'PROPOSAL_SYNTAX',
          `proposal '${text}' mixes AEAD and classic encryption ('${token}'); put them in separate proposals`,
          { token },
        );
      }
      aead = k.aead;
    }
    add(t.type, t);
  }
  const encrs = by.get(TransformType.ENCR);
  if (!encrs) {
    throw new ProposalError('PROPOSAL_SYNTAX', `proposal '${text}' has no encryption algorithm`);
  }
  if (aead && by.has(TransformType.INTEG)) {
    warnings.push(`integrity algorithms in AEAD proposal '${text}' are ignored (AEAD authenticates itself)`);
    by.delete(TransformType.INTEG);
  }
  if (!aead && !by.has(TransformType.INTEG)) {
    throw new ProposalError(
      'PROPOSAL_SYNTAX',
      `proposal '${text}' uses classic encryption but no integrity algorithm; add one such as sha256`,
    );
  }
  if (kind === 'ike') {
    if (!by.has(TransformType.PRF)) {
      if (aead) {
        throw new ProposalError(
          'PROPOSAL_SYNTAX',
          `AEAD IKE proposal '${text}' needs an explicit PRF, e.g. prfsha256 (a PRF cannot be inferred from AEAD)`,
        );
      }
      for (const i of by.get(TransformType.INTEG) ?? []) {
        const prf = integToPrf(i.id);
        if (prf !== undefined) add(TransformType.PRF, { type: TransformType.PRF, id: prf });
      }
    }
    const kes = by.get(TransformType.KE);
    if (!kes || kes.every((k) => k.id === KeId.NONE)) {
      throw new ProposalError(
        'PROPOSAL_SYNTAX',
        `IKE proposal '${text}' needs a key exchange method, e.g. x25519, ecp256 or modp3072`,
      );
    }
  } else if (!by.has(TransformType.ESN)) {
    add(TransformType.ESN, { type: TransformType.ESN, id: EsnId.NO_ESN });
  }
  const order: TransformType[] = [
    TransformType.ENCR,
    TransformType.PRF,
    TransformType.INTEG,
    TransformType.KE,
    TransformType.ESN,
    ...ADDKE_TYPES,
  ];
  const transforms: ProposalTransform[] = [];
  for (const type of order) {
    for (const t of by.get(type) ?? []) {
      // "none" for the main KE of an ESP proposal means "no PFS": no KE transform at all.
      if (type === TransformType.KE && t.id === KeId.NONE && kind === 'esp' && (by.get(type)?.length ?? 0) === 1)
        continue;
      transforms.push(t);
    }
  }
  return {
    num: 0,
    protocol: kind === 'ike' ? ProtocolId.IKE : ProtocolId.ESP,
    spi: new Uint8Array(0),
    transforms,
  };
}

function integToPrf(id: number): PrfId | undefined {
  switch (id) {
    case IntegId.HMAC_SHA1_96:
      return PrfId.HMAC_SHA1;
    case IntegId.HMAC_SHA2_256_128:
      return PrfId.HMAC_SHA2_256;
    case IntegId.HMAC_SHA2_384_192:
      return PrfId.HMAC_SHA2_384;
    case IntegId.HMAC_SHA2_512_256:
      return PrfId.HMAC_SHA2_512;
    default:
      return undefined;
  }
}

/** Print a proposal back in swanctl syntax, e.g. `aes128gcm16-prfsha256-x25519`. */
export function formatProposal(p: Pick<SaProposal, 'transforms'>): string {
  const parts: string[] = [];
  for (const t of p.transforms) {
    const addkeIndex = ADDKE_TYPES.indexOf(t.type as (typeof ADDKE_TYPES)[number]);
    const base = addkeIndex >= 0 ? { ...t, type: TransformType.KE } : t;
    const word = CANONICAL.get(transformKey(base));
    const name =
      word ?? `${nameOf(TransformType, t.type)}:${t.id}${t.keyLength !== undefined ? `/${t.keyLength}` : ''}`;
    parts.push(addkeIndex >= 0 ? `ke${addkeIndex + 1}_${name}` : name);
  }
  return parts.join('-');
}

/** Why one of our proposals did not match one of the peer's: the transform types without overlap. */
export interface ProposalMismatch {
  ours: string;
  theirs: string;
  types: { type: string; ours: string[]; theirs: string[] }[];
}

export interface Selection {
  /** The chosen proposal: the peer's proposal number and SPI, exactly one transform per type. */
  chosen: SaProposal;
  /** Index of our proposal that matched. */
  ourIndex: number;
}

function transformName(t: ProposalTransform): string {
  return formatProposal({ transforms: [t] });
}

/**
 * Match one of our proposals against one of theirs. Returns the chosen transforms (in our preference order) or the
 * list of transform types that have no overlap.
 */
function matchProposal(
  ours: SaProposal,
  theirs: SaProposal,
  preferOurs: boolean,
): { ok: true; transforms: ProposalTransform[] } | { ok: false; types: ProposalMismatch['types'] } {
  if (ours.protocol !== theirs.protocol) {
    return {
      ok: false,
      types: [
        {
          type: 'protocol',
          ours: [nameOf(ProtocolId, ours.protocol)],
          theirs: [nameOf(ProtocolId, theirs.protocol)],
        },
      ],
    };
  }
  const types = new Set<number>([...ours.transforms.map((t) => t.type), ...theirs.transforms.map((t) => t.type)]);
  const chosen: ProposalTransform[] = [];
  const missing: ProposalMismatch['types'] = [];
  for (const type of [...types].sort((a, b) => a - b)) {
    let a = ours.transforms.filter((t) => t.type === type);
    let b = theirs.transforms.filter((t) => t.type === type);
    // A key exchange type absent on one side matches the explicit NONE on the other (RFC 7296 §3.3.6 / RFC 9370).
    // An ESN type absent on the peer's side is taken as "no ESN" (lenient, as strongSwan).
    const isKe = type === TransformType.KE || (ADDKE_TYPES as readonly number[]).includes(type);
    if (isKe && a.length === 0) a = [{ type, id: KeId.NONE }];
    if (isKe && b.length === 0) b = [{ type, id: KeId.NONE }];
    if (type === TransformType.ESN && b.length === 0) b = [{ type, id: EsnId.NO_ESN }];
    if (type === TransformType.ESN && a.length === 0) a = [{ type, id: EsnId.NO_ESN }];
    const [first, second] = preferOurs ? [a, b] : [b, a];
    const pick = first.find((x) => second.some((y) => y.id === x.id && (y.keyLength ?? 0) === (x.keyLength ?? 0)));
    if (!pick) {
      missing.push({ type: nameOf(TransformType, type), ours: a.map(transformName), theirs: b.map(transformName) });
      continue;
    }
    // NONE is expressed by omitting the transform, except where the peer sent NONE explicitly.
    if (isKe && pick.id === KeId.NONE && !theirs.transforms.some((t) => t.type === type)) continue;
    const out: ProposalTransform = { type: pick.type, id: pick.id };
    if (pick.keyLength !== undefined) out.keyLength = pick.keyLength;
    chosen.push(out);
  }
  return missing.length ? { ok: false, types: missing } : { ok: true, transforms: chosen };
}

/**
 * Responder: select one of the peer's proposals. With `preferOurs` (the default) our order decides, as strongSwan
 * does by default; otherwise the peer's order decides. Throws ProposalError('NO_PROPOSAL_CHOSEN', notify 14) with
 * a description of every mismatch when nothing overlaps.
 */
export function selectProposal(
  ours: readonly SaProposal[],
  theirs: readonly SaProposal[],
  options: { preferOurs?: boolean } = {},
): Selection {
  const preferOurs = options.preferOurs ?? true;
  const mismatches: ProposalMismatch[] = [];
  const outer = preferOurs ? ours : theirs;
  const inner = preferOurs ? theirs : ours;
  for (const [i, a] of outer.entries()) {
    for (const b of inner) {
      const [o, t] = preferOurs ? [a, b] : [b, a];
      const m = matchProposal(o, t, preferOurs);
      if (m.ok) {
        return {
          chosen: { num: t.num, protocol: t.protocol, spi: t.spi, transforms: m.transforms },
          ourIndex: preferOurs ? i : ours.indexOf(o),
        };
      }
      mismatches.push({ ours: formatProposal(o), theirs: formatProposal(t), types: m.types });
    }
  }
  throw new NoProposalChosenError(mismatches);
}

export class NoProposalChosenError extends ProposalError {
  readonly mismatches: ProposalMismatch[];
  constructor(mismatches: ProposalMismatch[]) {
    super('NO_PROPOSAL_CHOSEN', describeMismatches(mismatches), { notify: 14 });
    this.name = 'NoProposalChosenError';
    this.mismatches = mismatches;
  }

  /**
   * The explanation plus the change that would fix it on our side, e.g. "peer proposes only aes256-sha256-modp2048
   * for IKE; to accept it add `aes256-sha256-modp2048` to spec.ike.proposals".
   */
  explain(kind: ProposalKind): string {
    const theirs = [...new Set(this.mismatches.map((m) => m.theirs))];
    if (theirs.length === 0) return this.message;
    const field = kind === 'ike' ? 'spec.ike.proposals' : 'spec.esp.proposals';
    const what = kind === 'ike' ? 'IKE' : 'ESP';
    const list = theirs.length === 1 ? `only ${theirs[0]}` : theirs.join(', ');
    return `${this.message}. The peer proposes ${list} for ${what}; to accept it add \`${theirs[0]}\` to ${field} (or change the peer)`;
  }
}

function describeMismatches(ms: ProposalMismatch[]): string {
  if (ms.length === 0) return 'no proposal chosen: one side offered no proposals';
  const first = ms[0]!;
  const detail = first.types
    .map((t) => `${t.type}: ours ${t.ours.join('/') || '(none)'} vs theirs ${t.theirs.join('/') || '(none)'}`)
    .join('; ');
  const more = ms.length > 1 ? ` (and ${ms.length - 1} more proposal pairs without overlap)` : '';
  return `no proposal chosen: ours '${first.ours}' vs theirs '${first.theirs}': ${detail}${more}`;
}

/**
 * Initiator: check that the responder's chosen proposal is one we offered, narrowed to one transform per type
 * (RFC 7296 §2.7). Returns our proposal it came from; throws ProposalError('NO_PROPOSAL_CHOSEN') otherwise.
 */
export function verifyChosen(offered: readonly SaProposal[], chosen: SaProposal): SaProposal {
  const ours = offered.find((p) => p.num === chosen.num && p.protocol === chosen.protocol);
  const fail = (why: string) =>
    new ProposalError('NO_PROPOSAL_CHOSEN', `responder's choice '${formatProposal(chosen)}' is invalid: ${why}`, {
      notify: 14,
    });
  if (!ours) throw fail(`we offered no proposal number ${chosen.num}`);
  const seen = new Set<number>();
  for (const t of chosen.transforms) {
    if (seen.has(t.type)) throw fail(`more than one ${nameOf(TransformType, t.type)} transform`);
    seen.add(t.type);
    const isKeNone = t.id === KeId.NONE && (t.type === TransformType.KE || t.type >= TransformType.ADDKE1);
    if (
      !isKeNone &&
      !ours.transforms.some((o) => o.type === t.type && o.id === t.id && (o.keyLength ?? 0) === (t.keyLength ?? 0))
    ) {
      throw fail(`we did not offer ${transformName(t)}`);
    }
  }
  for (const o of ours.transforms) {
    const optional =
      (o.type === TransformType.KE || o.type >= TransformType.ADDKE1) &&
      ours.transforms.some((x) => x.type === o.type && x.id === KeId.NONE);
    if (!seen.has(o.type) && !optional && o.type !== TransformType.ESN) {
      throw fail(`no ${nameOf(TransformType, o.type)} transform chosen`);
    }
  }
  return ours;
}

/** The single transform of a type in a chosen proposal (undefined when absent). */
export function chosenTransform(p: SaProposal, type: TransformType): ProposalTransform | undefined {
  return p.transforms.find((t) => t.type === type);
}
