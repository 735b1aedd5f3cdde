/**
 * The server's settings, from (highest first) command-line flags, PIGEON_* environment
 * variables, a JSON config file (--config / PIGEON_CONFIG) and defaults. Every setting
 * has one name: `--data-dir`, env `PIGEON_DATA_DIR`, config key "data-dir". The admin CLI
 * resolves the data directory through resolveDataDir, so both open the same database.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'

export const HELP = `Usage: npm start -- [options]      (or: pigeon [options])

Every option can also come from the environment (PIGEON_ + the name in capitals,
dashes as underscores: --data-dir -> PIGEON_DATA_DIR) or from a JSON config file
whose keys are the option names ({"port": 7700, "retention-days": 30}).
Flags win over the environment, which wins over the file.

  --config FILE        JSON config file (env PIGEON_CONFIG)
  --host HOST          address to listen on (default :: when the host has IPv6,
                       which also accepts IPv4, else 0.0.0.0)
  --port PORT          UDP port, 0 picks a free one (default 7700)
  --data-dir DIR       database (pigeon.db, SQLite in WAL mode), token secret and
                       key (default ./data); add users with:
                       npm run admin -- add-user NAME
  --open-registration  let clients create their own accounts (REGISTER)
  --key-file F         the server's static key pair (created on first start;
                       default DATA_DIR/server-key.json); clients pin the public
                       key printed at start
  --insecure           no encryption (plaintext handshake, CRC-32C integrity only)
  --no-retry           skip stateless address validation (by default every new
                       client is first answered with a RETRY token)
  --retention-days N   delete inbox entries older than N days (default: keep)
  --retention-messages N
                       keep at most the newest N inbox entries per user
                       (default: keep all)
  --max-message-bytes N
                       largest message body in bytes of UTF-8 (default 4096)
  --send-rate N        messages per second per user, sustained (default 50;
                       bursts of 4x)
  --max-group-size N   members per group (default 500)
  --commit-window-ms N how long writes gather before one durable commit (group
                       commit; default 1)
  --key-log FILE       append session secrets to FILE (SSLKEYLOGFILE style) so
                       the inspector can decrypt captures; for debugging only
  --qlog FILE          write protocol trace events to FILE as JSON lines
  --log-level L        trace, debug, info, warn, error, fatal (default info)
  --log-format F       json or pretty (default: pretty on a terminal, else json)
  --help               show this help

Logs go to stdout; the first one with "msg":"listening" carries the address and
port. SIGINT / SIGTERM close every session, commit every pending write and exit 0.`

export interface Settings {
  host: string | undefined
  port: number
  dataDir: string
  keyFile: string
  openRegistration: boolean
  insecure: boolean
  retry: boolean
  retentionDays: number | undefined
  retentionMessages: number | undefined
  maxMessageBytes: number
  sendRatePerSecond: number
  maxGroupSize: number
  commitWindowMs: number
  keyLogFile: string | undefined
  qlog: string | undefined
  logLevel: LogLevel
  logPretty: boolean
}

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const
export type LogLevel = (typeof LOG_LEVELS)[number]
const isLogLevel = (s: string): s is LogLevel => (LOG_LEVELS as readonly string[]).includes(s)

const OPTIONS = {
  config: { type: 'string' },
  host: { type: 'string' },
  port: { type: 'string' },
  'data-dir': { type: 'string' },
  'key-file': { type: 'string' },
  'open-registration': { type: 'boolean' },
  insecure: { type: 'boolean' },
  'no-retry': { type: 'boolean' },
  'retention-days': { type: 'string' },
  'retention-messages': { type: 'string' },
  'max-message-bytes': { type: 'string' },
  'send-rate': { type: 'string' },
  'max-group-size': { type: 'string' },
  'commit-window-ms': { type: 'string' },
  'key-log': { type: 'string' },
  qlog: { type: 'string' },
  'log-level': { type: 'string' },
  'log-format': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const

type OptionName = Exclude<keyof typeof OPTIONS, 'help' | 'config'>

/** Where the data directory is when no flag, env variable or config file names one. */
export const DEFAULT_DATA_DIR = 'data'

export type SettingsErrorCode = 'CONFIG_FILE' | 'INVALID_SETTING'

export class SettingsError extends Error {
  readonly code: SettingsErrorCode
  constructor(code: SettingsErrorCode, message: string) {
    super(message)
    this.name = 'SettingsError'
    this.code = code
  }
}

const envName = (option: string): string => `PIGEON_${option.toUpperCase().replace(/-/g, '_')}`

const readConfigFile = (path: string): Record<string, unknown> => {
  let parsed: unknown
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'))
  } catch (err) {
    throw new SettingsError('CONFIG_FILE', `config file ${path}: ${(err as Error).message}`)
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new SettingsError('CONFIG_FILE', `config file ${path}: expected a JSON object`)
  for (const key of Object.keys(parsed)) {
    // Own properties only: `in` also finds "constructor", "toString"... on the prototype.
    if (!Object.hasOwn(OPTIONS, key) || key === 'help' || key === 'config') throw new SettingsError('CONFIG_FILE', `config file ${path}: unknown setting ${JSON.stringify(key)}`)
  }
  return parsed as Record<string, unknown>
}

/** Flag values as parseArgs gives them; only the ones a caller knows need be present. */
export type SettingFlags = { readonly config?: string } & { readonly [name in OptionName]?: string | boolean }

/**
 * The raw value of each setting by precedence: flags, then PIGEON_* env, then the config
 * file (--config / PIGEON_CONFIG, read once here). Shared by the server and the admin CLI
 * so that they cannot disagree on where a setting comes from.
 */
const settingSources = (flags: SettingFlags, env: NodeJS.ProcessEnv) => {
  const configPath = flags.config ?? env.PIGEON_CONFIG
  if (configPath !== undefined && configPath.trim() === '') throw new SettingsError('INVALID_SETTING', 'config: expected a file name, got an empty value')
  const file = configPath === undefined ? {} : readConfigFile(configPath)
  /** Strings from flags/env, anything from the file. */
  const raw = (name: OptionName): unknown => flags[name] ?? env[envName(name)] ?? file[name]
  const text = (name: OptionName): string | undefined => {
    const v = raw(name)
    if (v === undefined) return undefined
    if (typeof v !== 'string' && typeof v !== 'number') throw new SettingsError('INVALID_SETTING', `${name}: expected a string, got ${JSON.stringify(v)}`)
    // An empty PIGEON_PORT= is a mistake, not "unset": Number('') is 0 (a random port).
    if (typeof v === 'string' && v.trim() === '') throw new SettingsError('INVALID_SETTING', `${name}: expected a value, got ${JSON.stringify(v)}`)
    return String(v)
  }
  return { raw, text }
}

/**
 * The server's data directory for these flags (`data-dir`, `config`) and environment,
 * by the server's own rules; for the admin CLI, which must open the server's database.
 */
export const resolveDataDir = (options: { flags: SettingFlags; env: NodeJS.ProcessEnv }): string =>
  settingSources(options.flags, options.env).text('data-dir') ?? DEFAULT_DATA_DIR

export const parseSettings = (argv: string[], env: NodeJS.ProcessEnv, stdoutIsTty: boolean): Settings | 'help' => {
  const { values: flags } = parseArgs({ args: argv, options: OPTIONS, strict: true })
  if (flags.help === true) return 'help'
  const { raw, text } = settingSources(flags, env)
  const bool = (name: OptionName): boolean => {
    const v = raw(name)
    if (v === undefined || v === false || v === 'false' || v === '0' || v === '') return false
    if (v === true || v === 'true' || v === '1') return true
    throw new SettingsError('INVALID_SETTING', `${name}: expected true or false, got ${JSON.stringify(v)}`)
  }
  const int = (name: OptionName, min: number, max: number): number | undefined => {
    const t = text(name)
    if (t === undefined) return undefined
    // Decimal digits only: Number() also takes '0x1e14', '1e3' and ' 7 '.
    const n = /^[0-9]{1,16}$/.test(t) ? Number(t) : NaN
    if (!Number.isInteger(n) || n < min || n > max) throw new SettingsError('INVALID_SETTING', `${name}: expected an integer from ${min} to ${max}, got ${JSON.stringify(t)}`)
    return n
  }
  const dataDir = text('data-dir') ?? DEFAULT_DATA_DIR
  const logFormat = text('log-format')
  if (logFormat !== undefined && logFormat !== 'json' && logFormat !== 'pretty') throw new SettingsError('INVALID_SETTING', `log-format: expected json or pretty, got ${JSON.stringify(logFormat)}`)
  const logLevel = text('log-level') ?? 'info'
  if (!isLogLevel(logLevel)) throw new SettingsError('INVALID_SETTING', `log-level: expected one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(logLevel)}`)
  return {
    host: text('host'),
    port: int('port', 0, 65_535) ?? 7700,
    dataDir,
    keyFile: text('key-file') ?? join(dataDir, 'server-key.json'),
    openRegistration: bool('open-registration'),
    insecure: bool('insecure'),
    retry: !bool('no-retry'),
    retentionDays: int('retention-days', 1, 100_000),
    retentionMessages: int('retention-messages', 1, 1_000_000_000),
    maxMessageBytes: int('max-message-bytes', 1, 60_000) ?? 4096,
    sendRatePerSecond: int('send-rate', 1, 1_000_000) ?? 50,
    maxGroupSize: int('max-group-size', 2, 100_000) ?? 500,
    commitWindowMs: int('commit-window-ms', 0, 1000) ?? 1,
    keyLogFile: text('key-log'),
    qlog: text('qlog'),
    logLevel,
    logPretty: logFormat === undefined ? stdoutIsTty : logFormat === 'pretty',
  }
}
