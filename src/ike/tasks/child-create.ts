/**
 * Creating a CHILD SA (RFC 7296 §1.3, §2.17): in IKE_AUTH (the first CHILD SA, keys from the IKE SA's nonces) or in
 * CREATE_CHILD_SA (new nonces, optional KE for PFS), also as the creation half of a rekey (REKEY_SA, §1.3.3).
 * Traffic selectors are narrowed by the responder (§2.9); transport mode on request (USE_TRANSPORT_MODE, §1.3.1).
 *
 * Kernel order (make-before-break): the inbound SA goes in first. The initiator then installs its outbound SA (the
 * newest SA of a reqid carries the traffic). The responder of a rekey defers its outbound SA until the old CHILD
 * SA is deleted, so it never sends with an SA the initiator has not installed yet.
 */

import type { IkeMessage } from '../codec/message.js';
import { notify, rekeySaNotify, rekeySaSpi } from '../codec/payloads/notify.js';
import type { Proposal } from '../codec/payloads/sa-types.js';
import { type AddressRangeSelector, isAddressRange } from '../codec/payloads/ts.js';
import { EsnId, ExchangeType, KeId, NotifyType, PayloadType, ProtocolId, TransformType } from '../constants.js';
import { type DirectionKeys, deriveChildSaKeys } from '../crypto/kdf.js';
import {
  chosenTransform,
  formatProposal,
  NoProposalChosenError,
  selectProposal,
  verifyChosen,
} from '../crypto/proposals.js';
import type { KeyExchange } from '../crypto/provider.js';
import { ChildSa } from '../sa/child-sa.js';
import type { ChildConfig } from '../sa/config.js';
import type { Failure } from '../sa/events.js';
import { explainKernelRejection, explainNoProposal, explanation, FIELD, selectorsText } from '../sa/explain.js';
import { bytesToSpi, type IkeSa, IkeSa as Sa, spiToBytes } from '../sa/ike-sa.js';
import { allWithin, describeSelectors, narrow, selectorVolume } from '../sa/traffic-selectors.js';
import type { Task, TaskStatus } from './task.js';

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

export function lowerNonce(a: Uint8Array, b: Uint8Array): Uint8Array {
  return compareBytes(a, b) <= 0 ? a : b;
}

/** Whether nonce set A has a lower minimum than set B (RFC 7296 §2.8.1: the lowest nonce marks the redundant SA). */
export function isLower(a: Uint8Array, b: Uint8Array): boolean {
  return compareBytes(a, b) < 0;
}

function stripKe(proposals: readonly Proposal[]): Proposal[] {
  return proposals.map((p) => ({ ...p, transforms: p.transforms.filter((t) => t.type !== TransformType.KE) }));
}

function keOf(proposals: readonly Proposal[], preferred?: number): number {
  const offered = proposals.flatMap((p) =>
    p.transforms.filter((t) => t.type === TransformType.KE && t.id !== KeId.NONE),
  );
  if (preferred !== undefined && offered.some((t) => t.id === preferred)) return preferred;
  return offered[0]?.id ?? KeId.NONE;
}

function suiteOf(p: Proposal) {
  const encr = chosenTransform(p, TransformType.ENCR)!;
  const integ = chosenTransform(p, TransformType.INTEG);
  const esn = chosenTransform(p, TransformType.ESN);
  const ke = chosenTransform(p, TransformType.KE);
  return {
    encrId: encr.id,
    keyLength: encr.keyLength,
    integId: integ?.id,
    esn: esn?.id === EsnId.ESN,
    keId: ke && ke.id !== KeId.NONE ? ke.id : undefined,
  };
}

export interface ChildCreateOptions {
  /** Initiator: the CHILD SA configuration to create. Responder: found from the request. */
  config?: ChildConfig;
  /** The CHILD SA this one replaces (rekey). */
  rekey?: ChildSa;
  /** Part of IKE_AUTH (no nonces or KE of its own). */
  inAuth: boolean;
}

export class ChildCreateTask implements Task<IkeMessage, IkeMessage> {
  readonly name = 'child-create';
  child: ChildSa | undefined;
  /** Set when the task failed; `temporary` asks the owner to try again later. */
  failure: (Failure & { temporary?: boolean; notFound?: boolean }) | undefined;
  private ni: Uint8Array | undefined;
  private nr: Uint8Array | undefined;
  private ke: KeyExchange | undefined;
  private keGroup: number = KeId.NONE;
  private offered: Proposal[] = [];
  private request: IkeMessage | undefined;
  private keyRetries = 0;

  constructor(
    private readonly sa: IkeSa,
    private readonly options: ChildCreateOptions,
  ) {
    if (options.rekey?.suite?.keId !== undefined) this.keGroup = options.rekey.suite.keId;
  }

  exchange(): number {
    return this.options.inAuth ? ExchangeType.IKE_AUTH : ExchangeType.CREATE_CHILD_SA;
  }

  private get ctx() {
    return this.sa.ctx;
  }

  private fail(f: Failure & { temporary?: boolean; notFound?: boolean }): void {
    this.failure = f;
    this.ctx.emit({ type: 'child-failed', sa: this.sa.ref(), child: this.options.config?.name ?? '?', failure: f });
  }

  // ---- initiator -----------------------------------------------------------------------------------------------

  async build(req: IkeMessage): Promise<void> {
    const sa = this.sa;
    const config = this.options.config!;
    if (!this.child) {
      const child = new ChildSa(
        this.ctx.nextUid(),
        config,
        config.reqid ?? this.ctx.reqidFor(sa.config.name, config.name),
      );
      child.createdByUs = true;
      this.child = child;
      sa.children.push(child);
      child.spiIn = await this.ctx.ports.kernel.allocSpi({
        source: sa.remote.address,
        destination: sa.local.address,
        protocol: 'esp',
        reqid: child.reqid,
      });
    }
    const child = this.child;
    const enc = req.encrypted!;
    if (this.options.rekey) enc.push(rekeySaNotify(ProtocolId.ESP, spiToBytes(this.options.rekey.spiIn)));
    if (config.mode === 'transport') enc.push(notify(NotifyType.USE_TRANSPORT_MODE));
    const base = this.options.inAuth ? stripKe(config.proposals) : config.proposals;
    this.offered = base.map((p) => ({ ...p, spi: spiToBytes(child.spiIn) }));
    enc.push({ type: PayloadType.SA, proposals: this.offered });
    if (!this.options.inAuth) {
      this.ni = this.ctx.ports.random(this.ctx.nonceLength);
      enc.push({ type: PayloadType.NONCE, data: this.ni });
      if (this.keGroup === KeId.NONE || this.keyRetries === 0)
        this.keGroup = keOf(config.proposals, this.keGroup || undefined);
      if (this.keGroup !== KeId.NONE) {
        this.ke = this.ctx.provider.keyExchange(this.keGroup).initiate(this.ctx.ports.random);
        enc.push({ type: PayloadType.KE, group: this.keGroup, data: this.ke.publicValue });
      }
    }
    enc.push({ type: PayloadType.TSi, selectors: config.localTs });
    enc.push({ type: PayloadType.TSr, selectors: config.remoteTs });
  }

  async process(res: IkeMessage): Promise<TaskStatus> {
    const sa = this.sa;
    const child = this.child!;
    const config = this.options.config!;
    if (sa.state !== 'established' && sa.state !== 'rekeyed') {
      await sa.uninstall(child, 'IKE SA not established');
      return 'failed';
    }
    const err = Sa.errorNotify(res);
    const saP = Sa.payload(res, PayloadType.SA);
    if (err || !saP) {
      const type = err?.notifyType;
      if (type === NotifyType.INVALID_KE_PAYLOAD && !this.options.inAuth) {
        const wanted = Sa.notifyOf(res, NotifyType.INVALID_KE_PAYLOAD)!;
        const group = (wanted.data[0]! << 8) | wanted.data[1]!;
        const offered = config.proposals.some((p) =>
          p.transforms.some((t) => t.type === TransformType.KE && t.id === group),
        );
        if (offered && group !== this.keGroup && this.keyRetries++ < 2) {
          this.keGroup = group;
          return 'again';
        }
      }
      await sa.uninstall(child, 'creation failed');
      this.fail(this.explainError(type, config));
      return 'failed';
    }
    const chosen = saP.proposals[0];
    try {
      if (!chosen || saP.proposals.length !== 1 || chosen.spi.length !== 4) throw new Error('malformed SA payload');
      verifyChosen(this.offered, chosen);
    } catch (e) {
      await sa.uninstall(child, 'bad proposal');
      this.fail({
        code: 'NO_PROPOSAL_CHOSEN',
        message: `peer chose an invalid ESP proposal: ${e instanceof Error ? e.message : e}`,
      });
      return 'failed';
    }
    const tsi = Sa.payload(res, PayloadType.TSi);
    const tsr = Sa.payload(res, PayloadType.TSr);
    if (!tsi || !tsr || !allWithin(tsi.selectors, config.localTs) || !allWithin(tsr.selectors, config.remoteTs)) {
      await sa.uninstall(child, 'bad traffic selectors');
      this.fail({
        code: 'TS_UNACCEPTABLE',
        message: `peer narrowed the traffic selectors outside what we proposed: got ${describeSelectors(tsi?.selectors ?? [])} === ${describeSelectors(tsr?.selectors ?? [])}, proposed ${describeSelectors(config.localTs)} === ${describeSelectors(config.remoteTs)}`,
      });
      return 'failed';
    }
    const transport = Sa.notifyOf(res, NotifyType.USE_TRANSPORT_MODE) !== undefined;
    if (config.mode === 'transport' && !transport) {
      await sa.uninstall(child, 'transport mode refused');
      this.fail({
        code: 'NO_PROPOSAL_CHOSEN',
        message: 'peer refused transport mode; configure tunnel mode or enable transport on the peer',
      });
      return 'failed';
    }
    child.mode = transport && config.mode === 'transport' ? 'transport' : 'tunnel';
    child.spiOut = bytesToSpi(chosen.spi);
    child.proposal = chosen;
    child.suite = suiteOf(chosen);
    child.localTs = tsi.selectors.filter(isAddressRange);
    child.remoteTs = tsr.selectors.filter(isAddressRange);
    let ni = sa.ni;
    let nr = sa.nr;
    const secrets: Uint8Array[] = [];
    if (!this.options.inAuth) {
      const nonceP = Sa.payload(res, PayloadType.NONCE);
      if (!nonceP) {
        await sa.uninstall(child, 'no nonce');
        this.fail({ code: 'PROTOCOL_ERROR', message: 'CREATE_CHILD_SA response without Nonce' });
        return 'failed';
      }
      ni = this.ni!;
      nr = nonceP.data;
      const keP = Sa.payload(res, PayloadType.KE);
      if (child.suite.keId !== undefined) {
        if (!keP || !this.ke || keP.group !== child.suite.keId || this.keGroup !== child.suite.keId) {
          await sa.uninstall(child, 'KE mismatch');
          this.fail({ code: 'PROTOCOL_ERROR', message: 'peer chose PFS but its KE does not match ours' });
          return 'failed';
        }
        try {
          secrets.push(this.ke.complete(keP.data));
        } catch (e) {
          await sa.uninstall(child, 'bad KE');
          this.fail({
            code: 'CRYPTO_ERROR',
            message: `peer's PFS key exchange value rejected: ${e instanceof Error ? e.message : e}`,
          });
          return 'failed';
        }
      }
    }
    child.lowestNonce = lowerNonce(ni, nr);
    const keys = deriveChildSaKeys(this.ctx.provider, sa.suite!.prfId, sa.keys!.skD, child.suite, ni, nr, secrets);
    for (const s of secrets) s.fill(0);
    try {
      await sa.installInbound(child, keys.responderToInitiator);
      await sa.installOutbound(child, keys.initiatorToResponder);
      await sa.installPolicies(child);
    } catch (e) {
      wipe(keys.initiatorToResponder, keys.responderToInitiator);
      await sa.uninstall(child, 'kernel error');
      this.fail({
        code: 'KERNEL_ERROR',
        message: explainKernelRejection(child.proposal, e),
      });
      return 'failed';
    }
    wipe(keys.initiatorToResponder, keys.responderToInitiator);
    this.installed(child);
    return 'done';
  }

  private installed(child: ChildSa): void {
    const sa = this.sa;
    child.state = 'installed';
    child.installedAt = this.ctx.ports.clock.wallNow();
    const event: Parameters<typeof this.ctx.emit>[0] = {
      type: 'child-installed',
      sa: sa.childRef(child),
      algorithms: child.proposal ? formatProposal(child.proposal) : '',
    };
    if (this.options.rekey) event.rekeyOf = this.options.rekey.uid;
    this.ctx.emit(event);
    this.ctx.onChildInstalled(sa, child);
  }

  private explainError(
    type: number | undefined,
    config: ChildConfig,
  ): Failure & { temporary?: boolean; notFound?: boolean } {
    const offered = config.proposals.map(formatProposal).join(', ');
    switch (type) {
      case NotifyType.NO_PROPOSAL_CHOSEN:
        return {
          code: 'NO_PROPOSAL_CHOSEN',
          message: explanation({
            what: `CHILD SA ${config.name} refused with NO_PROPOSAL_CHOSEN: the peer accepts none of our ESP proposals`,
            offered: offered || '(none)',
            peer: 'answered NO_PROPOSAL_CHOSEN; as initiator we do not learn which ESP proposals it would accept',
            mismatch: this.options.inAuth
              ? 'no encryption/integrity/ESN combination in common (key exchange groups do not count in IKE_AUTH)'
              : 'no encryption/integrity/key-exchange (PFS)/ESN combination in common',
            fix: `make ${FIELD.espProposals} and the peer's ESP proposals share one proposal: add one of the peer's ESP proposals to ${FIELD.espProposals}, or add \`${config.proposals[0] ? formatProposal(config.proposals[0]) : 'default'}\` to the peer's`,
          }),
          notify: type,
        };
      case NotifyType.TS_UNACCEPTABLE:
        return {
          code: 'TS_UNACCEPTABLE',
          message: explanation({
            what: `CHILD SA ${config.name} refused with TS_UNACCEPTABLE: the peer has no policy for our subnets`,
            offered: `${selectorsText(config.localTs)} === ${selectorsText(config.remoteTs)}`,
            peer: 'answered TS_UNACCEPTABLE; it does not say which subnets it has',
            mismatch: `the peer's local subnets must cover ${FIELD.remoteSubnets} (${selectorsText(config.remoteTs)}) and its remote subnets ${FIELD.localSubnets} (${selectorsText(config.localTs)})`,
            fix: `make ${FIELD.localSubnets}/${FIELD.remoteSubnets} the mirror image of the peer's remote/local subnets`,
          }),
          notify: type,
        };
      case NotifyType.TEMPORARY_FAILURE:
        return {
          code: 'TEMPORARY_FAILURE',
          message: 'peer is busy with this SA (rekey collision); retrying later',
          notify: type,
          temporary: true,
        };
      case NotifyType.CHILD_SA_NOT_FOUND:
        return {
          code: 'CHILD_SA_NOT_FOUND',
          message: 'peer no longer has the CHILD SA we tried to rekey',
          notify: type,
          notFound: true,
        };
      case NotifyType.INVALID_KE_PAYLOAD:
        return {
          code: 'INVALID_KE_PAYLOAD',
          message: explanation({
            what: `CHILD SA ${config.name} refused with INVALID_KE_PAYLOAD: the peer wants a PFS group we do not offer`,
            offered: offered || '(none)',
            peer: 'answered INVALID_KE_PAYLOAD for a group outside our ESP proposals',
            mismatch: 'no common key exchange (PFS) group in the ESP proposals',
            fix: `add the peer's PFS group to ${FIELD.espProposals} (e.g. \`${config.proposals[0] ? formatProposal(config.proposals[0]) : 'aes256gcm16'}-x25519\` style), or remove PFS on the peer`,
          }),
          notify: type,
        };
      case NotifyType.INVALID_SYNTAX:
        return {
          code: 'INVALID_SYNTAX',
          message: explanation({
            what: `CHILD SA ${config.name} refused with INVALID_SYNTAX: the peer could not parse our request`,
            offered: `${offered || '(none)'} for ${selectorsText(config.localTs)} === ${selectorsText(config.remoteTs)}`,
            peer: 'answered INVALID_SYNTAX (IKEv2 does not say which part it disliked)',
            fix: `check the peer's log for the payload it rejected; a plain proposal such as \`aes256-sha256\` in ${FIELD.espProposals} rules out an algorithm its parser does not know`,
          }),
          notify: type,
        };
      case undefined:
        return { code: 'PROTOCOL_ERROR', message: 'peer answered without an SA payload (no CHILD SA created)' };
      default:
        return {
          code: 'PEER_ERROR',
          message: `peer refused the CHILD SA with ${NotifyType[type] ?? type}`,
          notify: type,
        };
    }
  }

  // ---- responder -----------------------------------------------------------------------------------------------

  processRequest(req: IkeMessage): void {
    this.request = req;
  }

  /** Responder: the error notify to answer with, and why. */
  private reject(res: IkeMessage, notifyType: number, failure: Failure, data?: Uint8Array): TaskStatus {
    res.encrypted!.push(notify(notifyType, data ? { data } : {}));
    this.fail({ ...failure, notify: notifyType });
    return 'done';
  }

  async buildResponse(res: IkeMessage): Promise<TaskStatus> {
    const sa = this.sa;
    const req = this.request!;
    // In IKE_AUTH nothing happens unless authentication succeeded (IkeAuthTask runs first).
    if (this.options.inAuth && sa.state !== 'established') return 'done';
    const saP = Sa.payload(req, PayloadType.SA);
    const tsi = Sa.payload(req, PayloadType.TSi);
    const tsr = Sa.payload(req, PayloadType.TSr);
    if (!saP || !tsi || !tsr) return 'done'; // childless IKE_AUTH (RFC 6023)
    let config: ChildConfig | undefined;
    let rekey: ChildSa | undefined;
    const rekeyN = Sa.notifyOf(req, NotifyType.REKEY_SA);
    if (rekeyN && !this.options.inAuth) {
      const { spi } = rekeySaSpi(rekeyN);
      rekey = spi.length === 4 ? sa.findChildByOutbound(bytesToSpi(spi)) : undefined;
      if (!rekey || rekey.state === 'deleted') {
        return this.reject(res, NotifyType.CHILD_SA_NOT_FOUND, {
          code: 'CHILD_SA_NOT_FOUND',
          message: 'peer asked to rekey a CHILD SA we do not have',
        });
      }
      if (rekey.state === 'rekeyed' || rekey.state === 'deleting' || rekey.state === 'creating') {
        // Our own rekey or delete of it finished first: the peer learns from our DELETE (RFC 7296 §2.8.1).
        return this.reject(res, NotifyType.TEMPORARY_FAILURE, {
          code: 'TEMPORARY_FAILURE',
          message: 'peer asked to rekey a CHILD SA that is already being replaced or deleted',
        });
      }
      config = rekey.config;
    } else {
      // Of the CHILD configurations the proposal fits, take the most specific (strongSwan does the same), so a
      // narrow CHILD SA (one port) is not mistaken for a wide one that also covers it.
      const fits = sa.config.children.filter(
        (c) => narrow(tsi.selectors, c.remoteTs).length > 0 && narrow(tsr.selectors, c.localTs).length > 0,
      );
      const exact = fits.filter((c) => allWithin(tsi.selectors, c.remoteTs) && allWithin(tsr.selectors, c.localTs));
      const pool = exact.length > 0 ? exact : fits;
      config = pool.sort(
        (x, y) => selectorVolume([...x.localTs, ...x.remoteTs]) - selectorVolume([...y.localTs, ...y.remoteTs]),
      )[0];
    }
    if (!config) {
      return this.reject(res, NotifyType.TS_UNACCEPTABLE, {
        code: 'TS_UNACCEPTABLE',
        message: explanation({
          what: `no CHILD SA of tunnel ${sa.config.name} matches the initiator's subnets; answered TS_UNACCEPTABLE`,
          offered: sa.config.children
            .map((c) => `${selectorsText(c.localTs)} === ${selectorsText(c.remoteTs)}`)
            .join('; '),
          peer: `proposes ${selectorsText(tsi.selectors)} (its side) === ${selectorsText(tsr.selectors)} (ours)`,
          mismatch: `the peer's ${selectorsText(tsi.selectors)} is not within ${FIELD.remoteSubnets} or its ${selectorsText(tsr.selectors)} is not within ${FIELD.localSubnets}`,
          fix: `set ${FIELD.remoteSubnets} to ${selectorsText(tsi.selectors)} and ${FIELD.localSubnets} to ${selectorsText(tsr.selectors)}, or change the peer's subnets to mirror ours`,
        }),
      });
    }
    this.options.config = config;
    const localTs: AddressRangeSelector[] = narrow(tsr.selectors, config.localTs);
    const remoteTs: AddressRangeSelector[] = narrow(tsi.selectors, config.remoteTs);
    if (localTs.length === 0 || remoteTs.length === 0) {
      return this.reject(res, NotifyType.TS_UNACCEPTABLE, {
        code: 'TS_UNACCEPTABLE',
        message: explanation({
          what: `the initiator's subnets do not overlap CHILD SA ${config.name}; answered TS_UNACCEPTABLE`,
          offered: `${selectorsText(config.localTs)} === ${selectorsText(config.remoteTs)}`,
          peer: `proposes ${selectorsText(tsi.selectors)} (its side) === ${selectorsText(tsr.selectors)} (ours)`,
          mismatch: `we allow ${selectorsText(config.remoteTs)} === ${selectorsText(config.localTs)} from the peer's view`,
          fix: `set ${FIELD.remoteSubnets} to ${selectorsText(tsi.selectors)} and ${FIELD.localSubnets} to ${selectorsText(tsr.selectors)}, or change the peer's subnets to mirror ours`,
        }),
      });
    }
    const ours = this.options.inAuth ? stripKe(config.proposals) : config.proposals;
    let chosen: Proposal;
    try {
      chosen = selectProposal(ours, this.options.inAuth ? stripKe(saP.proposals) : saP.proposals).chosen;
    } catch (e) {
      return this.reject(res, NotifyType.NO_PROPOSAL_CHOSEN, {
        code: 'NO_PROPOSAL_CHOSEN',
        message: e instanceof NoProposalChosenError ? explainNoProposal('esp', ours, e) : String(e),
      });
    }
    if (chosen.spi.length !== 4) {
      return this.reject(res, NotifyType.INVALID_SYNTAX, {
        code: 'INVALID_SYNTAX',
        message: explanation({
          what: `the initiator's ESP proposal carries a ${chosen.spi.length}-byte SPI; answered INVALID_SYNTAX`,
          mismatch: 'ESP SPIs are 4 bytes (RFC 7296 §3.3.1)',
          fix: 'nothing to change in our configuration: the peer sends malformed proposals; check its version and log',
        }),
      });
    }
    const transportRequested = Sa.notifyOf(req, NotifyType.USE_TRANSPORT_MODE) !== undefined;
    if (config.mode === 'transport' && !transportRequested) {
      return this.reject(res, NotifyType.NO_PROPOSAL_CHOSEN, {
        code: 'NO_PROPOSAL_CHOSEN',
        message: `peer wants tunnel mode, ${config.name} is configured for transport mode`,
      });
    }
    const suite = suiteOf(chosen);
    let ni = sa.ni;
    let nr = sa.nr;
    let peerKe: Uint8Array | undefined;
    if (!this.options.inAuth) {
      const nonceP = Sa.payload(req, PayloadType.NONCE);
      if (!nonceP) {
        return this.reject(res, NotifyType.INVALID_SYNTAX, {
          code: 'INVALID_SYNTAX',
          message: explanation({
            what: 'CREATE_CHILD_SA request without a Nonce; answered INVALID_SYNTAX',
            mismatch: 'RFC 7296 §1.3 requires a Nonce in CREATE_CHILD_SA',
            fix: 'nothing to change in our configuration: the peer sends malformed messages; check its version and log',
          }),
        });
      }
      ni = nonceP.data;
      nr = this.ctx.ports.random(this.ctx.nonceLength);
      if (suite.keId !== undefined) {
        const keP = Sa.payload(req, PayloadType.KE);
        if (!keP || keP.group !== suite.keId) {
          const data = new Uint8Array([suite.keId >>> 8, suite.keId & 0xff]);
          return this.reject(
            res,
            NotifyType.INVALID_KE_PAYLOAD,
            {
              code: 'INVALID_KE_PAYLOAD',
              message: `peer's PFS group is ${keP?.group ?? 'none'}, we require ${KeId[suite.keId] ?? suite.keId}`,
            },
            data,
          );
        }
        peerKe = keP.data;
      }
    }
    const child = new ChildSa(
      this.ctx.nextUid(),
      config,
      config.reqid ?? this.ctx.reqidFor(sa.config.name, config.name),
    );
    this.child = child;
    sa.children.push(child);
    child.mode = transportRequested && config.mode === 'transport' ? 'transport' : 'tunnel';
    child.spiOut = bytesToSpi(chosen.spi);
    child.suite = suite;
    child.localTs = localTs;
    child.remoteTs = remoteTs;
    const secrets: Uint8Array[] = [];
    let keReply: Uint8Array | undefined;
    if (peerKe) {
      try {
        const r = this.ctx.provider.keyExchange(suite.keId!).respond(peerKe, this.ctx.ports.random);
        secrets.push(r.sharedSecret);
        keReply = r.publicValue;
      } catch (e) {
        sa.children = sa.children.filter((c) => c !== child);
        return this.reject(res, NotifyType.INVALID_SYNTAX, {
          code: 'CRYPTO_ERROR',
          message: `peer's PFS key exchange value rejected: ${e instanceof Error ? e.message : e}`,
        });
      }
    }
    try {
      child.spiIn = await this.ctx.ports.kernel.allocSpi({
        source: sa.remote.address,
        destination: sa.local.address,
        protocol: 'esp',
        reqid: child.reqid,
      });
    } catch (e) {
      sa.children = sa.children.filter((c) => c !== child);
      return this.reject(res, NotifyType.TEMPORARY_FAILURE, {
        code: 'KERNEL_ERROR',
        message: `kernel could not allocate an SPI: ${e instanceof Error ? e.message : e}`,
      });
    }
    const answer: Proposal = { ...chosen, spi: spiToBytes(child.spiIn) };
    child.proposal = answer;
    child.lowestNonce = lowerNonce(ni, nr);
    const keys = deriveChildSaKeys(this.ctx.provider, sa.suite!.prfId, sa.keys!.skD, suite, ni, nr, secrets);
    for (const s of secrets) s.fill(0);
    try {
      await sa.installInbound(child, keys.initiatorToResponder);
      if (rekey) {
        // Outbound waits for the old CHILD SA's deletion (see the module comment).
        child.pendingOutbound = keys.responderToInitiator;
        rekey.replacedBy = child;
        await sa.installPolicies(child);
      } else if (replacesInstalled(sa, child)) {
        // This CHILD SA replaces a working one of the same reqid (the peer restarted, or re-established): the peer
        // installs its inbound SA only when our response arrives, so switch our outbound over once traffic shows up
        // on the new inbound SA (the peer is ready), or after a second at the latest.
        child.pendingOutbound = keys.responderToInitiator;
        await sa.installPolicies(child);
        sa.activateWhenUsed(child, 1000);
      } else {
        await sa.installOutbound(child, keys.responderToInitiator);
        await sa.installPolicies(child);
        wipe(keys.responderToInitiator);
      }
    } catch (e) {
      wipe(keys.initiatorToResponder, keys.responderToInitiator);
      child.pendingOutbound = undefined;
      await sa.uninstall(child, 'kernel error');
      return this.reject(res, NotifyType.TEMPORARY_FAILURE, {
        code: 'KERNEL_ERROR',
        message: explainKernelRejection(child.proposal, e),
      });
    }
    wipe(keys.initiatorToResponder);
    const enc = res.encrypted!;
    if (child.mode === 'transport') enc.push(notify(NotifyType.USE_TRANSPORT_MODE));
    enc.push({ type: PayloadType.SA, proposals: [answer] });
    if (!this.options.inAuth) {
      enc.push({ type: PayloadType.NONCE, data: nr });
      if (keReply) enc.push({ type: PayloadType.KE, group: suite.keId!, data: keReply });
    }
    enc.push({ type: PayloadType.TSi, selectors: remoteTs });
    enc.push({ type: PayloadType.TSr, selectors: localTs });
    this.options.rekey = rekey;
    this.installed(child);
    return 'done';
  }

  abort(): void {
    const child = this.child;
    if (child && child.state === 'creating') void this.sa.uninstall(child, 'aborted');
  }
}

/** Whether another installed CHILD SA (of any IKE SA of this peer) already carries this reqid's traffic. */
function replacesInstalled(sa: IkeSa, child: ChildSa): boolean {
  return sa.ctx
    .sasOfPeer(sa.config.name)
    .some((o) =>
      o.children.some((c) => c !== child && c.reqid === child.reqid && c.outboundInstalled && c.state !== 'deleted'),
    );
}

function wipe(...keys: (DirectionKeys | undefined)[]): void {
  for (const k of keys) {
    k?.encKey.fill(0);
    k?.integKey.fill(0);
  }
}
