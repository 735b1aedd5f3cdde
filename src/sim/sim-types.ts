/**
 * The simulator's public types: the sans-IO node interface, trace events, stats,
 * the livelock error, and seed derivation. SimNetwork itself is in network.ts.
 */
import type { DropReason } from './models/impairment.js'

export type SimAddress = string

export interface SimNode {
  handleDatagram(nowMs: number, bytes: Uint8Array, from: SimAddress): void
  handleTimeout(nowMs: number): void
  pollTransmit(nowMs: number): { bytes: Uint8Array; to: SimAddress } | undefined
  /** Absolute ms of the node's next deadline. */
  pollTimeout(): number | undefined
}

export type SimDropReason = DropReason | 'no_route'

export type SimPacketData = {
  /** Per-network datagram number (a duplicate shares its original's id). */
  id: number
  from: SimAddress
  to: SimAddress
  size: number
  sentAtMs: number
  reason?: SimDropReason
  duplicate?: boolean
  corrupted?: boolean
}

export interface SimTraceEvent {
  time: number
  name: 'sim:packet_sent' | 'sim:packet_dropped' | 'sim:packet_delivered'
  data: SimPacketData
}

export interface SimStats {
  /** Datagrams taken from nodes' pollTransmit (and inject). */
  sent: number
  /** Copies handed to a node's handleDatagram. */
  delivered: number
  /** Total of droppedByReason. */
  dropped: number
  droppedByReason: Record<SimDropReason, number>
  duplicated: number
  corrupted: number
  /** Events processed (stale timeout entries not counted). */
  events: number
  /** handleTimeout calls. */
  timeouts: number
}

export interface SimNetworkOptions {
  seed: number
  startMs?: number
  onEvent?: (e: SimTraceEvent) => void
  /** Default maxEvents for runUntil (1,000,000). */
  maxEvents?: number
}

/** Thrown by runUntil past maxEvents, or when a node keeps transmitting without end. */
export class SimLivelockError extends Error {
  readonly seed: number
  constructor(seed: number, message: string) {
    super(message)
    this.name = 'SimLivelockError'
    this.seed = seed
  }
}

/** 32-bit seed for a labelled sub-stream: FNV-1a of the label mixed with the seed. */
export function deriveSeed(seed: number, label: string): number {
  let h = 0x811c9dc5 ^ (seed >>> 0)
  for (let i = 0; i < label.length; i++) {
    h ^= label.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b)
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35)
  return (h ^ (h >>> 16)) >>> 0
}
