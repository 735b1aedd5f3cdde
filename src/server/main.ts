/**
 * `npm start`: the pigeon chat server. Settings: src/server/settings.ts (`--help`).
 */
import { appendFileSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { formatAddress } from '../io/address.js'
import { createLogger, type Logger } from '../io/logger.js'
import { type QlogFile, openQlogFile } from '../io/qlog.js'
import type { ServerSecurity } from '../core/session/secure-handshake.js'
import { LoginService } from './accounts/login.js'
import { SessionTokens, TokenError, loadOrCreateTokenSecret } from './accounts/tokens.js'
import type { SessionAuth } from './accounts/login-handler.js'
import { type SqliteStores, openSqliteStores } from '../store/sqlite-message-store.js'
import { DATABASE_FILE } from '../store/sqlite-account-store.js'
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

/** How often the server looks whether another process (the admin CLI) wrote the database. */
const REVOCATION_CHECK_INTERVAL_MS = 1_000
/** Expired tokens end their sessions this often at the latest. */
const EXPIRY_CHECK_INTERVAL_MS = 3_600_000

/**
 * Tokens revoked by another process (the admin CLI's kick and passwd write the database;
 * only this process knows the live sessions) close the sessions that use them: when
 * PRAGMA data_version shows another connection committed, every live session's token is
 * verified again (a store lookup each, spread over event-loop turns); hourly too, so
 * that sessions of expired tokens end, and the expired tokens' rows are deleted.
 */
const watchRevocations = (o: { server: ChatServer; stores: SqliteStores; tokens: SessionTokens; log: Logger }): void => {
  const dataVersion = (): number => o.stores.accounts.db.pragma('data_version', { simple: true }) as number
  let seenVersion = dataVersion()
  let lastHourlyMs = Date.now()
  let running = false
  const isValid = async (auth: SessionAuth): Promise<boolean> => {
    try {
      await o.tokens.verify({ token: auth.token, nowMs: Date.now() })
      return true
    } catch (err) {
      if (err instanceof TokenError) return false
      throw err
    }
  }
  setInterval(() => {
    if (running) return
    let version: number
    try {
      version = dataVersion()
    } catch {
      return // the database is closing
    }
    const hourly = Date.now() - lastHourlyMs >= EXPIRY_CHECK_INTERVAL_MS
    if (version === seenVersion && !hourly) return
    seenVersion = version
    if (hourly) lastHourlyMs = Date.now()
    running = true
    o.server
      .revalidateSessions(isValid)
      .then(async (closed) => {
        if (closed > 0) o.log.info({ closed }, 'sessions of revoked or expired tokens closed')
        // Expired tokens are refused by their own expiry time: their rows only take room.
        if (hourly) await o.stores.accounts.deleteExpiredTokens({ beforeMs: Date.now() })
      })
      .catch((err: unknown) => o.log.error({ err }, 'checking the live sessions\' tokens failed'))
      .finally(() => {
        running = false
      })
  }, REVOCATION_CHECK_INTERVAL_MS).unref()
}

/** pigeon.db, with the file named in the error when it cannot be opened (corrupt, read-only...). */
const openStores = (dataDir: string): SqliteStores => {
  try {
    return openSqliteStores({ dataDir })
  } catch (err) {
    throw new Error(`cannot open the database ${join(dataDir, DATABASE_FILE)}: ${(err as Error).message}`, { cause: err })
  }
}

/** A --key-log file that cannot be written is a setup error now, not a failed handshake later. */
const checkKeyLogFile = (path: string | undefined): void => {
  if (path === undefined) return
  try {
    appendFileSync(path, '', { mode: 0o600 })
  } catch (err) {
    throw new Error(`key log file ${path}: ${(err as Error).message}`, { cause: err })
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
  // Owner-only before anything is put in it: it holds password hashes, messages, keys.
  mkdirSync(settings.dataDir, { recursive: true, mode: 0o700 })
  checkKeyLogFile(settings.keyLogFile)
  let security: ServerSecurity | undefined
  if (!settings.insecure) {
    const { keyPair, created } = loadOrCreateServerKey(settings.keyFile)
    if (created) log.info({ keyFile: settings.keyFile }, 'created the server key pair')
    security = { staticKeyPair: keyPair }
  }
  const stores = openStores(settings.dataDir)
  const tokens = new SessionTokens({ store: stores.accounts, secret: loadOrCreateTokenSecret(settings.dataDir) })
  let server: ChatServer | undefined
  let stopping = false
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
    // A commit that cannot be confirmed durable (the WAL sync failed): stop, so that the
    // supervisor restarts us and SQLite's recovery decides what is on disk; clients
    // reconnect and send their outboxes again (idempotent).
    onStoreFailed: (err) => {
      log.fatal({ err }, 'the message store failed: stopping (restart the server)')
      void stop('store failed', 1)
    },
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

  // The exit code of the shutdown under way: a failure found while stopping (the store's
  // last flush failing during a SIGTERM) still makes it 1, for the supervisor.
  let exitCode = 0
  const stop = async (reason: string, requestedExitCode: number): Promise<void> => {
    exitCode = Math.max(exitCode, requestedExitCode)
    if (stopping) {
      if (reason === 'SIGINT' || reason === 'SIGTERM') {
        log.warn({ signal: reason }, 'second signal: exiting without waiting')
        process.exit(1)
      }
      return
    }
    stopping = true
    log.info({ reason, sessions: server?.endpoint.core.sessionCount }, 'shutting down')
    try {
      await server?.close()
    } catch (err) {
      log.error({ err }, 'shutdown incomplete: the server did not close cleanly')
      exitCode = 1
    }
    try {
      await stores.close() // also after a failed server close: what was committed is kept
    } catch (err) {
      log.error({ err }, 'shutdown incomplete: the stores did not close cleanly')
      exitCode = 1
    }
    if (stores.messages.failure !== undefined) exitCode = 1
    try {
      await qlog?.close()
    } catch (err) {
      log.error({ err }, 'qlog file could not be written completely')
    }
    log.info({ endpoint: server?.endpoint.core.stats, io: server?.endpoint.stats, messaging: server?.messaging.stats, commit: server?.commit.stats }, 'stopped')
    process.exit(exitCode)
  }
  watchRevocations({ server, stores, tokens, log })
  process.on('SIGINT', (s) => void stop(s, 0))
  process.on('SIGTERM', (s) => void stop(s, 0))
}

main().catch((err: unknown) => {
  process.stderr.write(`pigeon: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exit(1)
})
