/**
 * `npm start`: the pigeon chat server. Settings: src/server/settings.ts (`--help`).
 */
import { formatAddress } from '../io/address.js'
import { createLogger, type Logger } from '../io/logger.js'
import { type QlogFile, openQlogFile } from '../io/qlog.js'
import type { ServerSecurity } from '../core/session/secure-handshake.js'
import { LoginService } from './accounts/login.js'
import { SessionTokens, loadOrCreateTokenSecret } from './accounts/tokens.js'
import { openSqliteStores } from '../store/sqlite-message-store.js'
import { loadOrCreateServerKey, toHex } from '../io/server-key.js'
import { type ChatServer, type ChatServerOptions, startChatServer } from './chat-server.js'
import { HELP, type Settings, parseSettings } from './settings.js'

/** The explicit host, or `::` (dual stack) falling back to 0.0.0.0 on hosts without IPv6. */
const listen = async (settings: Settings, log: Logger, options: Omit<ChatServerOptions, 'host'>): Promise<ChatServer> => {
  if (settings.host !== undefined) return startChatServer({ ...options, host: settings.host })
  try {
    return await startChatServer({ ...options, host: '::' })
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code !== 'EAFNOSUPPORT' && code !== 'EADDRNOTAVAIL' && code !== 'EINVAL') throw err
    log.info({ code }, 'no IPv6 here, listening on IPv4 only')
    return startChatServer({ ...options, host: '0.0.0.0' })
  }
}

const main = async (): Promise<void> => {
  let settings
  try {
    settings = parseSettings(process.argv.slice(2), process.env, process.stdout.isTTY === true)
  } catch (err) {
    process.stderr.write(`pigeon: ${(err as Error).message}\n\n${HELP}\n`)
    process.exit(2)
  }
  if (settings === 'help') {
    process.stdout.write(HELP + '\n')
    return
  }
  const log = createLogger({ name: 'pigeon', level: settings.logLevel, pretty: settings.logPretty })
  const qlog: QlogFile | undefined = settings.qlog === undefined ? undefined : await openQlogFile(settings.qlog)
  let security: ServerSecurity | undefined
  if (!settings.insecure) {
    const { keyPair, created } = loadOrCreateServerKey(settings.keyFile)
    if (created) log.info({ keyFile: settings.keyFile }, 'created the server key pair')
    security = { staticKeyPair: keyPair }
  }
  const stores = openSqliteStores({ dataDir: settings.dataDir })
  const tokens = new SessionTokens({ store: stores.accounts, secret: loadOrCreateTokenSecret(settings.dataDir) })
  let server: ChatServer | undefined
  const login = new LoginService({ store: stores.accounts, tokens, openRegistration: settings.openRegistration, onKick: (e) => server?.kickUser(e.userId) })
  server = await listen(settings, log, {
    port: settings.port,
    login,
    accounts: stores.accounts,
    messages: stores.messages,
    logger: log,
    trace: qlog?.sink,
    security,
    retry: settings.retry,
    keyLogFile: settings.keyLogFile,
    limits: { maxBodyBytes: settings.maxMessageBytes, sendRatePerSecond: settings.sendRatePerSecond, sendBurst: 4 * settings.sendRatePerSecond, maxGroupSize: settings.maxGroupSize },
    commitWindowMs: settings.commitWindowMs,
    retention: { days: settings.retentionDays, messagesPerUser: settings.retentionMessages },
  })
  // Whatever the level, say where we listen: scripts and tests wait for this line.
  const announce = log.isLevelEnabled('info') ? log : log.child({}, { level: 'info' })
  announce.info(
    {
      udp: formatAddress(server),
      address: server.address,
      port: server.port,
      family: server.family,
      qlog: settings.qlog,
      encrypted: security !== undefined,
      dataDir: settings.dataDir,
      openRegistration: settings.openRegistration,
      retry: settings.retry,
      keyLog: settings.keyLogFile,
      publicKey: security === undefined ? undefined : toHex(security.staticKeyPair.publicKey),
    },
    'listening',
  )

  let stopping = false
  const stop = async (signal: NodeJS.Signals): Promise<void> => {
    if (stopping) {
      log.warn({ signal }, 'second signal: exiting without waiting')
      process.exit(1)
    }
    stopping = true
    log.info({ signal, sessions: server.endpoint.core.sessionCount }, 'shutting down')
    await server.close()
    await stores.close()
    try {
      await qlog?.close()
    } catch (err) {
      log.error({ err }, 'qlog file could not be written completely')
    }
    log.info({ endpoint: server.endpoint.core.stats, io: server.endpoint.stats, messaging: server.messaging.stats, commit: server.commit.stats }, 'stopped')
    process.exit(0)
  }
  process.on('SIGINT', (s) => void stop(s))
  process.on('SIGTERM', (s) => void stop(s))
}

main().catch((err: unknown) => {
  process.stderr.write(`pigeon: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exit(1)
})
