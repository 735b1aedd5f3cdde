/**
 * `npm run chat -- --user alice` (or `pigeon chat --user alice`): a terminal chat
 * client. Lines are read with readline; piped input works too (the client then sends
 * every line, waits until the server has stored the messages and exits).
 * Exit 0 on a normal exit, 1 when the server is unreachable, the login fails or messages
 * are left unsent at the end of piped input, 2 on bad arguments.
 */
import { readHiddenLine } from '../io/hidden-input.js'
import { existsSync, readFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { createInterface, type Interface } from 'node:readline'
import { setTimeout as sleep } from 'node:timers/promises'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { parseKeyHex } from '../io/server-key.js'
import { ChatClient } from './chat-client.js'
import { ChatUi, COMMANDS_HELP } from './chat-ui.js'
import { FileClientState } from './client-state.js'
import { ChatHistory } from './history.js'

const HELP = `Usage: npm run chat -- --user NAME [options]   (or: pigeon chat --user NAME ...)

  --host HOST        server address (env PIGEON_HOST; default 127.0.0.1)
  --port PORT        server UDP port (env PIGEON_PORT; default 7700)
  --server-key HEX   the server's public key to pin (env PIGEON_SERVER_KEY; default:
                     read from ./data/server-key.json when it exists)
  --insecure         talk to a server started with --insecure (no encryption)
  --user NAME        who to log in as (env PIGEON_USER)
  --device NAME      this device's name (default: cli)
  --register         create the account first (servers with open registration)
  --state-dir DIR    where the outbox, sync cursor, session token and history are
                     kept (env PIGEON_STATE_DIR; default ~/.pigeon, or ./.pigeon-client
                     without a home directory); one subdirectory per server and user
  --wait-ms MS       with piped input: keep receiving this long after the last line
  --help             show this help

The password comes from env PIGEON_PASSWORD, or is asked for (hidden) on a terminal;
it is not needed while the stored session token is valid.

${COMMANDS_HELP}`

interface Settings {
  host: string
  port: number
  serverPublicKey: Uint8Array | undefined
  user: string
  deviceName: string
  register: boolean
  stateRoot: string
  waitMs: number
}

const LOCAL_KEY_FILE = 'data/server-key.json'

const serverKey = (hex: string | undefined): Uint8Array | undefined => {
  if (hex !== undefined) return parseKeyHex(hex, '--server-key')
  if (!existsSync(LOCAL_KEY_FILE)) return undefined
  const { publicKey } = JSON.parse(readFileSync(LOCAL_KEY_FILE, 'utf8')) as { publicKey?: string }
  return publicKey === undefined ? undefined : parseKeyHex(publicKey, `${LOCAL_KEY_FILE} publicKey`)
}

const defaultStateRoot = (): string => {
  let home = ''
  try {
    home = homedir()
  } catch {
    // no home directory
  }
  return home === '' ? '.pigeon-client' : join(home, '.pigeon')
}

export const parseSettings = (argv: string[], env: NodeJS.ProcessEnv): Settings | 'help' => {
  const { values: v, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      host: { type: 'string' },
      port: { type: 'string' },
      'server-key': { type: 'string' },
      insecure: { type: 'boolean' },
      user: { type: 'string' },
      device: { type: 'string' },
      register: { type: 'boolean' },
      'state-dir': { type: 'string' },
      'wait-ms': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  })
  if (v.help === true) return 'help'
  if (positionals.length > 0) throw new Error(`unexpected argument ${positionals[0]}`)
  const int = (name: string, text: string | undefined, fallback: number, min: number, max: number): number => {
    const n = Number(text ?? fallback)
    if (!Number.isInteger(n) || n < min || n > max) throw new Error(`--${name} must be an integer in [${min}, ${max}], got ${text}`)
    return n
  }
  const user = v.user ?? env.PIGEON_USER
  if (user === undefined || user === '') throw new Error('--user NAME (or env PIGEON_USER) is required')
  return {
    host: v.host ?? env.PIGEON_HOST ?? '127.0.0.1',
    port: int('port', v.port ?? env.PIGEON_PORT, 7700, 1, 65_535),
    serverPublicKey: v.insecure === true ? undefined : serverKey(v['server-key'] ?? env.PIGEON_SERVER_KEY),
    user,
    deviceName: v.device ?? 'cli',
    register: v.register === true,
    stateRoot: v['state-dir'] ?? env.PIGEON_STATE_DIR ?? defaultStateRoot(),
    waitMs: int('wait-ms', v['wait-ms'], 0, 0, 86_400_000),
  }
}

const waitUntil = async (done: () => boolean, timeoutMs: number): Promise<boolean> => {
  const until = Date.now() + timeoutMs
  while (!done()) {
    if (Date.now() >= until) return false
    await sleep(50)
  }
  return true
}

export const runChatCli = async (argv: string[]): Promise<number> => {
  let s: Settings | 'help'
  try {
    s = parseSettings(argv, process.env)
  } catch (err) {
    process.stderr.write(`pigeon chat: ${(err as Error).message}\n\n${HELP}\n`)
    return 2
  }
  if (s === 'help') {
    process.stdout.write(`${HELP}\n`)
    return 0
  }
  const tty = process.stdin.isTTY === true && process.stdout.isTTY === true
  const dir = ChatClient.stateDirFor(s.stateRoot, s.host, s.port, s.user)
  let state: FileClientState
  let history: ChatHistory
  try {
    state = FileClientState.open(dir)
    history = new ChatHistory(dir)
  } catch (err) {
    process.stderr.write(`pigeon chat: ${(err as Error).message}\n`)
    return 1
  }
  if (state.corruptLines + history.corruptLines > 0) {
    process.stderr.write(`pigeon chat: skipped ${state.corruptLines + history.corruptLines} unreadable line(s) in ${dir}\n`)
  }

  let rl: Interface | undefined
  const envPassword = process.env.PIGEON_PASSWORD
  const password =
    envPassword !== undefined
      ? envPassword
      : async (): Promise<string> => {
          if (rl !== undefined || process.stdin.isTTY !== true) throw new Error('set PIGEON_PASSWORD or run on a terminal')
          return readHiddenLine(`password for ${s.user}: `, process)
        }

  let client: ChatClient
  try {
    client = await ChatClient.start({
      host: s.host,
      port: s.port,
      serverPublicKey: s.serverPublicKey,
      username: s.user,
      password,
      register: s.register,
      deviceName: s.deviceName,
      state,
      // A person's messages are not dropped for typing (or piping) too fast.
      retryRateLimited: true,
    })
  } catch (err) {
    process.stderr.write(`pigeon chat: cannot connect as ${s.user} to ${s.host}:${s.port}: ${(err as Error).message}\n`)
    state.close()
    return 1
  }

  let input: Interface | undefined
  let quitting = false
  const print = (line: string): void => {
    if (tty && input !== undefined) {
      process.stdout.write(`\r\x1b[K${line}\n`)
      if (!quitting) input.prompt(true)
    } else process.stdout.write(`${line}\n`)
  }
  let requestQuit: () => void = () => {}
  const quitRequested = new Promise<void>((resolve) => (requestQuit = resolve))
  const ui = new ChatUi({
    client,
    history,
    print,
    onPromptChange: (prompt) => input?.setPrompt(prompt),
    onQuit: () => requestQuit(),
  })
  client.on('auth_failed', () => requestQuit())
  // Catch up first (quietly: the banner sums it up), so the first commands see the inbox.
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, 5_000)
    client.once('synced', () => {
      clearTimeout(timer)
      resolve()
    })
  })
  ui.caughtUp()
  input = rl = createInterface({ input: process.stdin, output: tty ? process.stdout : undefined, terminal: tty, historySize: tty ? 100 : 0 })
  ui.banner()
  input.setPrompt(ui.prompt)
  if (tty) input.prompt()

  const lineInput = input
  let lines: Promise<void> = Promise.resolve()
  lineInput.on('line', (line) => {
    lines = lines.then(async () => {
      if (quitting) return
      await ui.handleLine(line)
      if (tty && !quitting) lineInput.prompt()
    })
  })
  const eof = new Promise<void>((resolve) => lineInput.once('close', resolve))
  lineInput.on('SIGINT', () => requestQuit())
  const onSigint = (): void => requestQuit()
  process.on('SIGINT', onSigint)

  const piped = await Promise.race([eof.then(() => !tty), quitRequested.then(() => false)])
  await lines
  quitting = true
  // Give messages just typed a moment (piped input: as long as it takes, within reason).
  client.flushReads()
  const drained = await waitUntil(() => client.core.idle || (!piped && !client.connected), piped ? 30_000 : 2_000)
  if (piped && drained && s.waitMs > 0) await sleep(s.waitMs)
  client.flushReads()
  await waitUntil(() => client.core.idle, 500)
  await ui.settled()
  const unsent = client.outboxSize
  lineInput.close()
  process.off('SIGINT', onSigint)
  await client.close()
  state.close()
  if (unsent > 0) process.stderr.write(`pigeon chat: ${unsent} message(s) not yet stored by the server; they are sent next time\n`)
  return piped && unsent > 0 ? 1 : 0
}

const isMain = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href
if (isMain) {
  runChatCli(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code
      // Whatever still holds the event loop (a stdin that never ended) must not keep us.
      setTimeout(() => process.exit(code), 2_000).unref()
    },
    (err: unknown) => {
      process.stderr.write(`pigeon chat: ${err instanceof Error ? err.message : String(err)}\n`)
      process.exit(1)
    },
  )
}
