/** Password prompts for the command-line tools: one line read from a terminal without echo. */

export interface HiddenInputIo {
  stdin: NodeJS.ReadableStream & { setRawMode?: (mode: boolean) => unknown }
  stderr: { write(s: string): unknown }
}

/** Ctrl-C at the prompt. */
export class InterruptedError extends Error {
  constructor() {
    super('interrupted')
    this.name = 'InterruptedError'
  }
}

/** Read a line in raw mode, echoing nothing; Enter or Ctrl-D ends it, Ctrl-C rejects with InterruptedError. */
export const readHiddenLine = (prompt: string, io: HiddenInputIo): Promise<string> =>
  new Promise((resolve, reject) => {
    const stdin = io.stdin
    io.stderr.write(prompt)
    stdin.setRawMode?.(true)
    stdin.setEncoding('utf8')
    stdin.resume()
    let line = ''
    const finish = (): void => {
      stdin.setRawMode?.(false)
      stdin.pause()
      stdin.off('data', onData)
      io.stderr.write('\n')
    }
    const onData = (chunk: string | Buffer): void => {
      for (const ch of String(chunk)) {
        if (ch === '\r' || ch === '\n' || ch === '\u0004') {
          finish()
          resolve(line)
          return
        }
        if (ch === '\u0003') {
          finish()
          reject(new InterruptedError())
          return
        }
        if (ch === '\u007f' || ch === '\b') line = [...line].slice(0, -1).join('')
        else line += ch
      }
    }
    stdin.on('data', onData)
  })
