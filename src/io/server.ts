import type { EndpointEvent } from '../core/endpoint.js'
import type { Session } from '../core/session/session.js'
import type { LoginService } from '../server/accounts/login.js'
import { SessionAuthenticator } from './session-auth.js'
import type { ServerSecurity } from '../core/session/secure-handshake.js'
import { ErrorCode } from '../core/errors.js'
import type { SessionConfig } from '../core/session/config.js'
import type { TraceSink } from '../core/trace.js'
import type { UdpAddress } from './address.js'
import { logSessionEvent } from './session-log.js'
import { type Logger, silentLogger } from './logger.js'
import { UdpEndpoint } from './udp-endpoint.js'

export interface EchoServerOptions {
  host: string
  /** 0 picks a free port. */
  port: number
  logger?: Logger
  trace?: TraceSink
  sessionConfig?: Partial<SessionConfig>
  maxSessions?: number
  /** Encrypt every session with this static key pair. */
  security?: ServerSecurity
  /** Send every new client a RETRY first (stateless address validation). */
  retry?: boolean
  keyLogFile?: string
  /**
   * Require login: stream 0 carries LOGIN / RESUME / LOGOUT (protocol-spec/login.md);
   * nothing else is echoed before a session is authenticated.
   */
  accounts?: LoginService
}

export interface EchoServer {
  address: string
  port: number
  family: 'IPv4' | 'IPv6'
  endpoint: UdpEndpoint
  /** Close every live session of a user (after LoginService.kick revoked its tokens); returns how many. */
  kickUser(userId: number): number
  /** Close every session with a CLOSE frame, then the socket. */
  close(): Promise<void>
}

/**
 * The minimal server of this stage: every message is sent back on the stream it came
 * from. Later issues replace the echo with the messaging service.
 */
export const startEchoServer = async (opts: EchoServerOptions): Promise<EchoServer> => {
  const log = opts.logger ?? silentLogger()
  const endpoint = await UdpEndpoint.open({
    host: opts.host,
    port: opts.port,
    server: true,
    logger: log,
    trace: opts.trace,
    sessionConfig: opts.sessionConfig,
    maxSessions: opts.maxSessions,
    security: opts.security,
    retry: opts.retry,
    keyLogFile: opts.keyLogFile,
  })
  let echoFailures = 0
  const echo = (session: Session, streamId: number, data: Uint8Array): void => {
    try {
      endpoint.send(session, streamId, data)
    } catch (err) {
      // Send buffer full or session closing: the echo is lost, the server goes on.
      echoFailures++
      log.debug({ err, session: session.traceId, echoFailures }, 'echo not queued')
    }
  }
  const auth = opts.accounts === undefined ? undefined : new SessionAuthenticator({ service: opts.accounts, io: endpoint, log })
  endpoint.on('event', (e: EndpointEvent<UdpAddress>) => {
    if (e.event.type === 'message') {
      if (auth === undefined) echo(e.session, e.event.streamId, e.event.data)
      else auth.onMessage(e.session, e.address.address, e.event.streamId, e.event.data, echo)
    } else if (e.event.type === 'closed') auth?.forget(e.session)
    logSessionEvent(log, e)
  })
  const local = endpoint.localAddress
  return {
    address: local.address,
    port: local.port,
    family: local.family,
    endpoint,
    kickUser: (userId) => auth?.kick(userId) ?? 0,
    close: () => endpoint.close({ code: ErrorCode.NO_ERROR, reason: 'server shutting down' }),
  }
}
