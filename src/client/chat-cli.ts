/**
 * `npm run chat -- --user alice` (or `pigeon chat --user alice`): a terminal chat
 * client. Lines are read with readline; piped input works too (the client then sends
 * every line, waits until the server has stored the messages and exits).
 * A password typed on the terminal that the server refuses is asked for again (also
 * later, when the client has to log in again, e.g. after a kick), PASSWORD_ATTEMPTS
 * times in a row at most.
 * At the end of piped input the client waits (up to PIPED_DRAIN_MS) for the server to
 * store what was sent, also across a reconnect; /quit waits only for the sends in flight
 * on the live session (up to QUIT_SEND_WAIT_MS); what is left is reported, kept and
 * sent next time.
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
import { AuthError } from '../io/client.js'
import { parseKeyHex } from '../io/server-key.js'
import { ChatClient, type ChatClientOptions, PasswordUnavailableError } from './chat-client.js'
import { ChatUi, COMMANDS_HELP } from './chat-ui.js'
import { FileClientState } from './client-state.js'
import { safeName, safeOutput } from './display.js'
import { ChatHistory } from './history.js'
import { PASSWORD_ATTEMPTS, type PasswordSource, terminalPassword } from './terminal-password.js'

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

The password comes from env PIGEON_PASSWORD, or is asked for (hidden) on a terminal
(again after a wrong one, ${PASSWORD_ATTEMPTS} times at most); it is not needed while the
stored session token is valid.

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

/** Piped input, at its end: how long the server gets to store what was sent. */
const PIPED_DRAIN_MS = 30_000
/** /quit with piped input: how long the sends in flight get for their outcome. */
const QUIT_SEND_WAIT_MS = 5_000
/** Leaving on a terminal: how long what is under way gets. */
const TERMINAL_DRAIN_MS = 2_000
/** Logging in again after a wrong password, the server did not answer: the next try after this... */
const RELOGIN_RETRY_MS = 1_000
/** ...until this long after the first (typed lines wait meanwhile: it must end). */
const RELOGIN_GIVE_UP_MS = 30_000

/** What leaving waits for, and how long at most. */
const drainRule = (client: ChatClient, piped: boolean, quitTyped: boolean): { done: () => boolean; timeoutMs: number } => {
  if (!piped) return { done: () => client.core.idle || !client.connected, timeoutMs: TERMINAL_DRAIN_MS }
  // /quit: the sends in flight on the live session get their outcome; no reconnect is waited for.
  if (quitTyped) return { done: () => client.outboxSize === 0 || !client.connected, timeoutMs: QUIT_SEND_WAIT_MS }
  return { done: () => client.core.idle, timeoutMs: PIPED_DRAIN_MS }
}

const WRONG_PASSWORDS = `wrong password, ${PASSWORD_ATTEMPTS} attempts`

const isWrongPassword = (err: unknown): boolean => err instanceof AuthError && err.code === 'WRONG_CREDENTIALS'

/**
 * A logged-in ChatClient. ChatClient gives up on a refused password: a password typed
 * on the terminal is asked for again with a new client, PASSWORD_ATTEMPTS wrong ones in
 * a row at most. `keepTrying`: while true, a server that does not answer is tried again.
 */
const logIn = async (opts: ChatClientOptions, asked: PasswordSource | undefined, keepTrying: () => boolean = () => false): Promise<ChatClient> => {
  for (;;) {
    try {
      const client = await ChatClient.start(opts)
      asked?.accepted()
      return client
    } catch (err) {
      if (isWrongPassword(err) && asked !== undefined) {
        if (!asked.refused()) throw new Error(WRONG_PASSWORDS)
        continue
      }
      const refusedOrNoPassword = err instanceof AuthError || err instanceof PasswordUnavailableError
      if (refusedOrNoPassword || !keepTrying()) throw err
      await sleep(RELOGIN_RETRY_MS)
    }
  }
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
  /** On a terminal: the cursor is after the prompt (and maybe typed text), not at a line start. */
  let atPrompt = false
  const envPassword = process.env.PIGEON_PASSWORD
  const asked: PasswordSource | undefined =
    envPassword === undefined
      ? terminalPassword({
          prompt: `password for ${s.user}: `,
          io: process,
          readline: () => input,
          terminal: tty,
          onAsk: (asking) => {
            if (asking) {
              held = []
              process.stdout.write(clearInput()) // the prompt gives way to the password prompt
              atPrompt = false
              return
            }
            const lines = held ?? []
            held = undefined
            for (const line of lines) print(line)
            if (lines.length === 0) showPrompt()
          },
        })
      : undefined
  const clientOptions: ChatClientOptions = {
    host: s.host,
    port: s.port,
    serverPublicKey: s.serverPublicKey,
    username: s.user,
    password: envPassword ?? asked,
    register: s.register,
    deviceName: s.deviceName,
    state,
    // A person's messages are not dropped for typing (or piping) too fast.
    retryRateLimited: true,
  }

  let client: ChatClient
  try {
    client = await logIn(clientOptions, asked)
  } catch (err) {
    process.stderr.write(`pigeon chat: cannot connect as ${s.user} to ${s.host}:${s.port}: ${safeName((err as Error).message)}\n`)
    state.close()
    history.close()
    return 1
  }
  // Refused messages have left the outbox: count them for the exit code ("not sent" is printed).
  let refused = 0

  let quitting = false
  /** /quit was typed (not end of input, Ctrl-C or a logout). */
  let quitTyped = false
  const showPrompt = (): void => {
    if (!tty || input === undefined || quitting || held !== undefined) return
    input.prompt(true)
    atPrompt = true
  }
  /**
   * The terminal control sequence that erases the prompt and typed text, on every row
   * they take (typed text wraps at the terminal's width), leaving the cursor at the
   * start of the first.
   */
  function clearInput(): string {
    if (input === undefined || !atPrompt) return '\r\x1b[K'
    // The cursor's row below the prompt's first, as readline computes it (terminal
    // width, display width of the text).
    const rows = input.getCursorPos().rows
    // readline's next redraw first moves up as many rows as it last left the cursor
    // below the prompt's start; it starts at the cursor's row from now on.
    ;(input as unknown as { prevRows: number }).prevRows = 0
    return `${rows > 0 ? `\x1b[${rows}A` : ''}\r\x1b[J`
  }
  // The UI made network text safe; safeOutput is the last line of defence for the terminal.
  function print(line: string): void {
    if (held !== undefined) held.push(line)
    else if (tty && input !== undefined) {
      process.stdout.write(`${clearInput()}${safeOutput(line)}\n`)
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
    onQuit: () => {
      quitTyped = true
      requestQuit()
    },
  })
  let authFailure: string | undefined
  const loggedOut = (reason: string): void => {
    authFailure = reason
    ui.notice(`cannot log in again: ${safeName(reason)}`)
    requestQuit()
  }
  /** Logging in again with a new client after the server refused the password (typed lines wait for it). */
  let relogin: Promise<void> | undefined
  const logInAgain = async (): Promise<void> => {
    const giveUpAtMs = Date.now() + RELOGIN_GIVE_UP_MS
    try {
      client = await logIn(clientOptions, asked, () => !quitting && Date.now() < giveUpAtMs)
      follow(client)
      ui.attach(client)
    } catch (err) {
      loggedOut((err as Error).message)
    }
  }
  const follow = (c: ChatClient): void => {
    c.on('send_failed', () => refused++)
    // The client gave up (and closed): a wrong password typed here is asked for again.
    c.on('auth_failed', (err) => {
      if (!isWrongPassword(err) || asked === undefined) return loggedOut(err.message)
      if (!asked.refused()) return loggedOut(WRONG_PASSWORDS)
      // The old client closes itself right after this event: let it finish first.
      relogin = c
        .close()
        .then(logInAgain)
        .finally(() => (relogin = undefined))
    })
  }
  follow(client)
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
      await relogin
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
  await relogin
  client.flushReads()
  // Logged out (auth_failed): the client is closed, nothing more can be sent.
  const drain = drainRule(client, piped, quitTyped)
  const drained = await waitUntil(() => authFailure !== undefined || drain.done(), drain.timeoutMs)
  if (piped && drained && authFailure === undefined && s.waitMs > 0) await sleep(s.waitMs)
  client.flushReads()
  await waitUntil(() => client.core.idle || !client.connected, 500)
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
