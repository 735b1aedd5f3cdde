import { sameBytes } from '../bytes.js'
import { DecodeError, ErrorCode } from '../errors.js'
import { CID_LENGTH, type PacketHeader, VERSION_V1, decodePacketHeader } from '../wire/packet-header.js'
import { decodePacketNumber } from '../wire/pn-encoding.js'
import type { Session } from './session.js'

/** A closing session repeats its CLOSE at most this often. */
export const CLOSE_RESEND_INTERVAL_MS = 100

/**
 * One datagram from the peer: header checks per packet form, packet-number expansion,
 * packet protection, duplicate detection, then the session's frame handling. Every
 * dropped packet is counted with its reason.
 */
export const handleDatagram = (s: Session, nowMs: number, datagram: Uint8Array): void => {
  if (s.state === 'closed' || s.state === 'draining') {
    s.stats.droppedAfterClose++
    return
  }
  if (s.state === 'closing') {
    // Answer with CLOSE again (the first one may have been lost) — but only to a packet
    // that authenticates, and at most once per CLOSE_RESEND_INTERVAL_MS, so garbage
    // cannot make us reflect CLOSE packets at our peer (RFC 9000 §10.2.1).
    s.stats.droppedAfterClose++
    const close = s.closeFrame
    if (close !== null && nowMs >= close.lastResendMs + CLOSE_RESEND_INTERVAL_MS && authenticates(s, datagram)) {
      close.lastResendMs = nowMs
      s.closeSendPending = true
    }
    return
  }
  s.stats.bytesReceived += datagram.length
  if (!s.addressValidated) s.unvalidatedCreditBytes += datagram.length
  let offset = 0
  while (offset < datagram.length && s.isActive()) {
    let header
    try {
      header = decodePacketHeader(datagram, offset)
    } catch (err) {
      if (!(err instanceof DecodeError)) throw err
      s.drop(nowMs, 'malformed_header')
      return
    }
    offset = header.packetEnd
    if (header.type === 'short') {
      if (!sameBytes(header.dcid, s.localCid)) {
        s.drop(nowMs, 'unknown_connection_id')
        continue
      }
    } else if (header.type === 'initial' || header.type === 'handshake') {
      if (header.version !== VERSION_V1) {
        s.drop(nowMs, 'unsupported_version')
        continue
      }
      const toUs = sameBytes(header.dcid, s.localCid) || (s.originalDcid !== undefined && sameBytes(header.dcid, s.originalDcid))
      if (!toUs) {
        s.drop(nowMs, 'unknown_connection_id')
        continue
      }
    } else if (header.type === 'retry') {
      // Stateless address validation: resend our Initial with the token, to the CID the
      // server picked. Only one RETRY is accepted, and only one naming our CID.
      if (s.role !== 'client' || s.state !== 'connecting' || s.retryToken !== null || !sameBytes(header.dcid, s.localCid) || header.scid.length !== CID_LENGTH) {
        s.drop(nowMs, 'unexpected_retry')
        continue
      }
      s.retryToken = header.token.slice()
      s.remoteCid.set(header.scid)
      s.helloPending = true
      s.emitTrace(nowMs, 'transport:packet_received', { header: 'retry', token_length: header.token.length })
      continue
    } else if (header.type === 'version-negotiation' && s.role === 'client' && s.state === 'connecting') {
      // Unauthenticated: one that lists our own version was triggered by a corrupted or
      // forged packet and is ignored (RFC 9000 §6.2).
      if (header.versions.includes(VERSION_V1)) {
        s.drop(nowMs, 'version_negotiation_lists_our_version')
        continue
      }
      s.closeWithError(nowMs, ErrorCode.VERSION_MISMATCH, `server speaks ${header.versions.map((v) => v.toString(16)).join(',')}`)
      return
    } else {
      s.drop(nowMs, `unexpected_${header.type}`)
      continue
    }
    const opened = openPacket(s, datagram, header)
    if (typeof opened === 'string') {
      if (opened === 'integrity_check_failed') s.stats.droppedUndecryptable++
      s.drop(nowMs, opened, opened !== 'integrity_check_failed')
      continue
    }
    const { packetNumber, payload } = opened
    if (s.ackTracker.isDuplicate(packetNumber)) {
      s.stats.droppedDuplicate++
      s.drop(nowMs, 'duplicate', false)
      continue
    }
    if (header.type === 'initial' && s.role === 'client' && s.state === 'connecting' && header.scid.length === CID_LENGTH) {
      // Only an authenticated packet may tell us the server's connection id.
      s.remoteCid.set(header.scid)
    }
    s.onPacket(nowMs, packetNumber, payload, header.type === 'short', datagram.length)
  }
}

type Openable = Extract<PacketHeader, { truncatedPn: number }>

/**
 * Expand the packet number and open the packet with the protection of its header form.
 * `copy` opens a copy (when the datagram must stay intact). Returns a drop reason on failure.
 */
const openPacket = (
  s: Session,
  datagram: Uint8Array,
  header: Openable,
  copy = false,
): { packetNumber: number; payload: Uint8Array } | 'bad_packet_number' | 'integrity_check_failed' => {
  let packetNumber: number
  try {
    packetNumber = decodePacketNumber({
      truncated: header.truncatedPn,
      lengthBytes: header.pnLength,
      // -1 before any packet expands like undefined; one type here keeps V8's optimised code.
      largestReceived: s.ackTracker.largestReceived,
    })
  } catch (err) {
    if (!(err instanceof DecodeError)) throw err
    return 'bad_packet_number'
  }
  const protection = header.type === 'short' ? s.protection : s.initialProtection
  const packet = copy ? datagram.slice(header.packetStart, header.packetEnd) : datagram.subarray(header.packetStart, header.packetEnd)
  const payload = protection.open(packet, { headerLength: header.headerLength, packetNumber })
  return payload === null ? 'integrity_check_failed' : { packetNumber, payload }
}

/** Whether the first packet of `datagram` passes the session's packet protection. */
const authenticates = (s: Session, datagram: Uint8Array): boolean => {
  let header
  try {
    header = decodePacketHeader(datagram, 0)
  } catch (err) {
    if (err instanceof DecodeError) return false
    throw err
  }
  if (header.type !== 'short' && header.type !== 'initial' && header.type !== 'handshake') return false
  return typeof openPacket(s, datagram, header, true) !== 'string'
}
