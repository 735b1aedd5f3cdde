/**
 * `npm start`: the pigeon server. At this stage it echoes every message back on the
 * stream it came from; later issues make it the messaging server.
 */
import { parseArgs } from 'node:util'
import { formatAddress } from '../io/address.js'
import { createLogger, type Logger } from '../io/logger.js'
import { type QlogFile, openQlogFile } from '../io/qlog.js'
import { join } from 'node:path'
import type { ServerSecurity } from '../core/session/secure-handshake.js'
import { LoginService } from './accounts/login.js'
import { SessionTokens, loadOrCreateTokenSecret } from './accounts/tokens.js'
import { SqliteAccountStore } from '../store/sqlite-account-store.js'
import { loadOrCreateServerKey, toHex } from '../io/server-key.js'
import { type EchoServer, startEchoServer } from '../io/server.js'

const HELP = `Usage: npm start -- [options]

  --host HOST     address to listen on (env PIGEON_HOST; default :: when the
                  host has IPv6, which also accepts IPv4, else 0.0.0.0)
  --port PORT     UDP port, 0 picks a free one (env PIGEON_PORT; default 7700)
  --data-dir DIR  accounts database, token secret and key (env PIGEON_DATA_DIR;
                  default ./data); add users with: npm run admin -- add-user NAME
  --open-registration
                  let clients create their own accounts (REGISTER)
  --key-file F    the server's static key pair (created on first start;
                  default DATA_DIR/server-key.json, env PIGEON_KEY_FILE); clients
                  pin the public key printed at start (--server-key for ping)
  --insecure      no encryption (plaintext handshake, CRC-32C integrity only)
  --no-retry      skip stateless address validation (by default every new client
                  is first answered with a RETRY token, before the server keeps
                  any state for it)
  --key-log FILE  append session secrets to FILE (SSLKEYLOGFILE style) so the
                  inspector can decrypt captures; for debugging only
  --qlog FILE     write protocol trace events to FILE as JSON lines
  --log-level L   pino level: trace, debug, info, warn, error (default info)
  --help          show this help

Logs are JSON lines on stdout; the first one with "msg":"listening" carries the
address and port. SIGINT / SIGTERM close every session and exit 0.`

const DEFAULT_PORT = 7700
const DEFAULT_DATA_DIR = 'data'
const KEY_FILE_NAME = 'server-key.json'

interface Settings {
  host: string | undefined
  port: number
  qlog: string | undefined
  logLevel: string
  keyFile: string
  insecure: boolean
  dataDir: string
  openRegistration: boolean
  retry: boolean
  keyLogFile: string | undefined
}

const parseSettings = (argv: string[], env: NodeJS.ProcessEnv): Settings | 'help' => {
  const { values } = parseArgs({
    args: argv,
    options: {
      host: { type: 'string' },
      port: { type: 'string' },
      qlog: { type: 'string' },
      'log-level': { type: 'string' },
      'key-file': { type: 'string' },
      insecure: { type: 'boolean' },
      'data-dir': { type: 'string' },
      'open-registration': { type: 'boolean' },
      'no-retry': { type: 'boolean' },
      'key-log': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  })
  if (values.help === true) return 'help'
  const dataDir = values['data-dir'] ?? env.PIGEON_DATA_DIR ?? DEFAULT_DATA_DIR
  const portText = values.port ?? env.PIGEON_PORT ?? String(DEFAULT_PORT)
  const port = Number(portText)
  if (!Number.isInteger(port) || port < 0 || port > 65_535) throw new Error(`invalid port ${JSON.stringify(portText)}`)
  return {
    host: values.host ?? env.PIGEON_HOST,
    port,
    qlog: values.qlog,
    logLevel: values['log-level'] ?? 'info',
    keyFile: values['key-file'] ?? env.PIGEON_KEY_FILE ?? join(dataDir, KEY_FILE_NAME),
    insecure: values.insecure === true,
    dataDir,
    openRegistration: values['open-registration'] === true,
    retry: values['no-retry'] !== true,
    keyLogFile: values['key-log'] ?? env.PIGEON_KEY_LOG,
  }
}

/** The explicit host, or `::` (dual stack) falling back to 0.0.0.0 on hosts without IPv6. */
const listen = async (
  settings: Settings,
  log: Logger,
  qlog: QlogFile | undefined,
  security: ServerSecurity | undefined,
  accounts: LoginService,
): Promise<EchoServer> => {
  const start = (host: string): Promise<EchoServer> => startEchoServer({
      host,
      port: settings.port,
      logger: log,
      trace: qlog?.sink,
      security,
      accounts,
      retry: settings.retry,
      keyLogFile: settings.keyLogFile,
    })
  if (settings.host !== undefined) return start(settings.host)
  try {
    return await start('::')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code !== 'EAFNOSUPPORT' && code !== 'EADDRNOTAVAIL' && code !== 'EINVAL') throw err
    log.info({ code }, 'no IPv6 here, listening on IPv4 only')
    return start('0.0.0.0')
  }
}

const main = async (): Promise<void> => {
  let settings
  try {
    settings = parseSettings(process.argv.slice(2), process.env)
  } catch (err) {
    process.stderr.write(`pigeon: ${(err as Error).message}\n\n${HELP}\n`)
    process.exit(2)
  }
  if (settings === 'help') {
    process.stdout.write(HELP + '\n')
    return
  }
  const log = createLogger({ name: 'pigeon', level: settings.logLevel })
  const qlog = settings.qlog === undefined ? undefined : await openQlogFile(settings.qlog)
  let security: ServerSecurity | undefined
  if (!settings.insecure) {
    const { keyPair, created } = loadOrCreateServerKey(settings.keyFile)
    if (created) log.info({ keyFile: settings.keyFile }, 'created the server key pair')
    security = { staticKeyPair: keyPair }
  }
  const store = new SqliteAccountStore({ dataDir: settings.dataDir })
  const tokens = new SessionTokens({ store, secret: loadOrCreateTokenSecret(settings.dataDir) })
  let server: EchoServer | undefined
  const accounts = new LoginService({ store, tokens, openRegistration: settings.openRegistration, onKick: (e) => server?.kickUser(e.userId) })
  server = await listen(settings, log, qlog, security, accounts)
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
    await server!.close()
    await store.close()
    try {
      await qlog?.close()
    } catch (err) {
      log.error({ err }, 'qlog file could not be written completely')
    }
    log.info({ endpoint: server.endpoint.core.stats, io: server.endpoint.stats }, 'stopped')
    process.exit(0)
  }
  process.on('SIGINT', (s) => void stop(s))
  process.on('SIGTERM', (s) => void stop(s))
}

main().catch((err: unknown) => {
  process.stderr.write(`pigeon: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exit(1)
})
