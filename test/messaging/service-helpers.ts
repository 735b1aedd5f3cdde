/** MessagingService without a network: links that record what the server sends them, in-memory stores. */
import { decodeChatMessage, encodeChatMessage } from '../../src/protocol/chat-codec.js'
import type { ChatMessage } from '../../src/protocol/chat-types.js'
import { silentLogger } from '../../src/io/logger.js'
import { type ChatLink, MessagingService } from '../../src/server/messaging/service.js'
import type { MessagingLimits } from '../../src/server/messaging/limits.js'
import { MemoryAccountStore } from '../../src/store/memory-account-store.js'
import { MemoryMessageStore } from '../../src/store/memory-message-store.js'
import { GroupCommit } from '../../src/store/group-commit.js'

/** Let every queued handler, store call and group commit run: no I/O here, only microtasks and setImmediate. */
export const settle = async (): Promise<void> => {
  for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve))
}

export class FakeLink implements ChatLink {
  readonly got: ChatMessage[] = []
  readonly traceId: string
  /** What the device's session accepts; a larger message is refused, as the session would. */
  maxMessageBytes = 1 << 20
  constructor(
    readonly userId: number,
    readonly deviceId: number,
  ) {
    this.traceId = `u${userId}d${deviceId}`
  }
  send(bytes: Uint8Array): boolean {
    if (bytes.length > this.maxMessageBytes) return false
    this.got.push(decodeChatMessage(bytes))
    return true
  }
  of<T extends ChatMessage['type']>(type: T): Array<Extract<ChatMessage, { type: T }>> {
    return this.got.filter((m): m is Extract<ChatMessage, { type: T }> => m.type === type)
  }
}

export const setup = async (limits: Partial<MessagingLimits> = {}, options: { onStoreFailed?: (err: Error) => void } = {}) => {
  const accounts = new MemoryAccountStore()
  const store = new MemoryMessageStore({ accounts })
  let nowMs = 1_000_000
  const commit = new GroupCommit({ store, windowMs: 0, schedule: (fn) => setImmediate(fn) })
  const service = new MessagingService({ store, accounts, commit, log: silentLogger(), limits, nowMs: () => nowMs, onStoreFailed: options.onStoreFailed })
  const user = async (name: string, deviceId: number): Promise<FakeLink> => {
    const u = await accounts.createUser({ username: name, passwordHash: 'x', nowMs })
    return new FakeLink(u.userId, deviceId)
  }
  const send = (link: FakeLink, m: ChatMessage): void => service.handle(link, encodeChatMessage(m))
  return { accounts, store, commit, service, user, send, advance: (ms: number) => (nowMs += ms) }
}

export const id = (n: number): Uint8Array => new Uint8Array(16).fill(n)

