/**
 * `npm run admin -- <command>`: manage accounts in the server's data directory. Works
 * next to a running server (SQLite WAL, busy timeout); a kick or password change revokes
 * tokens in the store, which the server sees on the next token check. The data directory
 * is resolved by the server's own rules (settings.ts), so the same --config or PIGEON_*
 * environment that started the server finds its database here.
 */
import { readFileSync } from 'node:fs'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { StoreError, isValidUsername } from '../store/account-store.js'
import { SqliteAccountStore } from '../store/sqlite-account-store.js'
import { SQLITE_MIGRATIONS } from '../store/sqlite-message-schema.js'
import { InterruptedError, readHiddenLine } from '../io/hidden-input.js'
import { hashPassword } from './accounts/password.js'
import { DEFAULT_DATA_DIR, SettingsError, resolveDataDir } from './settings.js'

export const EXIT_OK = 0
/** The command was understood but failed (user exists, unknown user, bad password). */
export const EXIT_FAILED = 1
/** Bad command line, or settings the server would refuse too (config file, empty env value). */
export const EXIT_USAGE = 2

export const MIN_ADMIN_PASSWORD_LENGTH = 8

const USAGE = `usage: npm run admin -- [--config FILE] [--data-dir DIR] <command> [options]

commands:
  add-user NAME     create a user; password from --password-file, $PIGEON_ADMIN_PASSWORD,
                    a prompt without echo (terminal), or the first line of stdin
  passwd NAME       set a new password (same sources); revokes the user's session tokens
  list-users        one line per user: id, name, devices, active sessions, creation time
  kick NAME         revoke every session token of the user (logs out all devices)

options:
  --config FILE         the server's JSON config file (env PIGEON_CONFIG); only its
                        "data-dir" is used
  --data-dir DIR        data directory holding pigeon.db (env PIGEON_DATA_DIR)
  --password-file FILE  read the password from the first line of FILE
  --json                list-users prints JSON
  -h, --help            this text

The data directory is found as the server finds it: --data-dir, then $PIGEON_DATA_DIR,
then "data-dir" in the config file, then ./${DEFAULT_DATA_DIR}. Give the admin command the
server's --config / --data-dir or environment to reach the server's database.

exit codes: 0 ok, 1 the command failed, 2 bad command line or settings
`

export interface AdminIo {
  stdin: NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?: (mode: boolean) => unknown }
  stdout: { write(s: string): unknown }
  stderr: { write(s: string): unknown }
  env: Record<string, string | undefined>
  nowMs: () => number
}

class AdminError extends Error {
  constructor(message: string, readonly exitCode: number) {
    super(message)
  }
}

/** Runs one admin command; returns the process exit code. */
export const runAdmin = async (argv: string[], io: AdminIo): Promise<number> => {
  let parsed
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        'data-dir': { type: 'string' },
        config: { type: 'string' },
        'password-file': { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    })
  } catch (err) {
    io.stderr.write(`admin: ${(err as Error).message}\n\n${USAGE}`)
    return EXIT_USAGE
  }
  const { values, positionals } = parsed
  if (values.help) {
    io.stdout.write(USAGE)
    return EXIT_OK
  }
  const [command, ...args] = positionals
  const wanted: Record<string, number> = { 'add-user': 1, passwd: 1, 'list-users': 0, kick: 1 }
  if (command === undefined || !(command in wanted) || args.length !== wanted[command]) {
    io.stderr.write(command === undefined || command in wanted ? `admin: wrong arguments\n\n${USAGE}` : `admin: unknown command ${command}\n\n${USAGE}`)
    return EXIT_USAGE
  }
  let dataDir: string
  try {
    dataDir = resolveDataDir({ flags: { 'data-dir': values['data-dir'], config: values.config }, env: io.env })
  } catch (err) {
    // A bad config file or an empty PIGEON_DATA_DIR= would also stop the server: a setup error.
    if (!(err instanceof SettingsError)) throw err
    io.stderr.write(`admin: ${err.message} (${err.code})\n`)
    return EXIT_USAGE
  }
  let store: SqliteAccountStore | undefined
  try {
    // The full schema: the server's messaging tables live in the same file.
    store = new SqliteAccountStore({ dataDir, migrations: SQLITE_MIGRATIONS })
    const name = args[0]
    switch (command) {
      case 'add-user': {
        if (!isValidUsername(name)) throw new AdminError(`invalid username ${JSON.stringify(name)}: use 1-32 of a-z 0-9 _ . - starting with a letter or digit`, EXIT_FAILED)
        if (await store.getUserByName(name)) throw new AdminError(`user ${name} already exists`, EXIT_FAILED)
        const password = await readPassword(values['password-file'], io)
        const user = await store.createUser({ username: name, passwordHash: await hashPassword(password), nowMs: io.nowMs() })
        io.stdout.write(`added user ${user.username} (id ${user.userId})\n`)
        break
      }
      case 'passwd': {
        const user = await requireUser(store, name)
        const password = await readPassword(values['password-file'], io)
        // New hash first, then the revocation: LoginService relies on this order (a login
        // that still sees the old hash after storing its token is covered by the revocation).
        await store.setPassword({ userId: user.userId, passwordHash: await hashPassword(password) })
        const revoked = await store.revokeAllForUser({ userId: user.userId, nowMs: io.nowMs() })
        io.stdout.write(`password of ${name} changed; ${revoked} session(s) revoked\n`)
        break
      }
      case 'kick': {
        const user = await requireUser(store, name)
        const revoked = await store.revokeAllForUser({ userId: user.userId, nowMs: io.nowMs() })
        io.stdout.write(`kicked ${name}: ${revoked} session(s) revoked\n`)
        break
      }
      case 'list-users':
        await listUsers(store, io, values.json === true)
        break
    }
    return EXIT_OK
  } catch (err) {
    if (err instanceof AdminError) {
      io.stderr.write(`admin: ${err.message}\n`)
      return err.exitCode
    }
    if (err instanceof StoreError) {
      io.stderr.write(`admin: ${err.message} (${err.code})\n`)
      return EXIT_FAILED
    }
    io.stderr.write(`admin: ${(err as Error).message ?? String(err)}\n`)
    return EXIT_FAILED
  } finally {
    await store?.close()
  }
}

const requireUser = async (store: SqliteAccountStore, name: string) => {
  const user = await store.getUserByName(name)
  if (!user) throw new AdminError(`no user ${name}`, EXIT_FAILED)
  return user
}

const listUsers = async (store: SqliteAccountStore, io: AdminIo, json: boolean): Promise<void> => {
  const nowMs = io.nowMs()
  const rows = []
  for (const u of await store.listUsers()) {
    const devices = (await store.listDevices(u.userId)).length
    const sessions = (await store.listActiveTokens({ userId: u.userId, nowMs })).length
    rows.push({ userId: u.userId, username: u.username, devices, sessions, createdAt: new Date(u.createdAtMs).toISOString() })
  }
  if (json) {
    io.stdout.write(`${JSON.stringify(rows)}\n`)
    return
  }
  if (rows.length === 0) {
    io.stderr.write('no users\n')
    return
  }
  for (const r of rows) io.stdout.write(`${r.userId}\t${r.username}\tdevices=${r.devices}\tsessions=${r.sessions}\tcreated=${r.createdAt}\n`)
}

const readPassword = async (passwordFile: string | undefined, io: AdminIo): Promise<string> => {
  let password: string
  if (passwordFile !== undefined) {
    let text: string
    try {
      text = readFileSync(passwordFile, 'utf8')
    } catch (err) {
      throw new AdminError(`cannot read password file: ${(err as Error).message}`, EXIT_FAILED)
    }
    password = firstLine(text)
  } else if (io.env.PIGEON_ADMIN_PASSWORD !== undefined) {
    password = io.env.PIGEON_ADMIN_PASSWORD
  } else if (io.stdin.isTTY && io.stdin.setRawMode) {
    password = await readHidden('password: ', io)
    if ((await readHidden('again: ', io)) !== password) throw new AdminError('passwords do not match', EXIT_FAILED)
  } else {
    password = firstLine(await readAll(io.stdin))
  }
  if ([...password.normalize('NFC')].length < MIN_ADMIN_PASSWORD_LENGTH) {
    throw new AdminError(`password too short (at least ${MIN_ADMIN_PASSWORD_LENGTH} characters)`, EXIT_FAILED)
  }
  return password
}

const firstLine = (text: string): string => text.split(/\r?\n/, 1)[0] ?? ''

const readAll = async (stream: NodeJS.ReadableStream): Promise<string> => {
  const chunks: Buffer[] = []
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer))
  return Buffer.concat(chunks).toString('utf8')
}

/** Read a password from the terminal; Ctrl-C exits 130. */
const readHidden = async (prompt: string, io: AdminIo): Promise<string> => {
  try {
    return await readHiddenLine(prompt, io)
  } catch (err) {
    if (err instanceof InterruptedError) throw new AdminError('interrupted', 130)
    throw err
  }
}

const isMain = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href
if (isMain) {
  const code = await runAdmin(process.argv.slice(2), { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr, env: process.env, nowMs: () => Date.now() })
  process.exitCode = code
}
