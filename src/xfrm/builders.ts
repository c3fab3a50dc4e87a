/**
 * Friendly construction of kernel SAs, encoding the kernel's rules once:
 * - AEAD (XFRMA_ALG_AEAD) or encryption + integrity with explicit truncation (XFRMA_ALG_CRYPT + XFRMA_ALG_AUTH_TRUNC);
 *   never the legacy XFRMA_ALG_AUTH.
 * - Replay: the legacy u8 replay_window is capped by the kernel at 32 packets, so a larger window, or ESN, goes in
 *   XFRMA_REPLAY_ESN_VAL and info.replay_window must then be 0 (verify_replay); ESN also sets XFRM_STATE_ESN.
 * - Byte/packet limits default to XFRM_INF, time limits to 0 (none), as `ip xfrm` does.
 */
import { familyOf } from './address.js';
import { IPPROTO_ESP, UDP_ENCAP_ESPINUDP, XFRM_MODE_TUNNEL, XFRM_STATE_ESN } from './constants.js';
import type { XfrmSa } from './messages.js';
import {
  type XfrmAlgo,
  type XfrmAlgoAead,
  type XfrmAlgoAuth,
  type XfrmLifetimeCfg,
  type XfrmMark,
  type XfrmSelector,
  xfrmLifetimeCfg,
  xfrmLifetimeCur,
  xfrmReplayStateEsn,
  xfrmSelector,
} from './structs.js';

/** Largest window the legacy xfrm_usersa_info.replay_window gives (the kernel's 32-bit legacy bitmap). */
export const LEGACY_REPLAY_WINDOW_MAX = 32;

export interface SaSpec {
  /** Outer source and destination. */
  src: string;
  dst: string;
  spi: number;
  reqid: number;
  proto?: number;
  mode?: number;
  aead?: XfrmAlgoAead;
  crypt?: XfrmAlgo;
  auth?: XfrmAlgoAuth;
  /** ESP in UDP (RFC 3948). */
  encap?: { sport: number; dport: number; oa?: string };
  esn?: boolean;
  /** Packets; default 32 (0 for an outbound SA is fine too). */
  replayWindow?: number;
  lifetime?: Partial<XfrmLifetimeCfg>;
  mark?: XfrmMark;
  ifId?: number;
  /** Default: any/any of the outer family (tunnel mode). */
  selector?: XfrmSelector;
  extraFlags?: number;
  flags?: number;
}

export function buildSa(s: SaSpec): XfrmSa {
  const family = familyOf(s.dst);
  if (familyOf(s.src) !== family) throw new RangeError('SA source and destination families differ');
  if (s.aead && (s.crypt || s.auth)) throw new RangeError('an SA has either AEAD or encryption + integrity');
  if (!s.aead && !s.crypt) throw new RangeError('an SA needs AEAD or an encryption algorithm');
  if (s.auth && !(s.auth.truncLen > 0)) throw new RangeError('integrity needs an explicit truncation length');
  if (s.aead && s.aead.key.length <= 4) throw new RangeError('AEAD keys include a 4-byte salt');
  const window = s.replayWindow ?? 32;
  const useEsnAttr = s.esn === true || window > LEGACY_REPLAY_WINDOW_MAX;
  const sa: XfrmSa = {
    info: {
      sel: s.selector ?? xfrmSelector({ family }),
      id: { daddr: s.dst, spi: s.spi >>> 0, proto: s.proto ?? IPPROTO_ESP },
      saddr: s.src,
      lft: xfrmLifetimeCfg(s.lifetime ?? {}),
      curlft: xfrmLifetimeCur(),
      stats: { replayWindow: 0, replay: 0, integrityFailed: 0 },
      seq: 0,
      reqid: s.reqid,
      family,
      mode: s.mode ?? XFRM_MODE_TUNNEL,
      replayWindow: useEsnAttr ? 0 : window,
      flags: (s.flags ?? 0) | (s.esn ? XFRM_STATE_ESN : 0),
    },
  };
  if (s.aead) sa.aead = s.aead;
  if (s.crypt) sa.crypt = s.crypt;
  if (s.auth) sa.auth = s.auth;
  if (useEsnAttr) sa.replayEsn = xfrmReplayStateEsn(window);
  if (s.encap) {
    sa.encap = {
      type: UDP_ENCAP_ESPINUDP,
      sport: s.encap.sport,
      dport: s.encap.dport,
      oa: s.encap.oa ?? (family === 10 ? '::' : '0.0.0.0'),
    };
  }
  if (s.mark) sa.mark = s.mark;
  if (s.ifId !== undefined) sa.ifId = s.ifId;
  if (s.extraFlags !== undefined) sa.extraFlags = s.extraFlags;
  return sa;
}
