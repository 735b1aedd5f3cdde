import { sameBytes } from '../bytes.js'
import type { Session } from './session.js'

/** Path validation (RFC 9000 §8.2): our challenge to a new peer address, and the peer's to us. */
export class PathState {
  /** The challenge we sent (or must send) to a candidate address. */
  challenge: Uint8Array | null = null
  challengePending = false
  /** Which challenge a sent record refers to (a newer one supersedes it). */
  challengeId = 0
  /** The last datagram built carried our challenge. */
  probeInLastPacket = false
  /** PATH_RESPONSE payloads owed to the peer's challenges. */
  responses: Uint8Array[] = []
}

/**
 * The peer seems to have moved: challenge the new address before sending there
 * (RFC 9000 §8.2), so a spoofed source address cannot redirect our traffic.
 */
export const startPathValidation = (s: Session): void => {
  const data = new Uint8Array(8)
  s.rng.fillBytes(data)
  const path = pathState(s)
  path.challenge = data
  path.challengePending = true
  path.challengeId++
}

/** PATH_RESPONSE: the new address answered our challenge. */
export const onPathResponse = (s: Session, data: Uint8Array): void => {
  const path = s.path
  if (path === null || path.challenge === null || !sameBytes(data, path.challenge)) return
  path.challenge = null
  path.challengePending = false
  s.pushEvent({ type: 'path_validated' })
}

export const pathState = (s: Session): PathState => {
  if (s.path === null) s.path = new PathState()
  return s.path
}
