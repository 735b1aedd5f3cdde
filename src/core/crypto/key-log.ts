/**
 * Key log lines, in the spirit of NSS's SSLKEYLOGFILE: one line per secret,
 *
 *   PIGEON_CLIENT_TRAFFIC_SECRET <handshake id hex> <client -> server secret hex>
 *   PIGEON_SERVER_TRAFFIC_SECRET <handshake id hex> <server -> client secret hex>
 *
 * The handshake id is the client's ephemeral public key: the first 32 bytes of Noise
 * message 1, visible in the capture (as TLS's client_random), so an inspector can match
 * a capture to its secrets and from there to the connection ids of the INITIAL packets.
 * Later key generations follow from these secrets ("ku" label), so one pair suffices.
 * Pure formatting and parsing: writing the file (off by default) belongs to src/io.
 */
import type { SessionKeys } from './noise-nk.js'

export const KEY_LOG_CLIENT_LABEL = 'PIGEON_CLIENT_TRAFFIC_SECRET'
export const KEY_LOG_SERVER_LABEL = 'PIGEON_SERVER_TRAFFIC_SECRET'

const toHex = (b: Uint8Array): string => {
  let s = ''
  for (let i = 0; i < b.length; i++) s += (b[i] < 16 ? '0' : '') + b[i].toString(16)
  return s
}

const fromHex = (s: string): Uint8Array | undefined => {
  if (s.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(s)) return undefined
  const out = new Uint8Array(s.length / 2)
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16)
  return out
}

/** The two lines for one handshake, each ending with "\n". `id` defaults to keys.clientEphemeralPublicKey. */
export const formatKeyLog = (o: { keys: SessionKeys; id?: Uint8Array }): string => {
  const id = toHex(o.id ?? o.keys.clientEphemeralPublicKey)
  return `${KEY_LOG_CLIENT_LABEL} ${id} ${toHex(o.keys.clientToServer)}\n${KEY_LOG_SERVER_LABEL} ${id} ${toHex(o.keys.serverToClient)}\n`
}

export interface KeyLogEntry {
  clientToServer?: Uint8Array
  serverToClient?: Uint8Array
}

/**
 * Reads a key log (for the inspector): handshake id hex (lowercase) -> secrets. Blank
 * lines, "#" comments, unknown labels and malformed lines are skipped, as NSS does.
 */
export const parseKeyLog = (text: string): Map<string, KeyLogEntry> => {
  const out = new Map<string, KeyLogEntry>()
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) continue
    const [label, idHex, secretHex, ...extra] = line.split(/\s+/)
    if (extra.length > 0 || idHex === undefined || secretHex === undefined) continue
    const secret = fromHex(secretHex)
    if (secret === undefined || secret.length !== 32 || fromHex(idHex) === undefined) continue
    const id = idHex.toLowerCase()
    const entry = out.get(id) ?? {}
    if (label === KEY_LOG_CLIENT_LABEL) entry.clientToServer = secret
    else if (label === KEY_LOG_SERVER_LABEL) entry.serverToClient = secret
    else continue
    out.set(id, entry)
  }
  return out
}
