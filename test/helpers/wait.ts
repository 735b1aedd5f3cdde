/**
 * Waiting for conditions in tests over real sockets, without sleeping: a condition is
 * checked again only when something a test can observe happened — any event of a
 * watched emitter (clients, raw sessions, an in-process server's endpoint) or an
 * explicit pulse() — one turn later, so the handler that caused it has finished.
 */
import { EventEmitter } from 'node:events'

const activity = new EventEmitter()
activity.setMaxListeners(0)
let pulseQueued = false

/** Something happened: every pending waitFor checks its condition again (once per turn). */
export const pulse = (): void => {
  if (pulseQueued) return
  pulseQueued = true
  setImmediate(() => {
    pulseQueued = false
    activity.emit('pulse')
  })
}

/** Every event `emitter` emits from now on pulses waitFor. Returns the emitter. */
export const watch = <E extends NodeJS.EventEmitter>(emitter: E): E => {
  const target = emitter as unknown as { emit: (name: string | symbol, ...args: unknown[]) => boolean }
  const emit = target.emit
  target.emit = function (this: unknown, name, ...args) {
    const handled = emit.call(this, name, ...args)
    pulse()
    return handled
  }
  return emitter
}

/**
 * Resolve with `check`'s first result other than undefined/false, checked now and after
 * every pulse (see watch), or fail after `timeoutMs`. The deadline only bounds a failing
 * test; a passing one never waits for a timer.
 */
export const waitFor = <T>(what: string | (() => string), check: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 15_000): Promise<T> =>
  new Promise<T>((resolve, reject) => {
    let settled = false
    let checking = false
    let again = false
    const finish = (): void => {
      settled = true
      activity.off('pulse', attempt)
      clearTimeout(timer)
    }
    const attempt = (): void => {
      if (settled) return
      if (checking) {
        again = true // a pulse during an async check: check once more after it
        return
      }
      checking = true
      Promise.resolve()
        .then(check)
        .then(
          (v) => {
            checking = false
            if (settled) return
            if (v !== undefined && v !== false) {
              finish()
              resolve(v)
            } else if (again) {
              again = false
              attempt()
            }
          },
          (err: unknown) => {
            checking = false
            if (settled) return
            finish()
            reject(err)
          },
        )
    }
    const timer = setTimeout(() => {
      if (settled) return
      finish()
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === 'string' ? what : what()}`))
    }, timeoutMs)
    activity.on('pulse', attempt)
    attempt()
  })
