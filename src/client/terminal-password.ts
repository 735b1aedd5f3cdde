/**
 * The chat CLI's password source for ChatClient: asked for (hidden) on the terminal, at
 * start and again whenever the client needs it later (the stored session token was
 * refused, e.g. after an admin kick), also while the chat's readline owns the terminal.
 * Where it cannot ask, it throws with the true reason (ChatClient then gives up).
 *
 * The password typed is kept until the server refuses it (refused()): the CLI then
 * logs in again and it is asked for once more, saying the last one was wrong, up to
 * PASSWORD_ATTEMPTS wrong passwords in a row.
 */
import type { Interface } from 'node:readline'
import { type HiddenInputIo, readHiddenLine } from '../io/hidden-input.js'

/** Wrong passwords in a row before the CLI gives up (the server also limits guesses). */
export const PASSWORD_ATTEMPTS = 3

export interface TerminalPasswordOptions {
  prompt: string
  io: HiddenInputIo & { stdin: HiddenInputIo['stdin'] & { isTTY?: boolean } }
  /** The chat's line reader, once it exists. */
  readline: () => Interface | undefined
  /** Whether that reader runs in terminal mode (input and output are a terminal). */
  terminal: boolean
  /** Called with true before asking while chatting, false after (hold other output meanwhile). */
  onAsk?: (asking: boolean) => void
}

export interface PasswordSource {
  /** The password: the one typed last, or asked for now. ChatClient's `password` option. */
  (): Promise<string>
  /** The server refused it: forgotten; true when it may be asked for again, false after PASSWORD_ATTEMPTS. */
  refused(): boolean
  /** The server accepted it: the next wrong password counts from one again. */
  accepted(): void
}

export const terminalPassword = (opts: TerminalPasswordOptions): PasswordSource => {
  let typed: string | undefined
  let wrong = 0
  const ask = async (): Promise<string> => {
    if (typed !== undefined) return typed
    const again = wrong === 0 ? '' : `wrong password, try again (attempt ${wrong + 1} of ${PASSWORD_ATTEMPTS})\n`
    typed = await askOnce(opts, again + opts.prompt)
    return typed
  }
  return Object.defineProperties(ask, {
    refused: {
      value: (): boolean => {
        typed = undefined
        wrong++
        return wrong < PASSWORD_ATTEMPTS
      },
    },
    accepted: { value: (): void => void (wrong = 0) },
  }) as PasswordSource
}

const askOnce = async (opts: TerminalPasswordOptions, prompt: string): Promise<string> => {
  const stdin = opts.io.stdin
  if (stdin.isTTY !== true) throw new Error('input is not a terminal to ask on: set PIGEON_PASSWORD')
  if (opts.readline() === undefined) return readHiddenLine(prompt, opts.io)
  if (!opts.terminal) throw new Error('output is not a terminal, needed to ask while chatting: set PIGEON_PASSWORD')
  // readline reads keypress events, decoded from 'data' only while someone listens to
  // them: without its listeners the password is neither echoed nor taken as a chat line.
  const keypress = stdin.listeners('keypress') as Array<(...args: unknown[]) => void>
  stdin.removeAllListeners('keypress')
  opts.onAsk?.(true)
  try {
    return await readHiddenLine(prompt, opts.io)
  } finally {
    for (const l of keypress) stdin.on('keypress', l)
    // readHiddenLine leaves the terminal cooked and paused; readline edits lines in raw mode.
    stdin.setRawMode?.(true)
    stdin.resume()
    opts.onAsk?.(false)
  }
}
