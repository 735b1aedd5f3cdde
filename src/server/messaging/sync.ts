/**
 * Version sync (push -> sync -> fin) and the receipts it produces: SYNC answers with the
 * inbox entries after a version; FIN moves the device's cursor and gives the senders of
 * the newly held messages a "delivered" receipt; READ gives them a "read" receipt.
 */
import { encodeChatMessage } from '../../protocol/chat-codec.js'
import type { ChatMessage, InboxEntry, ReceiptStatus } from '../../protocol/chat-types.js'
import { type MessagingContext, notifyVersions, sendMessage, toChatError } from './context.js'
import type { ChatLink } from './links.js'

export const handleSync = async (ctx: MessagingContext, link: ChatLink, m: Extract<ChatMessage, { type: 'SYNC' }>): Promise<void> => {
  ctx.stats.syncs++
  const limit = Math.max(1, Math.min(m.maxEntries, ctx.limits.maxSyncEntries))
  let entries: InboxEntry[]
  let latestVersion: number
  try {
    // Entries may end beyond the head read first (writes land in between): the reply's
    // latestVersion is raised to the last entry below.
    latestVersion = await ctx.store.inboxHead(link.userId)
    entries = await ctx.store.readInbox({ userId: link.userId, afterVersion: m.afterVersion, limit })
  } catch (err) {
    toChatError(ctx, err, 'sync')
    return // the client's SYNC stays unanswered; its next PUSH or reconnect retries
  }
  entries = withinByteBudget(entries, ctx.limits.maxSyncBodyBytes)
  // Not afterVersion: a device that claims more than the inbox holds (a restored server)
  // must hear the real head.
  const last = entries.at(-1)?.version
  if (last !== undefined && last > latestVersion) latestVersion = last
  const batch: SyncBatch = { type: 'SYNC_BATCH', afterVersion: m.afterVersion, latestVersion, entries }
  const bytes = encodeChatMessage(batch)
  if (bytes.length <= link.maxMessageBytes) {
    ctx.stats.entriesSynced += entries.length
    ctx.links.sendTo(link, bytes)
  } else sendWithinDeviceLimit(ctx, link, batch)
}

type SyncBatch = Extract<ChatMessage, { type: 'SYNC_BATCH' }>

/**
 * A batch larger than the device's session takes (its maxMessageBytes) would never be
 * sent, and the device would ask again forever: send the longest prefix that fits. An
 * entry too large on its own is left out (counted, logged) and passed over; when nothing
 * else fits, an empty batch whose latestVersion is the last entry left out moves the
 * device past it, and a PUSH of the real head keeps it syncing.
 */
const sendWithinDeviceLimit = (ctx: MessagingContext, link: ChatLink, batch: SyncBatch): void => {
  const limit = link.maxMessageBytes
  const sizeOf = (entries: InboxEntry[]): number => encodeChatMessage({ ...batch, entries }).length
  const fitting: InboxEntry[] = []
  let lastLeftOut = -1
  for (const e of batch.entries) {
    if (sizeOf([e]) <= limit) fitting.push(e)
    else if (fitting.length === 0) lastLeftOut = e.version
  }
  const leftOut = batch.entries.length - fitting.length
  if (leftOut > 0) {
    ctx.stats.entriesTooLargeForDevice += leftOut
    ctx.log.warn({ session: link.traceId, leftOut, maxMessageBytes: limit }, 'inbox entries too large for the device left out of its sync')
  }
  if (fitting.length === 0) {
    sendMessage(ctx, link, { ...batch, latestVersion: lastLeftOut, entries: [] })
    if (batch.latestVersion > lastLeftOut) sendMessage(ctx, link, { type: 'PUSH', latestVersion: batch.latestVersion })
    return
  }
  // Longest prefix of the fitting entries within the limit (at least one: each fits alone).
  let low = 1
  let high = fitting.length
  while (low < high) {
    const mid = Math.ceil((low + high) / 2)
    if (sizeOf(fitting.slice(0, mid)) <= limit) low = mid
    else high = mid - 1
  }
  ctx.stats.entriesSynced += low
  sendMessage(ctx, link, { ...batch, entries: fitting.slice(0, low) })
}

/** Keep a prefix whose bodies fit the budget (always at least one entry, so sync progresses). */
const withinByteBudget = (entries: InboxEntry[], budgetBytes: number): InboxEntry[] => {
  let used = 0
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]
    if (e.kind === 'message') used += Buffer.byteLength(e.body, 'utf8')
    if (used > budgetBytes && i > 0) return entries.slice(0, i)
  }
  return entries
}

/** FIN: one durable write moves the cursor and adds the delivered receipts (group commit). */
export const handleFin = async (ctx: MessagingContext, link: ChatLink, m: Extract<ChatMessage, { type: 'FIN' }>): Promise<void> => {
  ctx.stats.fins++
  try {
    const result = await ctx.commit.write({
      kind: 'fin',
      userId: link.userId,
      deviceId: link.deviceId,
      version: m.version,
      maxReceiptEntries: ctx.limits.maxDeliveredReceiptsPerFin,
      nowMs: ctx.nowMs(),
    })
    if (result.kind !== 'fin') throw new Error(`group commit answered a FIN with ${result.kind}`)
    ctx.stats.receiptsAdded += result.versions.length
    notifyVersions(ctx, result)
  } catch (err) {
    toChatError(ctx, err, 'fin')
  }
}

export const handleRead = async (ctx: MessagingContext, link: ChatLink, m: Extract<ChatMessage, { type: 'READ' }>): Promise<void> => {
  const ids = [...new Set(m.msgIds)].slice(0, ctx.limits.maxReadIds)
  try {
    const writes: Array<Promise<void>> = []
    for (const msgId of ids) {
      const msg = await ctx.store.getMessage(msgId)
      if (msg === undefined || msg.senderUserId === link.userId) continue
      // Only a message in the reader's own inbox: a member who joined a group later never got the older ones.
      if (await ctx.store.hasInboxCopy({ userId: link.userId, msgId })) writes.push(addReceipt(ctx, msgId, 'read', link.userId))
    }
    await Promise.all(writes)
  } catch (err) {
    toChatError(ctx, err, 'read')
  }
}

const addReceipt = async (ctx: MessagingContext, msgId: number, status: ReceiptStatus, byUserId: number): Promise<void> => {
  const result = await ctx.commit.write({ kind: 'receipt', msgId, status, byUserId, nowMs: ctx.nowMs() })
  if (result.kind === 'receipt' && result.added) {
    ctx.stats.receiptsAdded++
    notifyVersions(ctx, result)
  }
}
