/**
 * `npm run chat -- --user alice` (or `pigeon chat --user alice`): a terminal chat
 * client. Lines are read with readline; piped input works too (the client then sends
 * every line, waits until the server has stored the messages and exits).
 * Exit 0 on a normal exit, 1 when the server is unreachable, the login fails (also a
 * later one: logged out), or with piped input when a line was not carried out (unknown
 * user, group or command, a failed request), a message was refused by the server or is
 * left unsent at the end, 2 on bad arguments.
 */
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
import { safeName, safeOutput } from './display.js'
import { ChatHistory } from './history.js'
import { terminalPassword } from './terminal-password.js'

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

  let input: Interface | undefined
  /** While the password is asked for again, output waits here. */
  let held: string[] | undefined
  const envPassword = process.env.PIGEON_PASSWORD
  const password =
    envPassword ??
    terminalPassword({
      prompt: `password for ${s.user}: `,
      io: process,
      readline: () => input,
      terminal: tty,
      onAsk: (asking) => {
        if (asking) {
          held = []
          process.stdout.write('\r\x1b[K') // the prompt line gives way to the password prompt
          return
        }
        const lines = held ?? []
        held = undefined
        for (const line of lines) print(line)
        if (lines.length === 0) showPrompt()
      },
    })

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
    process.stderr.write(`pigeon chat: cannot connect as ${s.user} to ${s.host}:${s.port}: ${safeName((err as Error).message)}\n`)
    state.close()
    history.close()
    return 1
  }
  // Refused messages have left the outbox: count them for the exit code ("not sent" is printed).
  let refused = 0
  client.on('send_failed', () => refused++)

  let quitting = false
  /** On a terminal: the cursor is after the prompt (and maybe typed text), not at a line start. */
  let atPrompt = false
  const showPrompt = (): void => {
    if (!tty || input === undefined || quitting || held !== undefined) return
    input.prompt(true)
    atPrompt = true
  }
  // The UI made network text safe; safeOutput is the last line of defence for the terminal.
  function print(line: string): void {
    if (held !== undefined) held.push(line)
    else if (tty && input !== undefined) {
      process.stdout.write(`\r\x1b[K${safeOutput(line)}\n`)
      atPrompt = false
      showPrompt()
    } else process.stdout.write(`${safeOutput(line)}\n`)
  }
  let resolveQuit: () => void = () => {}
  const quitRequested = new Promise<void>((resolve) => (resolveQuit = resolve))
  // From now on no prompt is shown and no further typed line is carried out.
  const requestQuit = (): void => {
    quitting = true
    resolveQuit()
  }
  const ui = new ChatUi({
    client,
    history,
    print,
    onPromptChange: (prompt) => input?.setPrompt(prompt),
    onQuit: () => requestQuit(),
  })
  let authFailure: string | undefined
  client.on('auth_failed', (err) => {
    authFailure = err.message
    requestQuit()
  })
  // Catch up first (quietly: the banner sums it up), so the first commands see the inbox.
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, 5_000)
    client.once('synced', () => {
      clearTimeout(timer)
      resolve()
    })
  })
  ui.caughtUp()
  const lineInput = (input = createInterface({ input: process.stdin, output: tty ? process.stdout : undefined, terminal: tty, historySize: tty ? 100 : 0 }))
  ui.banner()
  input.setPrompt(ui.prompt)
  showPrompt()

  // Piped input: nobody reads the "!" to type the line again, so it fails the run.
  const piped = !tty
  let failedLines = 0
  let lines: Promise<void> = Promise.resolve()
  lineInput.on('line', (line) => {
    atPrompt = false // readline echoed the newline
    lines = lines.then(async () => {
      if (quitting) return
      if (!(await ui.handleLine(line))) failedLines++
      showPrompt()
    })
  })
  const eof = new Promise<void>((resolve) => lineInput.once('close', resolve))
  const onSigint = (): void => {
    // Leave what was typed visible, marked as abandoned, and the cursor on a fresh line.
    if (tty && atPrompt) {
      lineInput.write(null, { ctrl: true, name: 'e' }) // to the end of the typed text
      process.stdout.write('^C\n')
    }
    atPrompt = false
    requestQuit()
  }
  lineInput.on('SIGINT', onSigint)
  process.on('SIGINT', onSigint)

  await Promise.race([eof, quitRequested])
  await lines // at EOF, the lines read so far are still carried out
  quitting = true
  // Give messages just typed a moment (piped input: as long as it takes, within reason).
  client.flushReads()
  // Logged out (auth_failed): the client is closed, nothing more can be sent.
  const drained = await waitUntil(() => client.core.idle || authFailure !== undefined || (!piped && !client.connected), piped ? 30_000 : 2_000)
  if (piped && drained && authFailure === undefined && s.waitMs > 0) await sleep(s.waitMs)
  client.flushReads()
  await waitUntil(() => client.core.idle, 500)
  await ui.settled()
  const unsent = client.outboxSize
  lineInput.close()
  // Ctrl-D at the prompt: the shell's prompt must not continue this line.
  if (tty && atPrompt) process.stdout.write('\n')
  process.off('SIGINT', onSigint)
  await client.close()
  state.close()
  history.close()
  if (unsent > 0) process.stderr.write(`pigeon chat: ${unsent} message(s) not yet stored by the server; they are sent next time\n`)
  if (refused > 0) process.stderr.write(`pigeon chat: ${refused} message(s) refused by the server (see "not sent" above)\n`)
  if (piped && failedLines > 0) process.stderr.write(`pigeon chat: ${failedLines} line(s) not carried out (see "!" above)\n`)
  if (authFailure !== undefined) {
    process.stderr.write(`pigeon chat: logged out: cannot log in again: ${safeName(authFailure)}\n`)
    return 1
  }
  return piped && (unsent > 0 || refused > 0 || failedLines > 0) ? 1 : 0
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
