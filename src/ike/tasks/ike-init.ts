/**
 * IKE_SA_INIT (RFC 7296 §1.2): SA, KE and Nonce; INVALID_KE_PAYLOAD retry with the responder's group (§1.2),
 * stateless COOKIE retry (§2.6), IKE fragmentation (RFC 7383 §2.3) and childless (RFC 6023 §3) support flags.
 * On success both sides derive SKEYSEED and the SK_* keys (§2.14).
 */

import type { IkeMessage } from '../codec/message.js';
import {
  cookieNotify,
  cookieOf,
  invalidKeGroup,
  invalidKePayloadNotify,
  notify,
  signatureHashAlgorithms,
  signatureHashAlgorithmsNotify,
} from '../codec/payloads/notify.js';
import type { Proposal } from '../codec/payloads/sa-types.js';
import { CertEncoding, ExchangeType, KeId, NotifyType, PayloadType, TransformType } from '../constants.js';
import { deriveIkeSaKeys, skeyseed } from '../crypto/kdf.js';
import {
  chosenTransform,
  formatProposal,
  NoProposalChosenError,
  selectProposal,
  verifyChosen,
} from '../crypto/proposals.js';
import type { KeyExchange } from '../crypto/provider.js';
import { SUPPORTED_SIGNATURE_HASHES } from '../crypto/signature.js';
import { createSkCipher } from '../crypto/sk-cipher.js';
import { CryptoError, IkeError } from '../errors.js';
import { certReqData, trustAnchors } from '../sa/certificates.js';
import type { CertificateAuthConfig } from '../sa/config.js';
import { explainNoProposal, explanation, FIELD, proposalList, withGroup } from '../sa/explain.js';
import { type IkeSa, type IkeSuite, IkeSa as Sa } from '../sa/ike-sa.js';
import type { Task, TaskStatus } from './task.js';

const MAX_RETRIES = 3;

/**
 * The hash algorithms the peer accepts for RFC 7427 signatures (SIGNATURE_HASH_ALGORITHMS), recorded for
 * certificate authentication; we announce ours only when we sign (PSK tunnels do not).
 */
function peerHashes(msg: IkeMessage): number[] {
  const n = Sa.notifyOf(msg, NotifyType.SIGNATURE_HASH_ALGORITHMS);
  if (!n) return [];
  try {
    return signatureHashAlgorithms(n);
  } catch {
    return [];
  }
}

/** CERTREQ data naming the trust anchors of the configurations that ask for certificates (undefined: none). */
function certReqOf(auths: CertificateAuthConfig[]): Uint8Array | undefined {
  try {
    const anchors = auths.filter((a) => a.sendCertReq !== false).flatMap((a) => trustAnchors(a));
    return anchors.length > 0 ? certReqData(anchors) : undefined;
  } catch {
    return undefined; // a broken CA bundle shows up in IKE_AUTH, with its configuration
  }
}

export function suiteOf(p: Proposal): IkeSuite {
  const encr = chosenTransform(p, TransformType.ENCR)!;
  const prf = chosenTransform(p, TransformType.PRF)!;
  const integ = chosenTransform(p, TransformType.INTEG);
  const ke = chosenTransform(p, TransformType.KE)!;
  return { encrId: encr.id, keyLength: encr.keyLength, integId: integ?.id, prfId: prf.id, keId: ke.id };
}

/** SKEYSEED and the SK_* keys; sets the SA's ciphers for its role. */
export function deriveKeys(sa: IkeSa, seed: Uint8Array): void {
  const suite = sa.suite!;
  const p = sa.ctx.provider;
  const keys = deriveIkeSaKeys(p, suite, seed, sa.ni, sa.nr, sa.spiI, sa.spiR);
  const cs = { encrId: suite.encrId, keyLength: suite.keyLength, integId: suite.integId };
  const i = createSkCipher(p, cs, { encKey: keys.skEi, integKey: keys.skAi });
  const r = createSkCipher(p, cs, { encKey: keys.skEr, integKey: keys.skAr });
  sa.cipherOut = sa.originalInitiator ? i : r;
  sa.cipherIn = sa.originalInitiator ? r : i;
  sa.keys = { skD: keys.skD, skPi: keys.skPi, skPr: keys.skPr };
  for (const k of [keys.skEi, keys.skEr, keys.skAi, keys.skAr]) k.fill(0);
  seed.fill(0);
}

function firstKe(proposals: readonly Proposal[]): number {
  for (const p of proposals) {
    const ke = p.transforms.find((t) => t.type === TransformType.KE && t.id !== KeId.NONE);
    if (ke) return ke.id;
  }
  return KeId.NONE;
}

function offersKe(proposals: readonly Proposal[], group: number): boolean {
  return proposals.some((p) => p.transforms.some((t) => t.type === TransformType.KE && t.id === group));
}

export class IkeInitTask implements Task<IkeMessage, IkeMessage> {
  readonly name = 'ike-init';
  private group: number;
  private ke: KeyExchange | undefined;
  private cookie: Uint8Array | undefined;
  private retries = 0;
  /** Responder: the error to answer with instead of a normal response. */
  private error: { notify: number; data?: Uint8Array } | undefined;
  private chosen: Proposal | undefined;
  private peerKe: Uint8Array | undefined;

  constructor(private readonly sa: IkeSa) {
    this.group = firstKe(sa.config.ikeProposals);
  }

  exchange(): number {
    return ExchangeType.IKE_SA_INIT;
  }

  // ---- initiator -----------------------------------------------------------------------------------------------

  build(req: IkeMessage): void {
    const sa = this.sa;
    // A COOKIE must be the first payload (RFC 7296 §2.6).
    if (this.cookie) req.payloads.push(cookieNotify(this.cookie));
    req.payloads.push({
      type: PayloadType.SA,
      proposals: sa.config.ikeProposals.map((p) => ({ ...p, spi: new Uint8Array(0) })),
    });
    this.ke = sa.ctx.provider.keyExchange(this.group).initiate(sa.ctx.ports.random);
    req.payloads.push({ type: PayloadType.KE, group: this.group, data: this.ke.publicValue });
    if (sa.ni.length === 0) sa.ni = sa.ctx.ports.random(sa.ctx.nonceLength);
    req.payloads.push({ type: PayloadType.NONCE, data: sa.ni });
    if (sa.config.fragmentation) req.payloads.push(notify(NotifyType.IKEV2_FRAGMENTATION_SUPPORTED));
    // RFC 7427 §4: announce the hashes we accept in digital signatures when we authenticate with certificates.
    if (sa.config.auth.method === 'certificate')
      req.payloads.push(signatureHashAlgorithmsNotify(SUPPORTED_SIGNATURE_HASHES));
  }

  process(res: IkeMessage): TaskStatus {
    const sa = this.sa;
    const cookie = Sa.notifyOf(res, NotifyType.COOKIE);
    if (cookie) {
      if (++this.retries > MAX_RETRIES) return this.failed('PEER_ERROR', 'responder keeps asking for cookies');
      this.cookie = cookieOf(cookie);
      sa.spiR = new Uint8Array(8);
      return 'retry';
    }
    const invalidKe = Sa.notifyOf(res, NotifyType.INVALID_KE_PAYLOAD);
    if (invalidKe) {
      const wanted = invalidKeGroup(invalidKe);
      if (!offersKe(sa.config.ikeProposals, wanted) || wanted === this.group || ++this.retries > MAX_RETRIES) {
        const name = KeId[wanted]?.toLowerCase().replace('_', '') ?? String(wanted);
        const suggestion = withGroup(sa.config.ikeProposals, wanted);
        return this.failed(
          'INVALID_KE_PAYLOAD',
          explanation({
            what: `IKE_SA_INIT refused with INVALID_KE_PAYLOAD: the peer requires key exchange method ${name}`,
            offered: proposalList(sa.config.ikeProposals),
            peer: `answered INVALID_KE_PAYLOAD asking for ${name}`,
            mismatch: offersKe(sa.config.ikeProposals, wanted)
              ? `we already sent ${name} and the peer asks for it again (a peer bug)`
              : `none of our IKE proposals contains ${name}`,
            fix: suggestion
              ? `add \`${suggestion}\` to ${FIELD.ikeProposals} (or remove ${name} from the peer's IKE proposals)`
              : `make ${FIELD.ikeProposals} and the peer's IKE proposals share a key exchange method`,
          }),
          NotifyType.INVALID_KE_PAYLOAD,
        );
      }
      this.group = wanted;
      sa.spiR = new Uint8Array(8);
      return 'retry';
    }
    const err = Sa.errorNotify(res);
    if (err) {
      if (err.notifyType === NotifyType.NO_PROPOSAL_CHOSEN) {
        const ours = sa.config.ikeProposals.map(formatProposal);
        return this.failed(
          'NO_PROPOSAL_CHOSEN',
          explanation({
            what: 'IKE_SA_INIT refused with NO_PROPOSAL_CHOSEN: the peer accepts none of our IKE proposals (or has no tunnel for our address)',
            offered: ours.join(', ') || '(none)',
            peer: 'answered NO_PROPOSAL_CHOSEN; as initiator we do not learn which IKE proposals it would accept',
            mismatch: 'no encryption/integrity/PRF/key-exchange combination in common',
            fix: `make ${FIELD.ikeProposals} and the peer's IKE proposals share one proposal: add one of the peer's IKE proposals to ${FIELD.ikeProposals}, or add \`${ours[0] ?? 'default'}\` to the peer's (its log, or ipsec-mesh status on the peer, names what it proposes)`,
          }),
          err.notifyType,
        );
      }
      if (err.notifyType === NotifyType.INVALID_SYNTAX) {
        return this.failed(
          'INVALID_SYNTAX',
          explanation({
            what: 'IKE_SA_INIT refused with INVALID_SYNTAX: the peer could not parse our request',
            offered: proposalList(sa.config.ikeProposals),
            peer: 'answered INVALID_SYNTAX (IKEv2 does not say which part it disliked)',
            fix: `check the peer's log for the payload it rejected; try the plain proposal \`aes256-sha256-modp2048\` in ${FIELD.ikeProposals} to rule out an algorithm the peer's parser does not know, and report it as a bug if it persists`,
          }),
          err.notifyType,
        );
      }
      return this.failed(
        'PEER_ERROR',
        `peer answered IKE_SA_INIT with ${NotifyType[err.notifyType] ?? err.notifyType}`,
        err.notifyType,
      );
    }
    const saP = Sa.payload(res, PayloadType.SA);
    const keP = Sa.payload(res, PayloadType.KE);
    const nonceP = Sa.payload(res, PayloadType.NONCE);
    if (!saP || !keP || !nonceP || saP.proposals.length !== 1) {
      return this.failed('PROTOCOL_ERROR', 'IKE_SA_INIT response lacks SA, KE or Nonce');
    }
    if (res.responderSpi.every((b) => b === 0)) return this.failed('PROTOCOL_ERROR', 'responder SPI is zero');
    let chosen: Proposal;
    try {
      verifyChosen(sa.config.ikeProposals, saP.proposals[0]!);
      chosen = saP.proposals[0]!;
    } catch (e) {
      return this.failed('NO_PROPOSAL_CHOSEN', e instanceof Error ? e.message : String(e));
    }
    const suite = suiteOf(chosen);
    if (suite.keId !== this.group || keP.group !== this.group) {
      return this.failed('PROTOCOL_ERROR', `responder chose key exchange ${keP.group}, we sent ${this.group}`);
    }
    sa.spiR = res.responderSpi.slice();
    sa.nr = nonceP.data.slice();
    sa.suite = suite;
    sa.proposal = chosen;
    sa.peerFragmentation = Sa.notifyOf(res, NotifyType.IKEV2_FRAGMENTATION_SUPPORTED) !== undefined;
    sa.peerChildless = Sa.notifyOf(res, NotifyType.CHILDLESS_IKEV2_SUPPORTED) !== undefined;
    sa.peerSignatureHashes = peerHashes(res);
    let shared: Uint8Array;
    try {
      shared = this.ke!.complete(keP.data);
    } catch (e) {
      return this.failed('CRYPTO_ERROR', `peer's key exchange value rejected: ${e instanceof Error ? e.message : e}`);
    }
    deriveKeys(sa, skeyseed(sa.ctx.provider, suite.prfId, sa.ni, sa.nr, shared));
    shared.fill(0);
    sa.ctx.register(sa);
    return 'done';
  }

  private failed(code: Parameters<IkeSa['fail']>[0]['code'], message: string, notifyType?: number): TaskStatus {
    const f: Parameters<IkeSa['fail']>[0] = { code, message };
    if (notifyType !== undefined) f.notify = notifyType;
    this.sa.fail(f);
    return 'failed';
  }

  // ---- responder -----------------------------------------------------------------------------------------------

  processRequest(req: IkeMessage): void {
    const sa = this.sa;
    const saP = Sa.payload(req, PayloadType.SA);
    const keP = Sa.payload(req, PayloadType.KE);
    const nonceP = Sa.payload(req, PayloadType.NONCE);
    if (!saP || !keP || !nonceP) {
      this.error = { notify: NotifyType.INVALID_SYNTAX };
      return;
    }
    try {
      const sel = selectProposal(sa.config.ikeProposals, saP.proposals);
      this.chosen = sel.chosen;
    } catch (e) {
      this.error = { notify: NotifyType.NO_PROPOSAL_CHOSEN };
      sa.fail({
        code: 'NO_PROPOSAL_CHOSEN',
        message: e instanceof NoProposalChosenError ? explainNoProposal('ike', sa.config.ikeProposals, e) : String(e),
        notify: NotifyType.NO_PROPOSAL_CHOSEN,
      });
      return;
    }
    const suite = suiteOf(this.chosen);
    if (keP.group !== suite.keId) {
      // The initiator guessed another group: tell it which one we want (RFC 7296 §1.2).
      this.error = { notify: NotifyType.INVALID_KE_PAYLOAD, data: invalidKePayloadNotify(suite.keId).data };
      sa.fail({
        code: 'INVALID_KE_PAYLOAD',
        message: explanation({
          what: `initiator sent KE ${KeId[keP.group] ?? keP.group}, we require ${KeId[suite.keId] ?? suite.keId}; answered INVALID_KE_PAYLOAD (a conforming initiator retries with it)`,
          offered: proposalList(sa.config.ikeProposals),
          peer: `proposes ${proposalList(saP.proposals)} and guessed ${KeId[keP.group] ?? keP.group}`,
          mismatch: `our preferred common proposal uses ${KeId[suite.keId] ?? suite.keId}`,
          fix: `none needed if the peer retries; to avoid the extra round trip put the peer's first group first in ${FIELD.ikeProposals}`,
        }),
        notify: NotifyType.INVALID_KE_PAYLOAD,
      });
      return;
    }
    sa.ni = nonceP.data.slice();
    sa.suite = suite;
    sa.proposal = this.chosen;
    this.peerKe = keP.data;
    sa.peerFragmentation = Sa.notifyOf(req, NotifyType.IKEV2_FRAGMENTATION_SUPPORTED) !== undefined;
    sa.peerSignatureHashes = peerHashes(req);
  }

  buildResponse(res: IkeMessage): TaskStatus {
    const sa = this.sa;
    if (this.error) {
      res.payloads.push(notify(this.error.notify, this.error.data ? { data: this.error.data } : {}));
      return 'failed';
    }
    let reply: { publicValue: Uint8Array; sharedSecret: Uint8Array };
    try {
      reply = sa.ctx.provider.keyExchange(sa.suite!.keId).respond(this.peerKe!, sa.ctx.ports.random);
    } catch (e) {
      const invalidValue = e instanceof CryptoError;
      res.payloads.push(notify(invalidValue ? NotifyType.INVALID_SYNTAX : NotifyType.NO_PROPOSAL_CHOSEN));
      sa.fail({ code: 'CRYPTO_ERROR', message: e instanceof IkeError ? e.message : String(e) });
      return 'failed';
    }
    sa.nr = sa.ctx.ports.random(sa.ctx.nonceLength);
    res.payloads.push({ type: PayloadType.SA, proposals: [{ ...this.chosen!, spi: new Uint8Array(0) }] });
    res.payloads.push({ type: PayloadType.KE, group: sa.suite!.keId, data: reply.publicValue });
    res.payloads.push({ type: PayloadType.NONCE, data: sa.nr });
    if (sa.config.fragmentation && sa.peerFragmentation)
      res.payloads.push(notify(NotifyType.IKEV2_FRAGMENTATION_SUPPORTED));
    if (!sa.config.fragmentation) sa.peerFragmentation = false;
    res.payloads.push(notify(NotifyType.CHILDLESS_IKEV2_SUPPORTED));
    // Certificates: the configuration is chosen by identity only in IKE_AUTH, so answer for every candidate.
    const certs = sa.candidates.flatMap((c) => (c.auth.method === 'certificate' ? [c.auth] : []));
    if (certs.length > 0) {
      res.payloads.push(signatureHashAlgorithmsNotify(SUPPORTED_SIGNATURE_HASHES));
      const data = certReqOf(certs);
      if (data) res.payloads.push({ type: PayloadType.CERTREQ, encoding: CertEncoding.X509_SIGNATURE, data });
    }
    deriveKeys(sa, skeyseed(sa.ctx.provider, sa.suite!.prfId, sa.ni, sa.nr, reply.sharedSecret));
    reply.sharedSecret.fill(0);
    return 'done';
  }
}
