/**
 * Making text from the network safe to show on a terminal. Message bodies, user, group
 * and device names, and server error texts are chosen by other people: printed raw, an
 * escape sequence in them can set the window title, clear the screen or move the cursor
 * over real lines, a carriage return or newline can forge a line that seems to come
 * from someone else, and bidi overrides or invisible characters can disguise what text
 * says.
 *
 * Everything that could do so is replaced by a visible escape, in C style so it reads as
 * what it is: ESC is shown as `\e`, BEL `\a`, BS `\b`, VT `\v`, FF `\f`, CR `\r`
 * (in names also TAB `\t` and LF `\n`), other C0 controls, DEL and C1 controls
 * (U+0080-U+009F, which terminals read like ESC sequences: U+009B is CSI) as `\xHH`, and
 * format characters (Unicode Cf: bidi embeddings, overrides and isolates U+202A-202E and
 * U+2066-2069, marks, zero-width spaces, BOM, ...), line and paragraph separators and the
 * blank Hangul fillers as `\u{HHHH}`. The result consists of printable characters only,
 * so escaping again changes nothing. A literal backslash is left as it is: someone can
 * send the text `\e`, which prints as those two harmless characters.
 *
 * Bodies keep TAB, and each newline starts a continuation line indented under the
 * message with a bar (CONTINUATION), which no real message, event or status line begins
 * with; they also keep ZERO WIDTH (NON-)JOINER, which emoji sequences and several scripts
 * need and which cannot reorder or hide text. Names keep neither.
 */

/** How the second and later lines of a message body begin. */
export const CONTINUATION = '      │ '

const NAMED: Record<string, string> = { '\x07': '\\a', '\b': '\\b', '\t': '\\t', '\n': '\\n', '\v': '\\v', '\f': '\\f', '\r': '\\r', '\x1b': '\\e' }

// C0, DEL, C1, format characters, line/paragraph separators, Hangul fillers (render as blank).
const UNSAFE = /[\0-\x1f\x7f-\x9f\p{Cf}\p{Zl}\p{Zp}\u115f\u1160\u3164\uffa0]/gu
const JOINERS = new Set(['\u200c', '\u200d'])

const escapeChar = (ch: string): string => {
  const named = NAMED[ch]
  if (named !== undefined) return named
  const cp = ch.codePointAt(0) ?? 0
  return cp <= 0x9f ? `\\x${cp.toString(16).padStart(2, '0')}` : `\\u{${cp.toString(16).toUpperCase().padStart(4, '0')}}`
}

/** A name or other one-line text from the network (group, user and device names, error texts). */
export const safeName = (text: string): string => text.replace(UNSAFE, escapeChar)

const bodyLine = (line: string): string => line.replace(UNSAFE, (ch) => (ch === '\t' || JOINERS.has(ch) ? ch : escapeChar(ch)))

/** A message body: each newline (or CRLF) starts a CONTINUATION line; see the module comment. */
export const safeBody = (text: string): string => text.split(/\r?\n/).map(bodyLine).join(`\n${CONTINUATION}`)

/**
 * Output lines about to be written, as a last line of defence: whatever is still a
 * control or format character is escaped; newlines (of multi-line output the UI made
 * itself) and tabs are kept.
 */
export const safeOutput = (text: string): string => text.split('\n').map(bodyLine).join('\n')

/** A body shortened to one line of at most `max` characters, quoted. */
export const snippet = (body: string, max = 30): string => {
  const chars = [...body.replace(/\s+/g, ' ')]
  return `"${safeName(chars.length > max ? `${chars.slice(0, max - 1).join('')}…` : chars.join(''))}"`
}
