/** What a session tells its application (drained with Session.pollEvent()). */
export type SessionEvent =
  | { type: 'connected' }
  | { type: 'message'; streamId: number; seq: number; data: Uint8Array }
  /** Every fragment of the message was acknowledged by the peer. */
  | { type: 'message_acked'; streamId: number; seq: number }
  /** The message passed its expiry (or realtime deadline) before it was acknowledged:
   * it is no longer retransmitted. It may or may not have reached the peer. */
  | { type: 'message_expired'; streamId: number; seq: number }
  /** The session ended (closed, dead link, idle timeout) before the message was acknowledged. */
  | { type: 'message_failed'; streamId: number; seq: number }
  /** Nothing was heard from the peer for deadLinkTimeoutMs while data was outstanding. */
  | { type: 'dead_link'; silentMs: number }
  | { type: 'closed'; code: number; reason: string; byPeer: boolean }
  /** The peer answered our PATH_CHALLENGE from its new address (drivers switch to it). */
  | { type: 'path_validated' }

export type SessionState = 'connecting' | 'established' | 'closing' | 'draining' | 'closed'

/** Counters for statistics and the inspector; every dropped datagram is counted by reason. */
export interface SessionStats {
  packetsSent: number
  packetsReceived: number
  bytesSent: number
  bytesReceived: number
  packetsLost: number
  fragmentsRetransmitted: number
  probesSent: number
  messagesSent: number
  messagesDelivered: number
  messagesAcked: number
  messagesExpired: number
  droppedDuplicate: number
  droppedUndecryptable: number
  droppedMalformed: number
  droppedUnknownConnection: number
  droppedAfterClose: number
  /** Authenticated packets whose frames broke the protocol (the session closed). */
  droppedProtocolViolation: number
}

export const newSessionStats = (): SessionStats => ({
  packetsSent: 0,
  packetsReceived: 0,
  bytesSent: 0,
  bytesReceived: 0,
  packetsLost: 0,
  fragmentsRetransmitted: 0,
  probesSent: 0,
  messagesSent: 0,
  messagesDelivered: 0,
  messagesAcked: 0,
  messagesExpired: 0,
  droppedDuplicate: 0,
  droppedUndecryptable: 0,
  droppedMalformed: 0,
  droppedUnknownConnection: 0,
  droppedAfterClose: 0,
  droppedProtocolViolation: 0,
})
