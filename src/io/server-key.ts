/**
 * The server's static X25519 key pair, kept in a file (created on first start, mode
 * 0600). Clients pin its public key, printed by the server as hex.
 */
import { readFileSync } from 'node:fs'
import { createFileOnce } from './durable-file.js'
import { type KeyPair, generateStaticKeyPair, staticKeyPairFromPrivate } from '../core/crypto/noise-nk.js'
import { CryptoRng } from './crypto-rng.js'
import { nodeCryptoBackend } from './node-crypto-backend.js'

export const toHex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex')

/** Parse a 32-byte key given as 64 hex digits; a clear error otherwise. */
export const parseKeyHex = (text: string, what: string): Uint8Array => {
  const clean = text.trim().toLowerCase()
  if (!/^[0-9a-f]{64}$/.test(clean)) throw new Error(`${what} must be 64 hex digits (a 32-byte X25519 key), got ${JSON.stringify(text.slice(0, 80))}`)
  return new Uint8Array(Buffer.from(clean, 'hex'))
}

export const loadOrCreateServerKey = (path: string): { keyPair: KeyPair; created: boolean } => {
  let text: string | undefined
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new Error(`server key file ${path}: ${(err as Error).message}`, { cause: err })
  }
  if (text !== undefined) {
    let parsed: { privateKey?: unknown } | null
    try {
      parsed = JSON.parse(text) as { privateKey?: unknown } | null
    } catch {
      throw new Error(`server key file ${path} is not JSON`)
    }
    if (typeof parsed !== 'object' || parsed === null || typeof parsed.privateKey !== 'string') throw new Error(`server key file ${path} has no "privateKey"`)
    return { keyPair: staticKeyPairFromPrivate(parseKeyHex(parsed.privateKey, `${path} privateKey`), nodeCryptoBackend), created: false }
  }
  const keyPair = generateStaticKeyPair({ rng: new CryptoRng(), backend: nodeCryptoBackend })
  const created = JSON.stringify({ privateKey: toHex(keyPair.privateKey), publicKey: toHex(keyPair.publicKey) }, null, 2) + '\n'
  // Another process created it meanwhile: use theirs.
  if (!createFileOnce({ path, data: created, mode: 0o600 })) return loadOrCreateServerKey(path)
  return { keyPair, created: true }
}
