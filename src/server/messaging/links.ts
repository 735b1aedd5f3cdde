/**
 * Who is online: the logged-in sessions ("links") of every user, presence transitions
 * (first device online, last device offline) and coalesced PUSH notices (many entries
 * added to one inbox in one tick give each device one PUSH with the newest version).
 */
import { encodeChatMessage } from '../../protocol/chat-codec.js'

/** One logged-in device session, as the messaging service sees it. */
export interface ChatLink {
  readonly userId: number
  readonly deviceId: number
  /** For logs. */
  readonly traceId: string
  /** The largest message the device's session takes (its transport parameter and ours). */
  readonly maxMessageBytes: number
  /** Queue bytes on the session's control stream; false when the session can take no more. */
  send(bytes: Uint8Array): boolean
}

export class LinkRegistry {
  /** The user's online links: the link itself while there is one (most users), a Set for several. */
  private readonly byUser = new Map<number, ChatLink | Set<ChatLink>>()
  /** user -> newest version not yet pushed, and the one link that needs no PUSH for it */
  private readonly pendingPush = new Map<number, { version: number; except: ChatLink | undefined }>()
  private pushScheduled = false
  sendFailures = 0

  /** Returns true when this is the user's first online link. */
  add(link: ChatLink): boolean {
    const current = this.byUser.get(link.userId)
    if (current === undefined) {
      this.byUser.set(link.userId, link)
      return true
    }
    if (current instanceof Set) current.add(link)
    else if (current !== link) this.byUser.set(link.userId, new Set([current, link]))
    return false
  }

  /** Returns true when the user has no online link left. */
  remove(link: ChatLink): boolean {
    const current = this.byUser.get(link.userId)
    if (current === undefined) return false
    if (!(current instanceof Set)) {
      if (current !== link) return false
      this.byUser.delete(link.userId)
      return true
    }
    if (!current.delete(link)) return false
    if (current.size === 1) this.byUser.set(link.userId, current.values().next().value!)
    return false
  }

  isOnline(userId: number): boolean {
    return this.byUser.has(userId)
  }

  get onlineUsers(): number {
    return this.byUser.size
  }

  linksOf(userId: number): Iterable<ChatLink> {
    const current = this.byUser.get(userId)
    if (current === undefined) return []
    return current instanceof Set ? current : [current]
  }

  /** Send bytes to every online device of the user, optionally but one. */
  sendToUser(userId: number, bytes: Uint8Array, except?: ChatLink): void {
    const current = this.byUser.get(userId)
    if (current === undefined) return
    if (!(current instanceof Set)) {
      if (current !== except) this.sendTo(current, bytes)
      return
    }
    for (const link of current) if (link !== except) this.sendTo(link, bytes)
  }

  sendTo(link: ChatLink, bytes: Uint8Array): void {
    if (!link.send(bytes)) this.sendFailures++
  }

  /**
   * The user's inbox reached `version`: PUSH to its devices, once per tick. `except`: a
   * device that learns of this entry otherwise (SEND_OK carries the sender's own copy's
   * version); it is still pushed if anything else reached the inbox in the same tick.
   */
  notify(userId: number, version: number, except?: ChatLink): void {
    if (!this.byUser.has(userId)) return
    const pending = this.pendingPush.get(userId)
    if (pending === undefined) this.pendingPush.set(userId, { version, except })
    else {
      if (version > pending.version) pending.version = version
      if (pending.except !== except) pending.except = undefined
    }
    if (this.pushScheduled) return
    this.pushScheduled = true
    queueMicrotask(this.flushPushes)
  }

  private readonly flushPushes = (): void => {
    this.pushScheduled = false
    for (const [userId, { version, except }] of this.pendingPush) this.sendToUser(userId, encodeChatMessage({ type: 'PUSH', latestVersion: version }), except)
    this.pendingPush.clear()
  }
}
