/**
 * The chat server over UDP: the UDP endpoint, login on stream 0 (SessionAuthenticator),
 * the messaging service for logged-in sessions, the group commit in front of the store
 * and the retention job. Messages on streams other than 0 from a logged-in session are
 * echoed back (a diagnostic: `npm run ping`).
 */
import type { Session } from '../core/session/session.js'
import type { ServerSecurity } from '../core/session/secure-handshake.js'
import type { SessionConfig } from '../core/session/config.js'
import type { TraceSink } from '../core/trace.js'
import { ErrorCode } from '../core/errors.js'
import type { EndpointEvent } from '../core/endpoint.js'
import { isChatMessage } from '../protocol/chat-codec.js'
import type { UdpAddress } from '../io/address.js'
import { logSessionEvent } from '../io/session-log.js'
import { type Logger, silentLogger } from '../io/logger.js'
import { CONTROL_STREAM, SessionAuthenticator } from '../io/session-auth.js'
import { sendableMessageBytes } from '../core/session/sizing.js'
import type { SessionAuth } from './accounts/login-handler.js'
import { UdpEndpoint } from '../io/udp-endpoint.js'
import type { AccountStore } from '../store/account-store.js'
import { GroupCommit } from '../store/group-commit.js'
import type { MessageStore, RetentionPolicy } from '../store/message-store.js'
import type { LoginService } from './accounts/login.js'
import type { MessagingLimits } from './messaging/limits.js'
import { type ChatLink, MessagingService } from './messaging/service.js'

export interface ChatServerOptions {
  host: string
  /** 0 picks a free port. */
  port: number
  login: LoginService
  accounts: AccountStore
  messages: MessageStore
  logger?: Logger
  trace?: TraceSink
  sessionConfig?: Partial<SessionConfig>
  maxSessions?: number
  security?: ServerSecurity
  retry?: boolean
  keyLogFile?: string
  /** New handshakes per client IP (UdpEndpoint's default: 20/s, bursts of 40). */
  handshakeLimit?: { ratePerSecond: number; burst: number; maxAddresses: number }
  limits?: Partial<MessagingLimits>
  /** How long the group commit gathers writes before one durable commit. Default 1 ms. */
  commitWindowMs?: number
  /** Inbox retention, applied every retentionIntervalMs (default 60 s). */
  retention?: { days?: number; messagesPerUser?: number }
  retentionIntervalMs?: number
  /** The message store failed for good (see MessagingServiceOptions.onStoreFailed). */
  onStoreFailed?: (err: Error) => void
}

export interface ChatServer {
  address: string
  port: number
  family: 'IPv4' | 'IPv6'
  endpoint: UdpEndpoint
  messaging: MessagingService
  commit: GroupCommit
  /** Close every live session of a user (after LoginService.kick revoked its tokens). */
  kickUser(userId: number): number
  /** Close the live sessions whose token `isValid` rejects (see SessionAuthenticator.revalidate). */
  revalidateSessions(isValid: (auth: SessionAuth) => Promise<boolean>): Promise<number>
  /** Apply the retention policy now; returns the entries deleted. */
  pruneNow(): Promise<number>
  /** Close every session, then commit what is pending. The stores stay open (the caller owns them). */
  close(): Promise<void>
}

const DAY_MS = 86_400_000

export const startChatServer = async (o: ChatServerOptions): Promise<ChatServer> => {
  const log = o.logger ?? silentLogger()
  const endpoint = await UdpEndpoint.open({
    host: o.host,
    port: o.port,
    server: true,
    logger: log,
    trace: o.trace,
    sessionConfig: o.sessionConfig,
    maxSessions: o.maxSessions,
    security: o.security,
    retry: o.retry,
    keyLogFile: o.keyLogFile,
    handshakeLimit: o.handshakeLimit,
  })
  const commit = new GroupCommit({ store: o.messages, windowMs: o.commitWindowMs })
  const messaging = new MessagingService({ store: o.messages, accounts: o.accounts, commit, log: log.child({ component: 'messaging' }), limits: o.limits, onStoreFailed: o.onStoreFailed })
  const links = new Map<Session, ChatLink>()
  const linkFor = (session: Session, userId: number, deviceId: number): ChatLink => new SessionLink(endpoint, session, userId, deviceId)
  const auth = new SessionAuthenticator({
    service: o.login,
    io: endpoint,
    log,
    onAuthenticated: (session, a) => {
      const link = linkFor(session, a.userId, a.deviceId)
      links.set(session, link)
      messaging.attach(link)
    },
    onDeauthenticated: (session) => {
      const link = links.get(session)
      if (link === undefined) return
      links.delete(session)
      messaging.detach(link)
    },
  })
  let echoFailures = 0
  const deliver = (session: Session, streamId: number, data: Uint8Array): void => {
    const link = links.get(session)
    if (streamId === CONTROL_STREAM) {
      if (link !== undefined && isChatMessage(data)) messaging.handle(link, data)
      else {
        messaging.stats.malformed++
        log.debug({ session: session.traceId, type: data[0] }, 'unknown message type on stream 0 dropped')
      }
      return
    }
    try {
      endpoint.send(session, streamId, data)
    } catch {
      echoFailures++
    }
  }
  endpoint.on('event', (e: EndpointEvent<UdpAddress>) => {
    if (e.event.type === 'message') auth.onMessage(e.session, e.address.address, e.event.streamId, e.event.data, deliver)
    else if (e.event.type === 'closed') auth.forget(e.session)
    logSessionEvent(log, e)
  })
  const policy = (nowMs: number): RetentionPolicy => ({
    nowMs,
    // Days reaching back before 1970 keep everything by age (a negative cutoff is refused by the store).
    olderThanMs: o.retention?.days === undefined ? undefined : Math.max(0, nowMs - o.retention.days * DAY_MS),
    keepLastPerUser: o.retention?.messagesPerUser,
  })
  // One run at a time: a tick while a long run is under way joins it instead of rescanning.
  let pruning: Promise<number> | undefined
  let closing = false
  const pruneNow = (): Promise<number> => {
    pruning ??= o.messages
      .pruneInboxes(policy(Date.now()))
      .then((deleted) => {
        if (deleted > 0) log.info({ deleted }, 'inbox retention applied')
        return deleted
      })
      .finally(() => (pruning = undefined))
    return pruning
  }
  const onPruneError = (err: unknown): void => {
    // Shutdown closes the store between two steps; every step is whole, the next run goes on.
    if (closing) log.debug({ err }, 'inbox retention stopped by shutdown')
    else log.error({ err }, 'inbox retention failed')
  }
  const retentionTimer =
    o.retention?.days === undefined && o.retention?.messagesPerUser === undefined
      ? undefined
      : setInterval(() => pruneNow().catch(onPruneError), o.retentionIntervalMs ?? 60_000).unref()
  const local = endpoint.localAddress
  return {
    address: local.address,
    port: local.port,
    family: local.family,
    endpoint,
    messaging,
    commit,
    kickUser: (userId) => auth.kick(userId),
    revalidateSessions: (isValid) => auth.revalidate(isValid),
    pruneNow,
    close: async () => {
      closing = true
      if (retentionTimer !== undefined) clearInterval(retentionTimer)
      await endpoint.close({ code: ErrorCode.NO_ERROR, reason: 'server shutting down' })
      await commit.close()
      if (echoFailures > 0) log.info({ echoFailures }, 'echoes not queued')
    },
  }
}

/** A logged-in session as the messaging service sees it (a class: 100,000 of them share one `send`). */
class SessionLink implements ChatLink {
  constructor(
    private readonly endpoint: UdpEndpoint,
    private readonly session: Session,
    readonly userId: number,
    readonly deviceId: number,
  ) {}

  get traceId(): string {
    return this.session.traceId
  }

  /** Session.send refuses anything larger (the device's transport parameter, or ours). */
  get maxMessageBytes(): number {
    return sendableMessageBytes(this.session)
  }

  send(bytes: Uint8Array): boolean {
    try {
      this.endpoint.send(this.session, CONTROL_STREAM, bytes)
      return true
    } catch {
      return false // closing, or the send buffer is full: the client re-syncs
    }
  }
}
