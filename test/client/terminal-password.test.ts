/**
 * The chat CLI's password source over a fake terminal: asked again while readline owns
 * the terminal, without echo and without the password becoming a chat line; where it
 * cannot ask, the error says why.
 */
import { PassThrough } from 'node:stream'
import { createInterface } from 'node:readline'
import { setImmediate as turn } from 'node:timers/promises'
import t from 'tap'
import { PASSWORD_ATTEMPTS, terminalPassword } from '../../src/client/terminal-password.js'

const fakeTerminal = (isTTY = true) => {
  const rawModes: boolean[] = []
  const stdin = Object.assign(new PassThrough(), {
    isTTY,
    setRawMode: (mode: boolean) => {
      rawModes.push(mode)
      return stdin
    },
  })
  const stdout = new PassThrough()
  let shown = ''
  stdout.on('data', (d) => (shown += d))
  const stderr = { text: '', write: (s: string) => (stderr.text += s) }
  return { stdin, stdout, stderr, rawModes, shown: () => shown }
}

t.test('while chatting on a terminal: asked hidden, not taken as a line, and readline works again after', async (t) => {
  const term = fakeTerminal()
  const rl = createInterface({ input: term.stdin, output: term.stdout, terminal: true })
  t.teardown(() => rl.close())
  const lines: string[] = []
  rl.on('line', (l) => lines.push(l))
  const asking: boolean[] = []
  const ask = terminalPassword({ prompt: 'password for alice: ', io: { stdin: term.stdin, stderr: term.stderr }, readline: () => rl, terminal: true, onAsk: (a) => asking.push(a) })

  const password = ask()
  await turn()
  term.stdin.write('s3cret\r')
  t.equal(await password, 's3cret')
  t.equal(term.stderr.text, 'password for alice: \n')
  t.same(lines, [], 'not a chat line')
  t.notMatch(term.shown(), /s3cret/, 'not echoed')
  t.same(asking, [true, false])
  t.equal(term.rawModes.at(-1), true, 'raw mode again, for readline')

  term.stdin.write('hello\r')
  await turn()
  t.same(lines, ['hello'], 'readline reads lines again')
  t.match(term.shown(), /hello/, 'and echoes them')
})

t.test('where it cannot ask, the reason is true', async (t) => {
  const piped = fakeTerminal(false)
  const rl = createInterface({ input: piped.stdin, terminal: false })
  t.teardown(() => rl.close())
  await t.rejects(terminalPassword({ prompt: 'p: ', io: piped, readline: () => undefined, terminal: false })(), /input is not a terminal to ask on: set PIGEON_PASSWORD/)
  await t.rejects(terminalPassword({ prompt: 'p: ', io: piped, readline: () => rl, terminal: false })(), /input is not a terminal/)
  const half = fakeTerminal(true)
  await t.rejects(terminalPassword({ prompt: 'p: ', io: half, readline: () => rl, terminal: false })(), /output is not a terminal/)
})

t.test('a refused password is asked for again, saying so, a few times; the one typed is kept until refused', async (t) => {
  const term = fakeTerminal()
  const ask = terminalPassword({ prompt: 'password for alice: ', io: { stdin: term.stdin, stderr: term.stderr }, readline: () => undefined, terminal: true })
  const typed = async (password: string): Promise<string> => {
    const p = ask()
    await turn()
    term.stdin.write(`${password}\r`)
    return p
  }
  t.equal(await typed('wrong-1'), 'wrong-1')
  t.equal(await ask(), 'wrong-1', 'kept: a reconnect does not ask again')
  t.equal(term.stderr.text, 'password for alice: \n', 'asked once')

  t.ok(ask.refused(), 'may ask again')
  term.stderr.text = ''
  t.equal(await typed('wrong-2'), 'wrong-2')
  t.equal(term.stderr.text, `wrong password, try again (attempt 2 of ${PASSWORD_ATTEMPTS})\npassword for alice: \n`)
  t.ok(ask.refused())
  t.equal(await typed('right'), 'right')
  ask.accepted()
  t.ok(ask.refused(), 'counted from one again after an accepted password')
  t.ok(ask.refused())
  t.notOk(ask.refused(), `no more after ${PASSWORD_ATTEMPTS} wrong ones in a row`)
})
