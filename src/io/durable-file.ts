/**
 * Create a file once, whole and durable: written beside under a temporary name, fsynced,
 * then hard-linked to its name (which fails if the file exists: another process won) and
 * the directory fsynced. A power cut or a kill at any moment leaves either no file or the
 * whole one, never an empty key file that would stop every later start.
 */
import { closeSync, fsyncSync, linkSync, mkdirSync, openSync, rmSync, writeSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { basename, dirname, join } from 'node:path'

/** Returns false when `path` already existed (nothing written). Creates the directory (mode 0700) if needed. */
export const createFileOnce = (o: { path: string; data: string | Uint8Array; mode: number }): boolean => {
  const dir = dirname(o.path)
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  const temp = join(dir, `.${basename(o.path)}.${randomBytes(6).toString('hex')}.tmp`)
  const fd = openSync(temp, 'wx', o.mode)
  try {
    const bytes = typeof o.data === 'string' ? Buffer.from(o.data) : o.data
    let written = 0
    while (written < bytes.length) written += writeSync(fd, bytes, written)
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
  try {
    linkSync(temp, o.path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false
    throw err
  } finally {
    rmSync(temp, { force: true })
  }
  const dirFd = openSync(dir, 'r')
  try {
    fsyncSync(dirFd)
  } finally {
    closeSync(dirFd)
  }
  return true
}
