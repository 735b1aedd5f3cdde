/** Types shared by ChatClientCore and its outbox (re-exported by chat-core.ts). */
import type { ChatErrorCode, Peer } from '../protocol/chat-types.js'

/** Error codes of ChatError: the server's, plus the client's own. */
export type ChatClientErrorCode =
  | ChatErrorCode
  /** The session ended before the reply came (the request may or may not have been carried out). */
  | 'DISCONNECTED'
  /** The request was made while no session was logged in. */
  | 'NOT_CONNECTED'
  /** The client was shut down. */
  | 'CLOSED'
  /** The server answered with a reply of the wrong kind. */
  | 'UNEXPECTED_REPLY'

export class ChatError extends Error {
  constructor(
    readonly code: ChatClientErrorCode,
    message: string,
    readonly retryAfterMs?: number,
  ) {
    super(message)
    this.name = 'ChatError'
  }
}

/** A message the server has stored ("sent"). */
export interface SentInfo {
  clientMsgId: Uint8Array
  to: Peer
  body: string
  msgId: number
  /** Its entry in the sender's own inbox. */
  version: number
  sentAtMs: number
}

export type Cancel = () => void
