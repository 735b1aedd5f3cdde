/**
 * Requests with a requestId: contacts, groups, user lookup. Each gets exactly one reply
 * (OK, ERROR or a data reply). Group changes are also inbox entries (durable, synced to
 * every device of every member), written through the group commit.
 */
import { encodeChatMessage } from '../../protocol/chat-codec.js'
import type { ChatMessage, ChatRequest, GroupEventKind, UserSummary } from '../../protocol/chat-types.js'
import { ChatRequestError, type MessagingContext, notifyVersions, sendMessage, toChatError } from './context.js'
import type { ChatLink } from './links.js'

export const handleRequest = async (ctx: MessagingContext, link: ChatLink, m: ChatRequest): Promise<void> => {
  ctx.stats.requests++
  let reply: ChatMessage
  try {
    const rate = ctx.requestRate.take(String(link.userId), ctx.nowMs())
    if (!rate.ok) throw new ChatRequestError('RATE_LIMITED', `too many requests; retry in ${Math.ceil(rate.retryAfterMs ?? 0)} ms`)
    reply = await answer(ctx, link, m)
  } catch (err) {
    ctx.stats.requestsFailed++
    reply = errorReply(m.requestId, toChatError(ctx, err, m.type))
  }
  sendReply(ctx, link, m.requestId, reply)
}

const errorReply = (requestId: number, e: ChatRequestError): ChatMessage => ({ type: 'ERROR', requestId, code: e.code, message: e.message.slice(0, 200) })

/** Exactly one reply per request: one the codec or the device cannot take (a list too long) becomes an ERROR. */
const sendReply = (ctx: MessagingContext, link: ChatLink, requestId: number, reply: ChatMessage): void => {
  let bytes: Uint8Array | undefined
  try {
    bytes = encodeChatMessage(reply)
  } catch (err) {
    if (!(err instanceof RangeError)) throw err
  }
  if (bytes === undefined || bytes.length > link.maxMessageBytes) {
    ctx.stats.requestsFailed++
    ctx.log.warn({ session: link.traceId, type: reply.type, bytes: bytes?.length }, 'reply too large for the device: answered with an error')
    bytes = encodeChatMessage(errorReply(requestId, new ChatRequestError('INTERNAL_ERROR', `the ${reply.type} reply is too large to send`)))
  }
  ctx.links.sendTo(link, bytes)
}

const answer = async (ctx: MessagingContext, link: ChatLink, m: ChatRequest): Promise<ChatMessage> => {
  const { requestId } = m
  const me = link.userId
  switch (m.type) {
    case 'CONTACT_ADD': {
      const other = await userByName(ctx, m.username)
      if (other.userId === me) throw new ChatRequestError('INVALID_REQUEST', 'you cannot add yourself')
      if (await ctx.store.addContact({ userId: me, contactUserId: other.userId, nowMs: ctx.nowMs() })) exchangePresence(ctx, me, other.userId)
      return { type: 'OK', requestId }
    }
    case 'CONTACT_REMOVE': {
      const other = await userByName(ctx, m.username)
      await ctx.store.removeContact({ userId: me, contactUserId: other.userId })
      return { type: 'OK', requestId }
    }
    case 'CONTACT_LIST': {
      const ids = await ctx.store.listContacts(me)
      const users = await summaries(ctx, ids)
      return { type: 'CONTACTS', requestId, contacts: users.map((u) => ({ ...u, online: ctx.links.isOnline(u.userId) })) }
    }
    case 'GROUP_CREATE': {
      checkNewGroupName(m.name)
      const invited = await Promise.all(m.usernames.map((name) => userByName(ctx, name)))
      const memberIds = [...new Set([me, ...invited.map((u) => u.userId)])]
      if (memberIds.length > ctx.limits.maxGroupSize) throw new ChatRequestError('GROUP_FULL', `a group holds at most ${ctx.limits.maxGroupSize} members`)
      // Everything the reply needs is read, and its size checked, before the write: once the
      // group exists the answer must be GROUP, or a retry would make a second group.
      const members = await summaries(ctx, memberIds)
      const largestReply = encodeChatMessage({ type: 'GROUP', requestId, groupId: Number.MAX_SAFE_INTEGER, name: m.name, members })
      if (largestReply.length > link.maxMessageBytes) throw new ChatRequestError('INVALID_REQUEST', 'too many members for a reply this device can take')
      const groupId = await groupChange(ctx, { groupId: 0, event: 'created', actor: me, subject: me, name: m.name, inboxUserIds: memberIds })
      return { type: 'GROUP', requestId, groupId, name: m.name, members }
    }
    case 'GROUP_INVITE':
      return ctx.groupChanges.run(m.groupId, async () => {
        const { name, members } = await groupOf(ctx, m.groupId, me)
        const invitee = await userByName(ctx, m.username)
        if (members.includes(invitee.userId)) throw new ChatRequestError('ALREADY_MEMBER', `${invitee.username} is already a member`)
        if (members.length >= ctx.limits.maxGroupSize) throw new ChatRequestError('GROUP_FULL', `a group holds at most ${ctx.limits.maxGroupSize} members`)
        await groupChange(ctx, { groupId: m.groupId, event: 'joined', actor: me, subject: invitee.userId, name, inboxUserIds: [...members, invitee.userId] })
        return { type: 'OK', requestId }
      })
    case 'GROUP_LEAVE':
      return ctx.groupChanges.run(m.groupId, async () => {
        const { name, members } = await groupOf(ctx, m.groupId, me)
        await groupChange(ctx, { groupId: m.groupId, event: 'left', actor: me, subject: me, name, inboxUserIds: members })
        return { type: 'OK', requestId }
      })
    case 'GROUP_RENAME':
      checkNewGroupName(m.name)
      return ctx.groupChanges.run(m.groupId, async () => {
        const { members } = await groupOf(ctx, m.groupId, me)
        await groupChange(ctx, { groupId: m.groupId, event: 'renamed', actor: me, subject: me, name: m.name, inboxUserIds: members })
        return { type: 'OK', requestId }
      })
    case 'GROUP_MEMBERS': {
      const { name, members } = await groupOf(ctx, m.groupId, me)
      return { type: 'GROUP', requestId, groupId: m.groupId, name, members: await summaries(ctx, members) }
    }
    case 'GROUP_LIST': {
      const groups = await ctx.store.listGroupsOf(me)
      const counted = await Promise.all(groups.map(async (g) => ({ groupId: g.groupId, name: g.name, memberCount: (await ctx.store.listGroupMembers(g.groupId)).length })))
      return { type: 'GROUPS', requestId, groups: counted }
    }
    case 'USER_LOOKUP':
      return { type: 'USERS', requestId, users: await summaries(ctx, [...new Set(m.userIds)].slice(0, 1000)) }
    case 'USER_FIND': {
      const found = await Promise.all([...new Set(m.usernames)].slice(0, 1000).map((name) => ctx.accounts.getUserByName(name)))
      return { type: 'USERS', requestId, users: found.flatMap((u) => (u === undefined ? [] : [{ userId: u.userId, username: u.username }])) }
    }
  }
}

/**
 * Control characters (C0, DEL, C1) and bidirectional overrides or isolates have no place
 * in a group name: every member's client shows it, and they can disguise it or drive a
 * terminal. (Bodies may hold any text: clients make it safe to show.)
 */
const UNSAFE_IN_NAMES = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/u

const checkNewGroupName = (name: string): void => {
  if (name.trim().length === 0) throw new ChatRequestError('INVALID_REQUEST', 'a group name cannot be empty')
  if (UNSAFE_IN_NAMES.test(name)) throw new ChatRequestError('INVALID_REQUEST', 'a group name cannot hold control or text-direction characters')
}

const userByName = async (ctx: MessagingContext, username: string): Promise<UserSummary> => {
  const u = await ctx.accounts.getUserByName(username)
  if (u === undefined) throw new ChatRequestError('UNKNOWN_USER', `no user named ${JSON.stringify(username)}`)
  return { userId: u.userId, username: u.username }
}

/** Known users only (unknown ids are left out). */
const summaries = async (ctx: MessagingContext, userIds: number[]): Promise<UserSummary[]> => {
  const users = await Promise.all(userIds.map((id) => ctx.accounts.getUserById(id)))
  return users.flatMap((u) => (u === undefined ? [] : [{ userId: u.userId, username: u.username }]))
}

/** The group and its members, if `userId` is one of them. */
const groupOf = async (ctx: MessagingContext, groupId: number, userId: number): Promise<{ name: string; members: number[] }> => {
  const group = await ctx.store.getGroup(groupId)
  if (group === undefined) throw new ChatRequestError('UNKNOWN_GROUP', `no group ${groupId}`)
  const members = await ctx.store.listGroupMembers(groupId)
  if (!members.includes(userId)) throw new ChatRequestError('NOT_A_MEMBER', `not a member of group ${groupId}`)
  return { name: group.name, members }
}

/**
 * A group change and its event in the members' inboxes, as one durable write: the change
 * never stands without its event (a failed write leaves neither). Returns the group's id
 * (new for 'created', whose groupId is 0).
 */
const groupChange = async (
  ctx: MessagingContext,
  e: { groupId: number; event: GroupEventKind; actor: number; subject: number; name: string; inboxUserIds: number[] },
): Promise<number> => {
  const result = await ctx.commit.write({
    kind: 'group_event',
    groupId: e.groupId,
    event: e.event,
    actorUserId: e.actor,
    subjectUserId: e.subject,
    name: e.name,
    inboxUserIds: [...new Set(e.inboxUserIds)],
    nowMs: ctx.nowMs(),
    applyChange: true,
  })
  if (result.kind !== 'group_event') throw new Error(`group commit answered a group event with ${result.kind}`)
  notifyVersions(ctx, result)
  return result.groupId
}

/** Two users just became contacts: each online one learns the other's presence. */
const exchangePresence = (ctx: MessagingContext, a: number, b: number): void => {
  if (ctx.links.isOnline(a) && ctx.links.isOnline(b)) {
    for (const link of ctx.links.linksOf(a)) sendMessage(ctx, link, { type: 'PRESENCE', userId: b, online: true })
    for (const link of ctx.links.linksOf(b)) sendMessage(ctx, link, { type: 'PRESENCE', userId: a, online: true })
  }
}
