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
  /** Queue bytes on the session's control stream; false when the session can take no more. */
  send(bytes: Uint8Array): boolean
}

export class LinkRegistry {
  private readonly byUser = new Map<number, Set<ChatLink>>()
  /** user -> newest version not yet pushed, and the one link that needs no PUSH for it */
  private readonly pendingPush = new Map<number, { version: number; except: ChatLink | undefined }>()
  private pushScheduled = false
  sendFailures = 0

  /** Returns true when this is the user's first online link. */
  add(link: ChatLink): boolean {
    let set = this.byUser.get(link.userId)
    const first = set === undefined
    if (set === undefined) this.byUser.set(link.userId, (set = new Set()))
    set.add(link)
    return first
  }

  /** Returns true when the user has no online link left. */
  remove(link: ChatLink): boolean {
    const set = this.byUser.get(link.userId)
    if (set === undefined || !set.delete(link)) return false
    if (set.size > 0) return false
    this.byUser.delete(link.userId)
    return true
  }

  isOnline(userId: number): boolean {
    return this.byUser.has(userId)
  }

  get onlineUsers(): number {
    return this.byUser.size
  }

  linksOf(userId: number): ReadonlySet<ChatLink> | undefined {
    return this.byUser.get(userId)
  }

  /** Send bytes to every online device of the user, optionally but one. */
  sendToUser(userId: number, bytes: Uint8Array, except?: ChatLink): void {
    const set = this.byUser.get(userId)
    if (set === undefined) return
    for (const link of set) if (link !== except) this.sendTo(link, bytes)
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
