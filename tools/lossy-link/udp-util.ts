/** Small helpers of the UDP proxy: address checks, capture comments, log summaries. */
import type { Socket } from 'node:dgram'
import { isIPv6 } from 'node:net'
import type { Delivery } from '../../src/sim/models/index.js'
import type { LinkResult } from './link.js'

// Addresses are always IP literals here: answer lookups synchronously instead of a
// dns.lookup + nextTick per datagram.
export const literalLookup = (address: string, family: unknown, cb: (err: Error | null, address: string, family: number) => void): void =>
  cb(null, address, isIPv6(address) ? 6 : 4)

export const isUnspecified = (host: string): boolean => host === '0.0.0.0' || host === '::'
export const isLoopback = (host: string): boolean => host === '::1' || host.startsWith('127.') || host.startsWith('::ffff:127.')

export const closeQuietly = (socket: Socket): void => {
  try {
    socket.close()
  } catch {
    // already closed
  }
}

export const dropComment = (r: LinkResult): string | undefined => (r.dropped !== undefined ? `lossy-link: dropped (${r.dropped})` : undefined)

export const sendComment = (d: Delivery): string | undefined =>
  d.duplicate || d.corrupted ? `lossy-link:${d.duplicate ? ' duplicate' : ''}${d.corrupted ? ' corrupted' : ''}` : undefined

export const summarize = (r: LinkResult) =>
  r.dropped !== undefined ? { dropped: r.dropped } : { deliveries: r.deliveries.map((d) => ({ atMs: d.atMs, duplicate: d.duplicate, corrupted: d.corrupted })) }
