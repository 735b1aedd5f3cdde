import { type ChildProcessWithoutNullStreams, spawn, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { ChatClient } from '../../src/client/chat-client.js'
import { LoginService } from '../../src/server/accounts/login.js'
import { SessionTokens } from '../../src/server/accounts/tokens.js'
import { startChatServer } from '../../src/server/chat-server.js'
import { MemoryAccountStore } from '../../src/store/memory-account-store.js'
import { MemoryMessageStore } from '../../src/store/memory-message-store.js'
import { pulse, waitFor, watch } from '../helpers/wait.js'

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const CLI = join(root, 'src', 'client', 'chat-cli.ts')
const BIN = join(root, 'bin', 'pigeon.js')

const run = (args: string[], env: Record<string, string> = {}) => {
  const e: NodeJS.ProcessEnv = { ...process.env, ...env }
  for (const k of ['PIGEON_USER', 'PIGEON_PASSWORD', 'PIGEON_PORT', 'PIGEON_HOST', 'PIGEON_SERVER_KEY', 'PIGEON_STATE_DIR']) if (!(k in env)) delete e[k]
  const r = spawnSync(process.execPath, args, { cwd: root, input: '', env: e, encoding: 'utf8', timeout: 60_000 })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

t.test('--help prints the usage and the commands, exit 0', async (t) => {
  const r = run(['--import', 'tsx', CLI, '--help'])
  t.equal(r.code, 0, r.stderr)
  t.match(r.stdout, /Usage: npm run chat -- --user NAME/)
  t.match(r.stdout, /\/to USER/)
  t.match(r.stdout, /--state-dir DIR/)
})

t.test('pigeon chat --help dispatches to the chat CLI', async (t) => {
  const r = run([BIN, 'chat', '--help'])
  t.equal(r.code, 0, r.stderr)
  t.match(r.stdout, /Usage: npm run chat/)
})

t.test('bad arguments exit 2 with the reason', async (t) => {
  let r = run(['--import', 'tsx', CLI])
  t.equal(r.code, 2)
  t.match(r.stderr, /--user NAME \(or env PIGEON_USER\) is required/)
  r = run(['--import', 'tsx', CLI, '--user', 'alice', '--port', '99999'])
  t.equal(r.code, 2)
  t.match(r.stderr, /--port must be an integer/)
  r = run(['--import', 'tsx', CLI, '--user', 'alice', '--server-key', 'nothex'])
  t.equal(r.code, 2)
  t.match(r.stderr, /64 hex digits/)
  r = run(['--import', 'tsx', CLI, '--bogus'])
  t.equal(r.code, 2)
})

/** An in-process server (memory stores, no encryption) and a state directory for the CLI's alice. */
const chatWorld = async (t: Test) => {
  const accounts = new MemoryAccountStore()
  const messages = new MemoryMessageStore({ accounts })
  const tokens = new SessionTokens({ store: accounts, secret: new Uint8Array(randomBytes(32)) })
  const login = new LoginService({ store: accounts, tokens, openRegistration: true })
  const server = await startChatServer({ host: '127.0.0.1', port: 0, login, accounts, messages, commitWindowMs: 0 })
  t.teardown(() => server.close())
  const stateDir = mkdtempSync(join(tmpdir(), 'pigeon-chat-cli-'))
  t.teardown(() => rmSync(stateDir, { recursive: true, force: true }))
  const args = (extra: string[]) => ['--import', 'tsx', CLI, '--insecure', '--host', '127.0.0.1', '--port', String(server.port), '--user', 'alice', '--state-dir', stateDir, ...extra]
  const env = (password: string | undefined): NodeJS.ProcessEnv => {
    const e: NodeJS.ProcessEnv = { ...process.env }
    delete e.PIGEON_SERVER_KEY
    delete e.PIGEON_PASSWORD
    if (password !== undefined) e.PIGEON_PASSWORD = password
    return e
  }
  /** The CLI with piped input (`input` undefined: stdin stays open until the test ends it). */
  const start = (input: string | undefined, extra: string[] = [], password: string | null = 'alice-password') => {
    const child = spawn(process.execPath, args(extra), { cwd: root, env: env(password ?? undefined) })
    const run = { child, stdout: '', stderr: '', done: undefined as Promise<number | null> | undefined }
    child.stdout.on('data', (d) => {
      run.stdout += d
      pulse()
    })
    child.stderr.on('data', (d) => {
      run.stderr += d
      pulse()
    })
    run.done = new Promise((resolve) =>
      child.on('close', (code) => {
        resolve(code)
        pulse()
      }),
    )
    t.teardown(() => void child.kill())
    if (input !== undefined) child.stdin.end(input)
    return run
  }
  const cli = async (input: string, extra: string[] = []) => {
    const r = start(input, extra)
    const code = await r.done
    return { code, stdout: r.stdout, stderr: r.stderr }
  }
  const kick = async (username: string) => {
    const user = await accounts.getUserByName(username)
    await login.kick({ userId: user!.userId, nowMs: Date.now() })
    server.kickUser(user!.userId)
  }
  return { accounts, server, stateDir, args, env, start, cli, kick }
}

t.test('piped input: log in, add a contact, send, see it again in /history on the next run (reading it sends the receipt); a refused message exits 1', async (t) => {
  const { accounts, server, cli } = await chatWorld(t)
  const bob = watch(await ChatClient.start({ host: '127.0.0.1', port: server.port, username: 'bob', password: 'bob-password', register: true, deviceName: 'test' }))
  t.teardown(() => bob.close())
  const bobGot: string[] = []
  bob.on('message', (e) => bobGot.push(e.body))
  const bobReceipts: string[] = []
  bob.on('receipt', (e) => bobReceipts.push(e.status))

  let r = await cli('/add bob\n/to bob\nhello from the cli\n/status\n', ['--register'])
  t.equal(r.code, 0, r.stderr)
  t.match(r.stdout, /connected as alice/)
  t.match(r.stdout, /added bob/)
  t.match(r.stdout, /\[bob\] alice: hello from the cli {2}\(sending…\)\n[^]*^ {2}✓ sent "hello from the cli"/m, 'pending, then sent')
  t.same(bobGot, ['hello from the cli'])

  const alice = await accounts.getUserByName('alice')
  await bob.send({ kind: 'user', userId: alice!.userId }, 'hi alice')
  r = await cli('/list\n/to bob\n/history\n')
  t.equal(r.code, 0, r.stderr)
  t.match(r.stdout, /bob \(1 unread\)/)
  t.match(r.stdout, /alice: hello from the cli/)
  t.match(r.stdout, /bob: hi alice/)
  // Opening the conversation read bob's message: the READ went out before the CLI exited.
  await waitFor('read receipt from the cli', () => bobReceipts.includes('read') || undefined, 5_000)

  r = await cli('/to #999999\nthis goes nowhere\n')
  t.equal(r.code, 1, 'a refused message fails the piped run')
  t.match(r.stdout, /alice: this goes nowhere {2}\(sending…\)\n[^]*^\* not sent to #999999: "this goes nowhere": UNKNOWN_USER/m, 'pending, then not sent')
  t.match(r.stderr, /1 message\(s\) refused by the server/)
})

t.test('piped input: a line not carried out (unknown user, no conversation, unknown command, failed request) fails the run, with the reason', async (t) => {
  const { cli } = await chatWorld(t)
  let r = await cli('/status\n', ['--register'])
  t.equal(r.code, 0, r.stderr)
  const cases: Array<[string, RegExp, number]> = [
    ['/to nobody\nhello?\n', /! no user named nobody\n! no conversation/, 2],
    ['hello?\n', /! no conversation/, 1],
    ['/bogus\n/status\n', /! unknown command \/bogus/, 1],
    ['/add nobody\n', /! [A-Z_]+/, 1],
  ]
  for (const [input, reason, failed] of cases) {
    r = await cli(input)
    t.equal(r.code, 1, JSON.stringify(input))
    t.match(r.stdout, reason)
    t.match(r.stderr, `${failed} line(s) not carried out`)
  }
})

t.test('kicked (token revoked) without a password and a terminal to ask on: exits 1 saying so', async (t) => {
  const { cli, start, kick } = await chatWorld(t)
  t.equal((await cli('/status\n', ['--register'])).code, 0)
  const run = start(undefined, [], null) // no password: resumes with the stored token
  await waitFor('the CLI connected', () => run.stdout.includes('connected as alice') || undefined)
  await kick('alice')
  t.equal(await run.done, 1, run.stderr)
  t.match(run.stdout, /\* cannot log in again: no password: input is not a terminal to ask on: set PIGEON_PASSWORD/)
  t.match(run.stderr, /logged out: cannot log in again: no password: input is not a terminal/)
})

t.test('piped input ending with /quit: sends in flight get their outcome; with the server gone it exits at once, saying what is left (exit 1)', async (t) => {
  const w = await chatWorld(t)
  // The server answers: the outcome is printed before the exit; lines after /quit are not carried out.
  const r = await w.cli('/to #999999\nnowhere\n/quit\n/bogus\n', ['--register'])
  t.equal(r.code, 1, r.stderr)
  t.match(r.stdout, /alice: nowhere {2}\(sending…\)\n\* not sent to #999999: "nowhere": UNKNOWN_USER/)
  t.notMatch(r.stdout, /bogus/)

  // The server is gone: /quit waits for no reconnect (end of input would, up to 30 s).
  const run = w.start(undefined)
  await waitFor('the CLI connected', () => run.stdout.includes('connected as alice') || undefined)
  await w.server.close()
  await waitFor('the CLI saw the server go', () => run.stdout.includes('* disconnected') || undefined)
  run.child.stdin.write('/to #999999\nkept for next time\n/quit\n') // stdin stays open
  let code: number | null | undefined
  void run.done!.then((c) => (code = c))
  await waitFor(() => `the exit after /quit: ${JSON.stringify(run.stdout + run.stderr)}`, () => code !== undefined || undefined, 10_000)
  t.equal(code, 1)
  t.match(run.stdout, /alice: kept for next time {2}\(queued: offline\)/)
  t.match(run.stderr, /1 message\(s\) not yet stored by the server; they are sent next time/)
})

// --- on a terminal: `script` runs the CLI on a pseudo-terminal ---------------------------

const hasScript = spawnSync('script', ['--version']).status === 0
const quote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`

/** The line the cursor is on at the end of `out`, as a terminal shows it (\r, erase line, cursor column). */
const cursorLine = (out: string): string => {
  let line: string[] = []
  let col = 0
  const text = out.slice(out.lastIndexOf('\n') + 1)
  for (let i = 0; i < text.length; i++) {
    const csi = /^\x1b\[([0-9;?]*)([A-Za-z])/.exec(text.slice(i))
    if (csi !== null) {
      if (csi[2] === 'K') line = line.slice(0, col)
      if (csi[2] === 'G') col = Number(csi[1] || 1) - 1
      i += csi[0].length - 1
    } else if (text[i] === '\r') col = 0
    else line[col++] = text[i]
  }
  return line.join('').trimEnd()
}

const onTerminal = (w: Awaited<ReturnType<typeof chatWorld>>, password: string | undefined) => {
  const cmd = `stty cols 100 rows 30; exec ${[process.execPath, ...w.args([])].map(quote).join(' ')}`
  const child: ChildProcessWithoutNullStreams = spawn('script', ['-qfec', cmd, '/dev/null'], { cwd: root, env: { ...w.env(password), TERM: 'xterm' } })
  const run = { out: '', done: new Promise<number | null>((resolve) => child.on('close', resolve)) }
  child.stdout.on('data', (d) => {
    run.out += d
    pulse()
  })
  child.stderr.on('data', (d) => {
    run.out += d
    pulse()
  })
  const type = (text: string): void => void child.stdin.write(text)
  const until = (what: string | RegExp, from = 0) =>
    waitFor(
      () => `${what} in ${JSON.stringify(run.out.slice(-300))}`,
      () => (typeof what === 'string' ? run.out.indexOf(what, from) >= 0 : what.test(run.out.slice(from))) || undefined,
    )
  const prompt = () => waitFor(() => `the prompt in ${JSON.stringify(run.out.slice(-300))}`, () => (run.out.includes('connected as alice') && cursorLine(run.out) === '>') || undefined)
  return { run, type, until, prompt, kill: () => child.kill() }
}

t.test('on a terminal, kicked after resuming with the stored token: the password is asked for (hidden) and the chat goes on', { skip: hasScript ? false : 'no script(1)' }, async (t) => {
  const w = await chatWorld(t)
  t.equal((await w.cli('/status\n', ['--register'])).code, 0)
  const term = onTerminal(w, undefined)
  t.teardown(term.kill)
  await term.prompt()
  const mark = term.run.out.length
  await w.kick('alice')
  await term.until(/password for alice: |cannot log in again/, mark)
  t.notMatch(term.run.out.slice(mark), /cannot log in again/)
  term.type('alice-password\r')
  await term.until('* reconnected (logged in again)', mark)
  term.type('/status\r')
  await term.until('connected as alice (#', mark)
  term.type('/quit\r')
  t.equal(await term.run.done, 0)
  t.notMatch(term.run.out, /alice-password/, 'the password was not echoed')
})

t.test('on a terminal, /quit, Ctrl-C and Ctrl-D leave the cursor on a clean new line', { skip: hasScript ? false : 'no script(1)' }, async (t) => {
  const w = await chatWorld(t)
  t.equal((await w.cli('/status\n', ['--register'])).code, 0)
  const cases: Array<[string, string]> = [
    ['/quit\r', '> /quit'],
    ['half typed\x1b[D\x1b[D\x03', '> half typed^C'],
    ['\x04', '>'],
  ]
  for (const [keys, lastText] of cases) {
    const term = onTerminal(w, 'alice-password')
    t.teardown(term.kill)
    await term.prompt()
    term.type(keys)
    t.equal(await term.run.done, 0)
    t.equal(cursorLine(term.run.out), '', `${JSON.stringify(keys)}: the cursor is on an empty line`)
    const lines = term.run.out.split('\n')
    t.equal(cursorLine(lines.slice(0, -1).join('\n')), lastText, 'the line before it')
  }
})

t.test('on a terminal, a wrong password gets a clear message and another prompt (after a kick, and at start); 3 wrong ones exit 1', { skip: hasScript ? false : 'no script(1)' }, async (t) => {
  const w = await chatWorld(t)
  t.equal((await w.cli('/status\n', ['--register'])).code, 0)
  const term = onTerminal(w, undefined)
  t.teardown(term.kill)
  await term.prompt()
  let mark = term.run.out.length
  await w.kick('alice')
  await term.until(/password for alice: |cannot log in again/, mark)
  mark = term.run.out.length
  term.type('not-it\r')
  await term.until(/wrong password, try again \(attempt 2 of 3\)\r?\npassword for alice: |cannot log in again/, mark)
  t.notMatch(term.run.out.slice(mark), /cannot log in again/)
  term.type('alice-password\r')
  await term.until('* reconnected (logged in again)', mark)
  term.type('/status\r')
  await term.until('connected as alice (#', mark)
  term.type('/quit\r')
  t.equal(await term.run.done, 0)
  t.notMatch(term.run.out, /not-it|alice-password/, 'no password was echoed')

  // At start (the stored token revoked): asked again twice, then a clear exit.
  await w.kick('alice')
  const start = onTerminal(w, undefined)
  t.teardown(start.kill)
  for (const attempt of [1, 2, 3]) {
    await start.until(attempt === 1 ? 'password for alice: ' : `try again (attempt ${attempt} of 3)\r\npassword for alice: `)
    start.type(`wrong-${attempt}\r`)
  }
  t.equal(await start.run.done, 1)
  t.match(start.run.out, /pigeon chat: cannot connect as alice to [^:]+:\d+: wrong password, 3 attempts/)
})

/**
 * The screen a terminal `cols` wide shows after `out`: printable text (wrapping at the
 * right edge the way xterm does), CR, LF, BS, and the cursor and erase sequences
 * readline uses (CSI A B C D G K J).
 */
const screen = (out: string, cols: number): string[] => {
  const rows: string[][] = [[]]
  let row = 0
  let col = 0
  let wrapPending = false
  const at = (r: number): string[] => (rows[r] ??= [])
  for (let i = 0; i < out.length; i++) {
    const csi = /^\x1b\[([0-9;?]*)([A-Za-z])/.exec(out.slice(i, i + 16))
    if (csi !== null) {
      i += csi[0].length - 1
      const n = Number(csi[1] || 1)
      wrapPending = false
      if (csi[2] === 'A') row = Math.max(0, row - n)
      else if (csi[2] === 'B') row += n
      else if (csi[2] === 'C') col = Math.min(cols - 1, col + n)
      else if (csi[2] === 'D') col = Math.max(0, col - n)
      else if (csi[2] === 'G') col = n - 1
      else if (csi[2] === 'K') rows[row] = at(row).slice(0, col)
      else if (csi[2] === 'J') {
        rows.length = row + 1
        rows[row] = at(row).slice(0, col)
      }
      continue
    }
    const ch = out[i]
    if (ch === '\r') [col, wrapPending] = [0, false]
    else if (ch === '\n') [row, wrapPending] = [row + 1, false]
    else if (ch === '\b') col = Math.max(0, col - 1)
    else if (ch >= ' ') {
      if (wrapPending) [row, col, wrapPending] = [row + 1, 0, false]
      at(row)[col] = ch
      if (col === cols - 1) wrapPending = true
      else col++
    }
  }
  return rows.map((r) => Array.from(r, (c) => c ?? ' ').join('').trimEnd())
}

t.test('on a terminal, a message arriving while typed text wraps over two rows: every row of it is redrawn below the message, none left above', { skip: hasScript ? false : 'no script(1)' }, async (t) => {
  const w = await chatWorld(t)
  t.equal((await w.cli('/status\n', ['--register'])).code, 0)
  const alice = (await w.accounts.getUserByName('alice'))!.userId
  const bob = watch(await ChatClient.start({ host: '127.0.0.1', port: w.server.port, username: 'bob', password: 'bob-password', register: true, deviceName: 'test' }))
  t.teardown(() => bob.close())
  const term = onTerminal(w, 'alice-password')
  t.teardown(term.kill)
  await term.prompt()
  const typed = 'z'.repeat(150) // with the prompt "> ", 100 + 52 columns
  term.type(typed)
  const shown = () => screen(term.run.out, 100)
  await waitFor(() => `the typed text in ${JSON.stringify(shown())}`, () => shown().join('').split('z').length - 1 === typed.length || undefined)

  /** The screen ends with the message rows, then the prompt and the typed text on two rows, and shows the text nowhere else. */
  const redrawn = (messages: RegExp[]) => () => {
    const rows = shown()
    const input = rows.filter((r) => r.includes('z'))
    const last = rows.slice(-2 - messages.length)
    return (input.length === 2 && messages.every((m, i) => m.test(last[i])) && last.at(-2) === `> ${'z'.repeat(98)}` && last.at(-1) === 'z'.repeat(52)) || undefined
  }
  const first = /^\d\d:\d\d \[bob\] bob: ping one$/
  await bob.send({ kind: 'user', userId: alice }, 'ping one')
  await waitFor(() => `the redrawn input in ${JSON.stringify(shown().slice(-6))}`, redrawn([first]))

  // The cursor moved back into the first row of the text: both rows are redrawn still.
  term.type('\x1b[D'.repeat(60))
  await bob.send({ kind: 'user', userId: alice }, 'ping two')
  await waitFor(() => `the redrawn input in ${JSON.stringify(shown().slice(-6))}`, redrawn([first, /^\d\d:\d\d \[bob\] bob: ping two$/]))
  term.type('\x03')
  t.equal(await term.run.done, 0)
})
