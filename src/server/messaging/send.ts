/**
 * SEND: validate, de-duplicate by (user, clientMsgId), store durably through the group
 * commit, answer SEND_OK (the "sent" receipt), PUSH to every inbox that got a copy.
 */
import { LRUCache } from 'lru-cache'
import type { ChatMessage, Peer } from '../../protocol/chat-types.js'
import { TokenBucketLimiter } from '../accounts/rate-limit.js'
import { ChatRequestError, type MessagingContext, notifyVersions, sendMessage, toChatError, userExists } from './context.js'
import type { ChatLink } from './links.js'

type Send = Extract<ChatMessage, { type: 'SEND' }>

interface SendOutcome {
  msgId: number
  version: number
  sentAtMs: number
}

const hex = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex')

export class SendHandler {
  private readonly ctx: MessagingContext
  /** (user, clientMsgId) -> the outcome of the first SEND with that id (in flight or done). */
  private readonly recent: LRUCache<string, Promise<SendOutcome>>
  private readonly rate: TokenBucketLimiter

  constructor(ctx: MessagingContext) {
    this.ctx = ctx
    this.recent = new LRUCache({ max: ctx.limits.dedupeCacheEntries })
    this.rate = new TokenBucketLimiter({
      capacity: ctx.limits.sendBurst,
      refillIntervalMs: 1000 / ctx.limits.sendRatePerSecond,
      maxKeys: ctx.limits.rateLimitedUsersTracked,
    })
  }

  /**
   * Runs on the link's in-order queue up to the moment the write is queued for commit,
   * so one device's messages are stored in the order it sent them; the commit itself is
   * not awaited here (the next SEND joins the same batch).
   */
  async handle(link: ChatLink, m: Send): Promise<void> {
    const { ctx } = this
    ctx.stats.sends++
    const key = `${link.userId}:${hex(m.clientMsgId)}`
    const earlier = this.recent.get(key)
    if (earlier !== undefined) {
      ctx.stats.duplicateSends++
      void this.answer(link, m, earlier)
      return
    }
    let outcome: Promise<SendOutcome>
    try {
      outcome = this.store(link, m, await this.check(link, m))
    } catch (err) {
      // A retry of a message stored before its id left the cache (a restart, or evicted)
      // gets that message's SEND_OK whatever the checks say now (the sender may have left
      // the group since); the store answers a duplicate with the versions first assigned.
      if (!(err instanceof ChatRequestError) || !(await this.storedBefore(link, m))) {
        this.fail(link, m, toChatError(ctx, err, 'send'))
        return
      }
      outcome = this.store(link, m, [link.userId])
    }
    this.recent.set(key, outcome)
    outcome.catch(() => this.recent.delete(key))
    void this.answer(link, m, outcome)
  }

  /** Limits and recipients; returns every inbox that gets a copy. */
  private async check(link: ChatLink, m: Send): Promise<number[]> {
    const { ctx } = this
    if (m.body.length === 0) throw new ChatRequestError('INVALID_REQUEST', 'message body is empty')
    const bodyBytes = Buffer.byteLength(m.body, 'utf8')
    if (bodyBytes > ctx.limits.maxBodyBytes) {
      throw new ChatRequestError('MESSAGE_TOO_LARGE', `message body is ${bodyBytes} bytes, the limit is ${ctx.limits.maxBodyBytes}`)
    }
    const decision = this.rate.take(String(link.userId), ctx.nowMs())
    if (!decision.ok) throw new ChatRequestError('RATE_LIMITED', 'too many messages', decision.retryAfterMs)
    return recipientsOf(ctx, link.userId, m.to)
  }

  private async storedBefore(link: ChatLink, m: Send): Promise<boolean> {
    try {
      return (await this.ctx.store.findByClientMsgId({ senderUserId: link.userId, clientMsgId: m.clientMsgId })) !== undefined
    } catch (err) {
      toChatError(this.ctx, err, 'send duplicate lookup') // counted and logged; the check's error is answered
      return false
    }
  }

  private async store(link: ChatLink, m: Send, inboxUserIds: number[]): Promise<SendOutcome> {
    const { ctx } = this
    const result = await ctx.commit.write({
      kind: 'message',
      senderUserId: link.userId,
      senderDeviceId: link.deviceId,
      clientMsgId: m.clientMsgId,
      to: m.to,
      body: m.body,
      inboxUserIds,
      nowMs: ctx.nowMs(),
    })
    if (result.kind !== 'message') throw new Error(`group commit answered a message with ${result.kind}`)
    if (result.duplicate) ctx.stats.duplicateSends++
    else notifyVersions(ctx, result, link)
    const own = result.versions.find((v) => v.userId === link.userId)
    return { msgId: result.msgId, version: own?.version ?? 0, sentAtMs: result.sentAtMs }
  }

  private async answer(link: ChatLink, m: Send, outcome: Promise<SendOutcome>): Promise<void> {
    try {
      const o = await outcome
      sendMessage(this.ctx, link, { type: 'SEND_OK', clientMsgId: m.clientMsgId, msgId: o.msgId, version: o.version, sentAtMs: o.sentAtMs })
    } catch (err) {
      this.fail(link, m, toChatError(this.ctx, err, 'send'))
    }
  }

  private fail(link: ChatLink, m: Send, err: ChatRequestError): void {
    this.ctx.stats.sendsFailed++
    sendMessage(this.ctx, link, err.retryAfterMs === undefined
      ? { type: 'SEND_FAILED', clientMsgId: m.clientMsgId, code: err.code }
      : { type: 'SEND_FAILED', clientMsgId: m.clientMsgId, code: err.code, retryAfterMs: err.retryAfterMs })
  }
}

/** Every inbox that gets a copy of a message from `senderUserId` to `to`: recipients and the sender. */
export const recipientsOf = async (ctx: MessagingContext, senderUserId: number, to: Peer): Promise<number[]> => {
  if (to.kind === 'user') {
    if (to.userId === senderUserId) return [senderUserId]
    if (!(await userExists(ctx, to.userId))) throw new ChatRequestError('UNKNOWN_USER', `no user ${to.userId}`)
    return [to.userId, senderUserId]
  }
  if ((await ctx.store.getGroup(to.groupId)) === undefined) throw new ChatRequestError('UNKNOWN_GROUP', `no group ${to.groupId}`)
  const members = await ctx.store.listGroupMembers(to.groupId)
  if (!members.includes(senderUserId)) throw new ChatRequestError('NOT_A_MEMBER', `not a member of group ${to.groupId}`)
  return members
}
