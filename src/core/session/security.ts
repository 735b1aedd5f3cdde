import type { AeadProtection } from '../crypto/aead-protection.js'
import { formatKeyLog } from '../crypto/key-log.js'
import { ErrorCode, ProtocolError } from '../errors.js'
import { awaitingKeysProtection } from '../protection.js'
import type { HandshakeOutcome } from './secure-handshake.js'
import type { Session } from './session.js'

/* The encrypted session's handshake messages and time-based key updates. */

/** The handshake is done: the peer's parameters and the packet keys take effect. */
const installKeys = (s: Session, nowMs: number, outcome: HandshakeOutcome, keyType: string): void => {
  s.applyPeerParams(outcome.peerParams)
  s.protection = outcome.protection
  s.keysSinceMs = nowMs
  s.keyLog?.(formatKeyLog({ keys: outcome.keys }))
  s.emitTrace(nowMs, 'security:key_updated', { key_type: keyType, generation: 0 })
}

/** A CRYPTO_HANDSHAKE message (Noise NK). Throws HandshakeError on anything forged. */
export const onCryptoHandshake = (s: Session, nowMs: number, message: Uint8Array): void => {
  const hs = s.handshake
  if (hs === null) throw new ProtocolError(ErrorCode.PROTOCOL_VIOLATION, 'CRYPTO_HANDSHAKE on an unencrypted session')
  if (s.role === 'server') {
    if (s.originalDcid === undefined) return // established long ago: a stale repeat
    const outcome = hs.onMessage1({
      message,
      originalDcid: s.originalDcid,
      clientScid: s.remoteCid,
      serverCid: s.localCid,
      params: s.localParams(),
    })
    if (outcome !== undefined) installKeys(s, nowMs, outcome, 'server_1rtt_secret')
    if (!s.helloAcked) s.helloPending = true
    return
  }
  if (s.state !== 'connecting') return
  installKeys(s, nowMs, hs.onMessage2({ message, serverCid: s.remoteCid }), 'client_1rtt_secret')
  s.onEstablished(nowMs)
  // Confirm with an ack-eliciting short-header packet, probed until acknowledged.
  s.pingPending = true
}

/** When the keys are old enough to be replaced (Infinity: no time-based key update). */
export const keyUpdateDeadlineMs = (s: Session): number => {
  const afterMs = s.handshake?.security.keyUpdateAfterMs ?? 0
  if (afterMs <= 0 || s.state !== 'established' || s.protection === awaitingKeysProtection) return Infinity
  return s.keysSinceMs + afterMs
}

export const updateKeysByTime = (s: Session, nowMs: number): void => {
  const aead = s.protection as Partial<AeadProtection>
  if (aead.canUpdateKeys === true && aead.keyUpdate !== undefined) {
    aead.keyUpdate()
    s.emitTrace(nowMs, 'security:key_updated', { trigger: 'time', generation: aead.sendGeneration })
    s.keysSinceMs = nowMs
  } else {
    // The peer has not caught up with our last update yet: try again a little later.
    s.keysSinceMs += Math.min(s.rtt.smoothedRttMs, 1000)
  }
  // Make sure something goes out under the new keys so the peer follows.
  s.pingPending = true
}
