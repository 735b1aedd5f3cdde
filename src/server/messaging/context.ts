/** What the messaging handlers share: stores, group commit, online links, limits, counters. */
import type { LRUCache } from 'lru-cache'
import type { ChatErrorCode, ChatMessage } from '../../protocol/chat-types.js'
import { encodeChatMessage } from '../../protocol/chat-codec.js'
import type { AccountStore } from '../../store/account-store.js'
import type { GroupCommit } from '../../store/group-commit.js'
import { MessageStoreError, type AppliedWriteResult, type MessageStore } from '../../store/message-store.js'
import type { Logger } from '../../io/logger.js'
import type { TokenBucketLimiter } from '../accounts/rate-limit.js'
import type { KeyedSerial } from './keyed-serial.js'
import type { ChatLink, LinkRegistry } from './links.js'
import type { MessagingLimits } from './limits.js'

export interface MessagingStats {
  received: number
  /** Undecodable, or a server-to-client type sent by a client: counted and dropped. */
  malformed: number
  sends: number
  /** SENDs answered from the de-duplication cache or found as duplicates by the store. */
  duplicateSends: number
  sendsFailed: number
  syncs: number
  entriesSynced: number
  /** Inbox entries left out of a sync because alone they exceed the device's maxMessageBytes. */
  entriesTooLargeForDevice: number
  fins: number
  receiptsAdded: number
  requests: number
  requestsFailed: number
  storeErrors: number
}

export const newMessagingStats = (): MessagingStats => ({
  received: 0,
  malformed: 0,
  sends: 0,
  duplicateSends: 0,
  sendsFailed: 0,
  syncs: 0,
  entriesSynced: 0,
  entriesTooLargeForDevice: 0,
  fins: 0,
  receiptsAdded: 0,
  requests: 0,
  requestsFailed: 0,
  storeErrors: 0,
})

export interface MessagingContext {
  store: MessageStore
  accounts: Pick<AccountStore, 'getUserById' | 'getUserByName'>
  commit: Pick<GroupCommit, 'write'>
  links: LinkRegistry
  limits: MessagingLimits
  log: Logger
  /** Wall-clock ms since the epoch. */
  nowMs: () => number
  stats: MessagingStats
  /** Users found to exist (users are never deleted, so a positive answer stays true). */
  knownUsers: LRUCache<number, true>
  /** Requests (contacts, groups, lookups) per user: RATE_LIMITED beyond it. */
  requestRate: TokenBucketLimiter
  /** Changes of one group (invite, leave, rename) run one at a time, by group id. */
  groupChanges: KeyedSerial<number>
  /** Told (once) when the store failed for good. */
  onStoreFailed: ((err: Error) => void) | undefined
}

/** Does the user exist? A store lookup only the first time (per cache lifetime) a user is named. */
export const userExists = async (ctx: MessagingContext, userId: number): Promise<boolean> => {
  if (ctx.knownUsers.has(userId)) return true
  if ((await ctx.accounts.getUserById(userId)) === undefined) return false
  ctx.knownUsers.set(userId, true)
  return true
}

/** A request failed for a reason the client should hear about. */
export class ChatRequestError extends Error {
  readonly code: ChatErrorCode
  readonly retryAfterMs: number | undefined
  constructor(code: ChatErrorCode, message: string, retryAfterMs?: number) {
    super(message)
    this.name = 'ChatRequestError'
    this.code = code
    this.retryAfterMs = retryAfterMs
  }
}

/** Map a thrown error to a wire code; anything unexpected is INTERNAL_ERROR (and logged). */
export const toChatError = (ctx: MessagingContext, err: unknown, what: string): ChatRequestError => {
  if (err instanceof ChatRequestError) return err
  if (err instanceof MessageStoreError) {
    switch (err.code) {
      case 'UNKNOWN_USER':
      case 'UNKNOWN_GROUP':
      case 'NOT_A_MEMBER':
      case 'ALREADY_MEMBER':
        return new ChatRequestError(err.code, err.message)
      case 'INVALID_ARGUMENT':
        return new ChatRequestError('INVALID_REQUEST', err.message)
      case 'STORE_FAILED':
        ctx.onStoreFailed?.(err)
        break
      case 'STORE_CLOSED':
        // Shutdown: the client retries with its next session (a SEND is idempotent).
        ctx.log.info({ what }, 'refused: the server is shutting down')
        return new ChatRequestError('INTERNAL_ERROR', 'the server is shutting down')
      default:
        break
    }
  }
  ctx.stats.storeErrors++
  ctx.log.error({ err, what }, 'messaging store failure')
  return new ChatRequestError('INTERNAL_ERROR', 'the server could not complete the request')
}

export const sendMessage = (ctx: MessagingContext, link: ChatLink, m: ChatMessage): void => {
  ctx.links.sendTo(link, encodeChatMessage(m))
}

/** PUSH to every inbox a durable write touched (but not to `sender`, told by SEND_OK). */
export const notifyVersions = (ctx: MessagingContext, result: AppliedWriteResult, sender?: ChatLink): void => {
  for (const { userId, version } of result.versions) ctx.links.notify(userId, version, userId === sender?.userId ? sender : undefined)
}
