/**
 * display.ts: text from the network made safe for a terminal, with the strings a reviewer
 * used to take over a peer's terminal (title, screen clear, forged and overwritten lines).
 */
import t from 'tap'
import { CONTINUATION, safeBody, safeName, safeOutput, snippet } from '../../src/client/display.js'

/** Nothing a terminal would act on: no C0 (but LF / TAB), DEL, C1, format or separator characters. */
const inert = (s: string): boolean => !/[\0-\x08\x0b-\x1f\x7f-\x9f\p{Cf}\p{Zl}\p{Zp}]/u.test(s)

t.test('escape sequences, C1 controls, NUL, BEL, DEL and bidi / invisible format characters become visible escapes', async (t) => {
  t.equal(safeName('\x1b]0;PWNED\x07\x1b[2J'), '\\e]0;PWNED\\a\\e[2J')
  t.equal(safeName('\r\x1b[K* bob is offline'), '\\r\\e[K* bob is offline')
  t.equal(safeName('a\u009b2Jb\u0085c'), 'a\\x9b2Jb\\x85c', 'C1: CSI and NEL')
  t.equal(safeName('nul\0 del\x7f bs\b ff\f vt\v x\x01'), 'nul\\x00 del\\x7f bs\\b ff\\f vt\\v x\\x01')
  t.equal(safeName('evil\u202Egnp.exe'), 'evil\\u{202E}gnp.exe', 'right-to-left override')
  for (const cp of [0x202a, 0x202b, 0x202c, 0x202d, 0x202e, 0x2066, 0x2067, 0x2068, 0x2069, 0x200b, 0x200e, 0x200f, 0x2060, 0xfeff, 0x00ad, 0x2028, 0x2029, 0x3164, 0xe0041]) {
    const ch = String.fromCodePoint(cp)
    t.equal(safeName(`x${ch}y`), `x\\u{${cp.toString(16).toUpperCase().padStart(4, '0')}}y`, `U+${cp.toString(16)}`)
    t.equal(safeBody(`x${ch}y`), safeName(`x${ch}y`))
  }
  t.equal(safeName('bob\n06:01 [bob] bob: FAKE'), 'bob\\n06:01 [bob] bob: FAKE', 'a newline in a name is escaped')
  t.equal(safeName('a\tb'), 'a\\tb')
  t.equal(safeName('héllo 你好 👩‍👩‍👧 ❤️'), 'héllo 你好 👩\\u{200D}👩\\u{200D}👧 ❤️', 'names: even joiners are shown')
  t.equal(safeBody('héllo 你好 👩‍👩‍👧 ❤️\tx'), 'héllo 你好 👩‍👩‍👧 ❤️\tx', 'bodies keep printable text, joiners and tabs')
  t.equal(safeName(safeName('\x1b\u009b\u202e\n')), safeName('\x1b\u009b\u202e\n'), 'escaping again changes nothing')
  t.ok(inert(safeName('\x1b\x07\0\u009b\u202e\u2066\n\r\t\x7f')))
})

t.test('a newline in a body starts an indented continuation line that cannot pass for a message line', async (t) => {
  const shown = safeBody('hi\n06:01 [bob] bob: FAKE\r\n\x1b[2Jend')
  t.same(shown.split('\n'), ['hi', `${CONTINUATION}06:01 [bob] bob: FAKE`, `${CONTINUATION}\\e[2Jend`])
  for (const line of shown.split('\n').slice(1)) t.match(line, /^ +│ /, 'starts with the bar, not a time')
  t.equal(safeBody('a\rb'), 'a\\rb', 'a lone CR cannot return to overwrite the line')
})

t.test('snippet: one line, shortened, escaped', async (t) => {
  t.equal(snippet('a\u009b2J\x1b]0;x\x07'), '"a\\x9b2J\\e]0;x\\a"')
  t.equal(snippet('one\ntwo\u2028three'), '"one two three"')
  t.equal(snippet('x'.repeat(40), 10), `"${'x'.repeat(9)}…"`)
  t.equal(snippet('\u202e'.repeat(40), 3), '"\\u{202E}\\u{202E}…"', 'shortened before escaping')
})

t.test('safeOutput keeps the UI own newlines and tabs and escapes everything else', async (t) => {
  t.equal(safeOutput('Commands:\n  /list\tx'), 'Commands:\n  /list\tx')
  t.equal(safeOutput('a\x1b[2J\u009b\r\nb\u202e'), 'a\\e[2J\\x9b\\r\nb\\u{202E}')
})
