/**
 * A deterministic discrete-event network: a virtual clock, one event queue, sans-IO
 * protocol nodes (SimNode) at string addresses, and per-direction LinkImpairments.
 *
 * Loop semantics. Every event advances the clock to its time, then:
 * - a datagram arrives: node.handleDatagram(now, bytes, from);
 * - a node's deadline is reached: node.handleTimeout(now), only if pollTimeout() <= now still;
 * - a wake (addNode, nodeWake): nothing but the servicing below;
 * - an `at` action: action(now) (call nodeWake if it queued data on a node).
 * After each node event the node is serviced: pollTransmit(now) is drained, each
 * datagram offered to the from->to link (whose deliveries become events), then
 * pollTimeout() is re-read and the node's timeout (re)scheduled (lazy deletion).
 * Deadlines in the past fire at the current time. Ties run in insertion order.
 *
 * Links: setLink(from, to) impairs one direction. A pair without a link is a perfect
 * wire: zero delay, no loss, FIFO (delivered at the send time, as a later event).
 * A datagram to an address with no node when it arrives is dropped ('no_route'),
 * which is what a NAT rebinding does to traffic for the old address.
 *
 * Determinism: everything random comes from `seed`; each link's stream is derived
 * from (seed, from, to), so adding a link does not change another link's decisions.
 */
import { SeededRng } from '../core/rng.js'
import { EventQueue } from './event-queue.js'
import { LinkImpairment, type ImpairmentConfig } from './models/impairment.js'
import {
  SimLivelockError,
  deriveSeed,
  type SimAddress,
  type SimDropReason,
  type SimNetworkOptions,
  type SimNode,
  type SimPacketData,
  type SimStats,
  type SimTraceEvent,
} from './sim-types.js'

export * from './sim-types.js'

interface NodeRecord {
  address: SimAddress
  node: SimNode
  /** Only the timeout event carrying the current token is live. */
  timeoutToken: number
  scheduledTimeoutMs: number | undefined
  wakePending: boolean
  removed: boolean
}

type SimEvent =
  | { kind: 'deliver'; id: number; from: SimAddress; to: SimAddress; bytes: Uint8Array; sentAtMs: number; duplicate: boolean; corrupted: boolean }
  | { kind: 'timeout'; rec: NodeRecord; token: number }
  | { kind: 'wake'; rec: NodeRecord }
  | { kind: 'action'; action: (nowMs: number) => void }

const MAX_TRANSMITS_PER_DRAIN = 1_000_000

export class SimNetwork {
  readonly seed: number
  readonly stats: SimStats = {
    sent: 0,
    delivered: 0,
    dropped: 0,
    droppedByReason: { loss: 0, queue: 0, mtu: 0, blackout: 0, blocked: 0, no_route: 0 },
    duplicated: 0,
    corrupted: 0,
    events: 0,
    timeouts: 0,
  }
  onEvent: ((e: SimTraceEvent) => void) | undefined
  private now: number
  private readonly queue = new EventQueue<SimEvent>()
  private readonly nodes = new Map<SimAddress, NodeRecord>()
  private readonly links = new Map<string, LinkImpairment>()
  private readonly defaultMaxEvents: number
  private nextPacketId = 0

  constructor(opts: SimNetworkOptions) {
    this.seed = opts.seed >>> 0
    this.now = opts.startMs ?? 0
    this.onEvent = opts.onEvent
    this.defaultMaxEvents = opts.maxEvents ?? 1_000_000
  }

  get nowMs(): number {
    return this.now
  }

  /** Registers a node and schedules a wake at the current time (drains anything it already queued). */
  addNode(address: SimAddress, node: SimNode): void {
    if (this.nodes.has(address)) throw new Error(`SimNetwork: address '${address}' already has a node`)
    const rec: NodeRecord = { address, node, timeoutToken: 0, scheduledTimeoutMs: undefined, wakePending: false, removed: false }
    this.nodes.set(address, rec)
    this.wake(rec)
  }

  /** Takes a node off the network: its timeouts stop, datagrams to it drop as 'no_route'. */
  removeNode(address: SimAddress): void {
    const rec = this.record(address)
    rec.removed = true
    rec.timeoutToken++
    this.nodes.delete(address)
  }

  /** NAT rebinding: the node now sends from, and receives at, `newAddress` only. */
  rebind(oldAddress: SimAddress, newAddress: SimAddress): void {
    const rec = this.record(oldAddress)
    if (this.nodes.has(newAddress)) throw new Error(`SimNetwork: address '${newAddress}' already has a node`)
    this.nodes.delete(oldAddress)
    rec.address = newAddress
    this.nodes.set(newAddress, rec)
  }

  /** Same as rebind. */
  setNodeAddress(oldAddress: SimAddress, newAddress: SimAddress): void {
    this.rebind(oldAddress, newAddress)
  }

  hasNode(address: SimAddress): boolean {
    return this.nodes.has(address)
  }

  /** "I queued something on this node, drain it now": a wake event at the current time. */
  nodeWake(address: SimAddress): void {
    this.wake(this.record(address))
  }

  /**
   * Impairment for datagrams from -> to (one direction). Setting an existing pair
   * reconfigures its LinkImpairment live (queue and Markov state kept) and returns it.
   */
  setLink(from: SimAddress, to: SimAddress, config: ImpairmentConfig): LinkImpairment {
    const key = linkKey(from, to)
    const existing = this.links.get(key)
    if (existing) {
      existing.reconfigure(config)
      return existing
    }
    const link = new LinkImpairment(config, new SeededRng(deriveSeed(this.seed, `link:${key}`)))
    this.links.set(key, link)
    return link
  }

  /** The same config on both directions (two independent links); returns [a->b, b->a]. */
  setDuplexLink(a: SimAddress, b: SimAddress, config: ImpairmentConfig): [LinkImpairment, LinkImpairment] {
    return [this.setLink(a, b, config), this.setLink(b, a, config)]
  }

  getLink(from: SimAddress, to: SimAddress): LinkImpairment | undefined {
    return this.links.get(linkKey(from, to))
  }

  /** A seeded stream for test code or nodes, stable per label and seed. */
  rngFor(label: string): SeededRng {
    return new SeededRng(deriveSeed(this.seed, `rng:${label}`))
  }

  /** Schedules an app action; a time in the past runs at the current time. */
  at(timeMs: number, action: (nowMs: number) => void): void {
    this.queue.push(Math.max(timeMs, this.now), { kind: 'action', action })
  }

  /** Sends a datagram from any address (spoofed, or a peer that is not a node) through the link, now. */
  inject(from: SimAddress, to: SimAddress, bytes: Uint8Array): void {
    this.transmit(from, to, bytes)
  }

  /** Processes one event; false when nothing is scheduled. */
  step(): boolean {
    const ev = this.popLive()
    if (!ev) return false
    this.now = Math.max(this.now, ev.timeMs)
    this.stats.events++
    this.process(ev.value)
    return true
  }

  /**
   * Runs events until predicate() holds (checked before each event), or the next
   * event is later than untilMs (the clock then stops at untilMs), or nothing is
   * left. Returns whether the predicate held (true when there is none).
   * Throws SimLivelockError naming the seed after maxEvents events.
   */
  runUntil(opts: { untilMs?: number; predicate?: () => boolean; maxEvents?: number }): boolean {
    const { untilMs, predicate } = opts
    const maxEvents = opts.maxEvents ?? this.defaultMaxEvents
    let events = 0
    for (;;) {
      if (predicate?.()) return true
      const next = this.peekLiveTime()
      if (next === undefined || (untilMs !== undefined && next > untilMs)) {
        if (untilMs !== undefined && untilMs > this.now) this.now = untilMs
        return predicate ? predicate() : true
      }
      if (events >= maxEvents) {
        throw new SimLivelockError(
          this.seed,
          `SimNetwork seed=${this.seed}: runUntil exceeded maxEvents=${maxEvents} at t=${this.now} ms ` +
            `(livelock or a too-small limit); replay with seed ${this.seed}`,
        )
      }
      this.step()
      events++
    }
  }

  private record(address: SimAddress): NodeRecord {
    const rec = this.nodes.get(address)
    if (!rec) throw new Error(`SimNetwork: no node at '${address}'`)
    return rec
  }

  private wake(rec: NodeRecord): void {
    if (rec.wakePending) return
    rec.wakePending = true
    this.queue.push(this.now, { kind: 'wake', rec })
  }

  private isStale(ev: SimEvent): boolean {
    return ev.kind === 'timeout' && (ev.rec.removed || ev.token !== ev.rec.timeoutToken)
  }

  private popLive(): { timeMs: number; value: SimEvent } | undefined {
    for (;;) {
      const ev = this.queue.pop()
      if (!ev || !this.isStale(ev.value)) return ev
    }
  }

  private peekLiveTime(): number | undefined {
    for (;;) {
      const ev = this.queue.peek()
      if (!ev) return undefined
      if (!this.isStale(ev.value)) return ev.timeMs
      this.queue.pop()
    }
  }

  private process(ev: SimEvent): void {
    switch (ev.kind) {
      case 'action':
        ev.action(this.now)
        return
      case 'wake':
        ev.rec.wakePending = false
        if (!ev.rec.removed) this.service(ev.rec)
        return
      case 'timeout': {
        const rec = ev.rec
        rec.scheduledTimeoutMs = undefined
        const deadline = this.guard(rec, () => rec.node.pollTimeout())
        if (deadline !== undefined && deadline <= this.now) {
          this.stats.timeouts++
          this.guard(rec, () => rec.node.handleTimeout(this.now))
        }
        this.service(rec)
        return
      }
      case 'deliver': {
        const data: SimPacketData = { id: ev.id, from: ev.from, to: ev.to, size: ev.bytes.length, sentAtMs: ev.sentAtMs }
        if (ev.duplicate) data.duplicate = true
        if (ev.corrupted) data.corrupted = true
        const rec = this.nodes.get(ev.to)
        if (!rec) {
          this.countDrop('no_route', data)
          return
        }
        this.stats.delivered++
        this.onEvent?.({ time: this.now, name: 'sim:packet_delivered', data })
        this.guard(rec, () => rec.node.handleDatagram(this.now, ev.bytes, ev.from))
        this.service(rec)
        return
      }
    }
  }

  /** Drains the node's transmissions, then (re)schedules its timeout. */
  private service(rec: NodeRecord): void {
    let count = 0
    for (;;) {
      if (rec.removed) return
      const out = this.guard(rec, () => rec.node.pollTransmit(this.now))
      if (!out) break
      if (++count > MAX_TRANSMITS_PER_DRAIN) {
        throw new SimLivelockError(
          this.seed,
          `SimNetwork seed=${this.seed}: node '${rec.address}' returned more than ${MAX_TRANSMITS_PER_DRAIN} datagrams in one drain at t=${this.now} ms`,
        )
      }
      this.transmit(rec.address, out.to, out.bytes)
    }
    const deadline = this.guard(rec, () => rec.node.pollTimeout())
    if (deadline === undefined || deadline === Infinity) {
      if (rec.scheduledTimeoutMs !== undefined) {
        rec.timeoutToken++
        rec.scheduledTimeoutMs = undefined
      }
      return
    }
    if (Number.isNaN(deadline)) throw new Error(`SimNetwork seed=${this.seed}: node '${rec.address}' pollTimeout() returned NaN`)
    const at = Math.max(deadline, this.now)
    if (rec.scheduledTimeoutMs === at) return
    rec.timeoutToken++
    rec.scheduledTimeoutMs = at
    this.queue.push(at, { kind: 'timeout', rec, token: rec.timeoutToken })
  }

  private transmit(from: SimAddress, to: SimAddress, bytes: Uint8Array): void {
    const id = this.nextPacketId++
    const sentAtMs = this.now
    this.stats.sent++
    const data: SimPacketData = { id, from, to, size: bytes.length, sentAtMs }
    this.onEvent?.({ time: this.now, name: 'sim:packet_sent', data })
    const link = this.links.get(linkKey(from, to))
    if (!link) {
      this.queue.push(this.now, { kind: 'deliver', id, from, to, bytes: bytes.slice(), sentAtMs, duplicate: false, corrupted: false })
      return
    }
    const duplicatedBefore = link.stats.duplicated
    const corruptedBefore = link.stats.corrupted
    const result = link.offer(this.now, bytes)
    this.stats.duplicated += link.stats.duplicated - duplicatedBefore
    this.stats.corrupted += link.stats.corrupted - corruptedBefore
    if (result.dropped !== undefined) {
      this.countDrop(result.dropped, { ...data, reason: result.dropped })
      return
    }
    let delivered = 0
    for (const d of result.deliveries) {
      delivered++
      this.queue.push(d.atMs, { kind: 'deliver', id, from, to, bytes: d.bytes, sentAtMs, duplicate: d.duplicate, corrupted: d.corrupted })
    }
    // One copy of a duplicated pair lost in the queue.
    const copies = 1 + (link.stats.duplicated - duplicatedBefore)
    for (let i = delivered; i < copies; i++) this.countDrop('queue', { ...data, reason: 'queue' })
  }

  private countDrop(reason: SimDropReason, data: SimPacketData): void {
    this.stats.dropped++
    this.stats.droppedByReason[reason]++
    this.onEvent?.({ time: this.now, name: 'sim:packet_dropped', data: { ...data, reason } })
  }

  /** Runs node code; an exception is rethrown with the address, time and seed for replay. */
  private guard<T>(rec: NodeRecord, fn: () => T): T {
    try {
      return fn()
    } catch (err) {
      if (err instanceof SimLivelockError) throw err
      const message = err instanceof Error ? err.message : String(err)
      throw new Error(`SimNetwork seed=${this.seed}: node '${rec.address}' threw at t=${this.now} ms: ${message}`, { cause: err })
    }
  }
}

const linkKey = (from: SimAddress, to: SimAddress): string => `${from}\u0000${to}`
