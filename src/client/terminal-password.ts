/**
 * The chat CLI's password source for ChatClient: asked for (hidden) on the terminal, at
 * start and again whenever the client needs it later (the stored session token was
 * refused, e.g. after an admin kick), also while the chat's readline owns the terminal.
 * Where it cannot ask, it throws with the true reason (ChatClient then gives up).
 */
import type { Interface } from 'node:readline'
import { type HiddenInputIo, readHiddenLine } from '../io/hidden-input.js'

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

export const terminalPassword =
  (opts: TerminalPasswordOptions) =>
  async (): Promise<string> => {
    const stdin = opts.io.stdin
    if (stdin.isTTY !== true) throw new Error('input is not a terminal to ask on: set PIGEON_PASSWORD')
    if (opts.readline() === undefined) return readHiddenLine(opts.prompt, opts.io)
    if (!opts.terminal) throw new Error('output is not a terminal, needed to ask while chatting: set PIGEON_PASSWORD')
    // readline reads keypress events, decoded from 'data' only while someone listens to
    // them: without its listeners the password is neither echoed nor taken as a chat line.
    const keypress = stdin.listeners('keypress') as Array<(...args: unknown[]) => void>
    stdin.removeAllListeners('keypress')
    opts.onAsk?.(true)
    try {
      return await readHiddenLine(opts.prompt, opts.io)
    } finally {
      for (const l of keypress) stdin.on('keypress', l)
      // readHiddenLine leaves the terminal cooked and paused; readline edits lines in raw mode.
      stdin.setRawMode?.(true)
      stdin.resume()
      opts.onAsk?.(false)
    }
  }
