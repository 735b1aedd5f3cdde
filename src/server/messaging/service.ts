/**
 * The messaging service: what a logged-in device's messages on stream 0 mean. It is
 * transport-agnostic: the UDP chat server and the simulated-network tests both attach
 * ChatLinks (one per authenticated session) and hand it the bytes each one receives.
 *
 * Each link's messages are handled in arrival order (one queue per link), so a device's
 * SENDs are stored in the order it sent them. Durable writes go through the group
 * commit; replies (SEND_OK, request replies) go out only after their write committed.
 */
import { LRUCache } from 'lru-cache'
import { DecodeError } from '../../core/errors.js'
import { decodeChatMessage } from '../../protocol/chat-codec.js'
import type { ChatMessage } from '../../protocol/chat-types.js'
import type { AccountStore } from '../../store/account-store.js'
import type { GroupCommit } from '../../store/group-commit.js'
import type { MessageStore } from '../../store/message-store.js'
import type { Logger } from '../../io/logger.js'
import { type MessagingContext, type MessagingStats, newMessagingStats, sendMessage } from './context.js'
import { DEFAULT_MESSAGING_LIMITS, type MessagingLimits } from './limits.js'
import { type ChatLink, LinkRegistry } from './links.js'
import { TokenBucketLimiter } from '../accounts/rate-limit.js'
import { KeyedSerial } from './keyed-serial.js'
import { SendHandler } from './send.js'
import { handleRequest } from './social.js'
import { handleFin, handleRead, handleSync } from './sync.js'

export type { ChatLink } from './links.js'

/** User ids remembered as existing (a number and a cache node each: a few MB at most). */
const KNOWN_USERS_CACHED = 100_000

export interface MessagingServiceOptions {
  store: MessageStore
  accounts: Pick<AccountStore, 'getUserById' | 'getUserByName'>
  commit: Pick<GroupCommit, 'write'>
  log: Logger
  limits?: Partial<MessagingLimits>
  /** Wall-clock ms since the epoch (message and receipt times). Default Date.now. */
  nowMs?: () => number
  /**
   * The message store failed for good (STORE_FAILED: a durable commit could not be
   * confirmed); called once. Only a restart, whose recovery decides what is on disk, helps.
   */
  onStoreFailed?: (err: Error) => void
}

const once = (fn: ((err: Error) => void) | undefined): ((err: Error) => void) | undefined => {
  if (fn === undefined) return undefined
  let called = false
  return (err) => {
    if (called) return
    called = true
    fn(err)
  }
}

export class MessagingService {
  readonly stats: MessagingStats = newMessagingStats()
  private readonly ctx: MessagingContext
  private readonly sends: SendHandler
  private readonly queues = new Map<ChatLink, Promise<void>>()

  constructor(o: MessagingServiceOptions) {
    const limits = { ...DEFAULT_MESSAGING_LIMITS, ...o.limits }
    this.ctx = {
      store: o.store,
      accounts: o.accounts,
      commit: o.commit,
      links: new LinkRegistry(),
      limits,
      log: o.log,
      nowMs: o.nowMs ?? Date.now,
      stats: this.stats,
      knownUsers: new LRUCache<number, true>({ max: KNOWN_USERS_CACHED }),
      groupChanges: new KeyedSerial<number>(),
      onStoreFailed: once(o.onStoreFailed),
      requestRate: new TokenBucketLimiter({
        capacity: limits.requestBurst,
        refillIntervalMs: 1000 / limits.requestRatePerSecond,
        maxKeys: limits.rateLimitedUsersTracked,
      }),
    }
    this.sends = new SendHandler(this.ctx)
  }

  get onlineUsers(): number {
    return this.ctx.links.onlineUsers
  }

  /** A device logged in: it hears its inbox's head (PUSH) and its contacts hear it is online. */
  attach(link: ChatLink): void {
    const first = this.ctx.links.add(link)
    this.queues.set(link, Promise.resolve())
    this.enqueue(link, async () => {
      const head = await this.ctx.store.inboxHead(link.userId)
      sendMessage(this.ctx, link, { type: 'PUSH', latestVersion: head })
      if (first) await this.announcePresence(link.userId, true)
    })
  }

  /** The device's session ended or logged out. */
  detach(link: ChatLink): void {
    if (!this.queues.delete(link)) return
    if (this.ctx.links.remove(link)) {
      this.announcePresence(link.userId, false).catch((err: unknown) => this.ctx.log.warn({ err }, 'presence update failed'))
    }
  }

  /** Bytes received from a logged-in device on stream 0 (a messaging-family message). */
  handle(link: ChatLink, data: Uint8Array): void {
    this.stats.received++
    let m: ChatMessage
    try {
      m = decodeChatMessage(data)
    } catch (err) {
      if (!(err instanceof DecodeError)) throw err
      this.malformed(link, err.message)
      return
    }
    this.enqueue(link, () => this.dispatch(link, m))
  }

  private dispatch(link: ChatLink, m: ChatMessage): Promise<void> | void {
    switch (m.type) {
      case 'SEND':
        return this.sends.handle(link, m)
      case 'SYNC':
        return handleSync(this.ctx, link, m)
      case 'FIN':
        // Not awaited: its receipts go through the group commit; the next message need not wait.
        void handleFin(this.ctx, link, m)
        return
      case 'READ':
        void handleRead(this.ctx, link, m)
        return
      case 'CONTACT_ADD':
      case 'CONTACT_REMOVE':
      case 'CONTACT_LIST':
      case 'GROUP_CREATE':
      case 'GROUP_INVITE':
      case 'GROUP_LEAVE':
      case 'GROUP_MEMBERS':
      case 'GROUP_RENAME':
      case 'GROUP_LIST':
      case 'USER_LOOKUP':
      case 'USER_FIND':
        return handleRequest(this.ctx, link, m)
      default:
        this.malformed(link, `${m.type} is sent by servers, not clients`)
    }
  }

  private malformed(link: ChatLink, why: string): void {
    this.stats.malformed++
    this.ctx.log.debug({ session: link.traceId, why }, 'malformed messaging message dropped')
  }

  private enqueue(link: ChatLink, work: () => Promise<void> | void): void {
    const previous = this.queues.get(link)
    if (previous === undefined) return // detached meanwhile
    const next = previous.then(work).catch((err: unknown) => this.ctx.log.error({ err, session: link.traceId }, 'messaging handler failed'))
    this.queues.set(link, next)
  }

  private async announcePresence(userId: number, online: boolean): Promise<void> {
    const contacts = await this.ctx.store.listContacts(userId)
    // The user came or went while the contacts were read: that change announces itself,
    // and this stale one must not arrive after it.
    if (this.ctx.links.isOnline(userId) !== online) return
    for (const contactId of contacts) {
      for (const link of this.ctx.links.linksOf(contactId)) sendMessage(this.ctx, link, { type: 'PRESENCE', userId, online })
    }
  }
}
