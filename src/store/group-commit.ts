/**
 * Group commit: durable writes (messages, receipts, group events) are queued for a
 * millisecond or so and handed to `MessageStore.applyBatch` together, so one durable commit
 * (one fsync) acknowledges many writes.
 *
 * - The first write of a batch schedules a flush after `windowMs`; reaching `maxBatch`
 *   flushes at once.
 * - At most one applyBatch is in flight. Writes arriving meanwhile form the next batch,
 *   started as soon as the current one settles (through `schedule(fn, 0)`, so the
 *   acknowledgements of the finished batch go out before the next commit blocks the loop;
 *   directly when a flush() or close() is waiting).
 * - If applyBatch rejects, every write of that batch rejects with that error: nothing of
 *   it is acknowledged (the store applies a batch all or nothing). A write the store
 *   answers with a 'failed' result (a group change that cannot apply) rejects alone.
 * - A malformed write (see `checkInboxWrite`) is refused at once with INVALID_ARGUMENT and
 *   never joins a batch, so it cannot fail the writes of other users.
 *
 * `schedule` is injectable so simulated-network tests flush deterministically.
 */
import { MAX_NAME_BYTES } from '../protocol/chat-types.js'
import { MessageStoreError, type AppliedWriteResult, type InboxWrite, type InboxWriteResult, type MessageStore } from './message-store.js'

export interface GroupCommitOptions {
  store: Pick<MessageStore, 'applyBatch'>
  /** How long the first write of a batch waits for company. Default 1 ms. */
  windowMs?: number
  /** A batch is flushed at once when it reaches this many writes. Default 512. */
  maxBatch?: number
  /** Run `fn` after `delayMs`; default setTimeout (setImmediate for 0). */
  schedule?: (fn: () => void, delayMs: number) => void
}

export interface GroupCommitStats {
  /** applyBatch calls made. */
  batches: number
  /** Writes handed to applyBatch. */
  writes: number
  maxBatchSize: number
  /** Batches whose applyBatch rejected (all their writes rejected). */
  failedBatches: number
}

interface Pending {
  write: InboxWrite
  resolve: (r: AppliedWriteResult) => void
  reject: (err: unknown) => void
  /** Settles (never rejects) when the write has been committed or has failed. */
  settled: Promise<void>
}

const defaultSchedule = (fn: () => void, delayMs: number): void => {
  if (delayMs <= 0) setImmediate(fn)
  else setTimeout(fn, delayMs)
}

const noop = (): void => {}

export class GroupCommit {
  readonly stats: GroupCommitStats = { batches: 0, writes: 0, maxBatchSize: 0, failedBatches: 0 }
  private readonly store: Pick<MessageStore, 'applyBatch'>
  private readonly windowMs: number
  private readonly maxBatch: number
  private readonly schedule: (fn: () => void, delayMs: number) => void
  private pending: Pending[] = []
  private inFlight: Promise<void> | undefined
  /** Identifies the armed timer; a timer whose token is stale does nothing when it fires. */
  private timerToken = 0
  private armed = false
  /** flush() / close() calls waiting: the next batch starts without the scheduler. */
  private forced = 0
  private closed = false

  constructor(options: GroupCommitOptions) {
    this.store = options.store
    this.windowMs = Math.max(0, options.windowMs ?? 1)
    this.maxBatch = Math.max(1, Math.floor(options.maxBatch ?? 512))
    this.schedule = options.schedule ?? defaultSchedule
  }

  /** Writes queued and not yet handed to the store. */
  get queued(): number {
    return this.pending.length
  }

  write(w: InboxWrite): Promise<AppliedWriteResult> {
    if (this.closed) return Promise.reject(new MessageStoreError('STORE_CLOSED', 'group commit is closed'))
    try {
      checkInboxWrite(w)
    } catch (err) {
      return Promise.reject(err)
    }
    let resolve!: (r: AppliedWriteResult) => void
    let reject!: (err: unknown) => void
    const promise = new Promise<AppliedWriteResult>((res, rej) => {
      resolve = res
      reject = rej
    })
    this.pending.push({ write: w, resolve, reject, settled: promise.then(noop, noop) })
    if (this.inFlight !== undefined) return promise // started when the current batch settles
    if (this.pending.length >= this.maxBatch) this.kick()
    else if (!this.armed) this.arm(this.windowMs)
    return promise
  }

  /** Commit everything queued now (without waiting for the window) and wait for it. Never rejects. */
  async flush(): Promise<void> {
    const waits = this.pending.map((p) => p.settled)
    if (this.inFlight !== undefined) waits.push(this.inFlight)
    if (waits.length === 0) return
    this.forced++
    try {
      this.kick()
      await Promise.all(waits)
    } finally {
      this.forced--
    }
  }

  /** Flush, then refuse later writes. */
  async close(): Promise<void> {
    this.closed = true
    await this.flush()
  }

  private arm(delayMs: number): void {
    const token = ++this.timerToken
    this.armed = true
    this.schedule(() => {
      if (token !== this.timerToken) return
      this.armed = false
      this.kick()
    }, delayMs)
  }

  /** Start a batch now, unless one is in flight (its end starts the next) or nothing is queued. */
  private kick(): void {
    if (this.inFlight !== undefined || this.pending.length === 0) return
    this.timerToken++
    this.armed = false
    const batch = this.pending.length <= this.maxBatch ? this.pending : this.pending.slice(0, this.maxBatch)
    this.pending = batch === this.pending ? [] : this.pending.slice(this.maxBatch)
    this.stats.batches++
    this.stats.writes += batch.length
    if (batch.length > this.stats.maxBatchSize) this.stats.maxBatchSize = batch.length
    // Set before run(): a store that throws synchronously finishes run() (and may start the
    // next batch) before run() returns.
    let done!: () => void
    this.inFlight = new Promise<void>((resolve) => { done = resolve })
    void this.run(batch).then(done, done)
  }

  /** Never rejects; clears inFlight and starts or schedules the next batch. */
  private async run(batch: Pending[]): Promise<void> {
    let results: InboxWriteResult[]
    try {
      results = await this.store.applyBatch(batch.map((p) => p.write))
      if (!Array.isArray(results) || results.length !== batch.length) {
        throw new Error(`applyBatch returned ${Array.isArray(results) ? results.length : typeof results} results for ${batch.length} writes`)
      }
    } catch (err) {
      this.stats.failedBatches++
      for (const p of batch) p.reject(err)
      this.next()
      return
    }
    for (let i = 0; i < batch.length; i++) {
      const r = results[i]
      if (r.kind === 'failed') batch[i].reject(r.error) // that write alone
      else batch[i].resolve(r)
    }
    this.next()
  }

  private next(): void {
    this.inFlight = undefined
    if (this.pending.length === 0) return
    if (this.forced > 0) this.kick()
    else this.arm(0)
  }
}

// ---- argument validation, shared by GroupCommit and the stores ----

const isId = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n > 0
const isTime = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0
/** Longest client message id accepted (the protocol uses CLIENT_MSG_ID_BYTES = 16). */
export const MAX_CLIENT_MSG_ID_BYTES = 64
const GROUP_EVENTS: ReadonlySet<string> = new Set(['created', 'joined', 'left', 'renamed'])

const invalid = (what: string): MessageStoreError => new MessageStoreError('INVALID_ARGUMENT', `invalid inbox write: ${what}`)

const checkUserIds = (ids: unknown): void => {
  if (!Array.isArray(ids)) throw invalid('inboxUserIds is not an array')
  for (const id of ids) if (!isId(id)) throw invalid(`inbox user id ${String(id)}`)
}

/**
 * Throws MessageStoreError INVALID_ARGUMENT when a write is malformed (ids not positive
 * safe integers, times not non-negative safe integers, clientMsgId not 1..64 bytes, unknown
 * enum values). Existence (users, groups, messages) is checked by the store.
 */
export const checkInboxWrite = (w: InboxWrite): void => {
  if (typeof w !== 'object' || w === null) throw invalid('not an object')
  if (!isTime(w.nowMs)) throw invalid(`nowMs ${String(w.nowMs)}`)
  switch (w.kind) {
    case 'message': {
      if (!isId(w.senderUserId)) throw invalid(`senderUserId ${String(w.senderUserId)}`)
      if (!isId(w.senderDeviceId)) throw invalid(`senderDeviceId ${String(w.senderDeviceId)}`)
      if (!(w.clientMsgId instanceof Uint8Array) || w.clientMsgId.length === 0 || w.clientMsgId.length > MAX_CLIENT_MSG_ID_BYTES) {
        throw invalid('clientMsgId must be 1..64 bytes')
      }
      const to = w.to as { kind?: unknown; userId?: unknown; groupId?: unknown } | undefined
      if (to?.kind === 'user') {
        if (!isId(to.userId)) throw invalid(`to.userId ${String(to.userId)}`)
      } else if (to?.kind === 'group') {
        if (!isId(to.groupId)) throw invalid(`to.groupId ${String(to.groupId)}`)
      } else {
        throw invalid('to')
      }
      if (typeof w.body !== 'string') throw invalid('body is not a string')
      checkUserIds(w.inboxUserIds)
      return
    }
    case 'receipt':
      if (!isId(w.msgId)) throw invalid(`msgId ${String(w.msgId)}`)
      if (w.status !== 'delivered' && w.status !== 'read') throw invalid(`receipt status ${String(w.status)}`)
      if (!isId(w.byUserId)) throw invalid(`byUserId ${String(w.byUserId)}`)
      return
    case 'fin':
      if (!isId(w.userId)) throw invalid(`userId ${String(w.userId)}`)
      if (!isId(w.deviceId)) throw invalid(`deviceId ${String(w.deviceId)}`)
      if (!isTime(w.version)) throw invalid(`version ${String(w.version)}`)
      if (!isTime(w.maxReceiptEntries)) throw invalid(`maxReceiptEntries ${String(w.maxReceiptEntries)}`)
      return
    case 'group_event': {
      if (!GROUP_EVENTS.has(w.event)) throw invalid(`group event ${String(w.event)}`)
      const creates = w.applyChange === true && w.event === 'created'
      if (creates ? w.groupId !== 0 : !isId(w.groupId)) throw invalid(`groupId ${String(w.groupId)}${creates ? ' (0 for a group to create)' : ''}`)
      if (w.applyChange !== undefined && typeof w.applyChange !== 'boolean') throw invalid('applyChange is not a boolean')
      if (!isId(w.actorUserId)) throw invalid(`actorUserId ${String(w.actorUserId)}`)
      if (!isId(w.subjectUserId)) throw invalid(`subjectUserId ${String(w.subjectUserId)}`)
      if (typeof w.name !== 'string') throw invalid('name is not a string')
      if (w.applyChange === true && (w.event === 'created' || w.event === 'renamed')) checkGroupName(w.name)
      checkUserIds(w.inboxUserIds)
      return
    }
    default:
      throw invalid(`kind ${String((w as { kind?: unknown }).kind)}`)
  }
}

/** inboxUserIds without repeats, first occurrence kept (the interface asks for "each once"). */
export const uniqueUserIds = (ids: readonly number[]): number[] => {
  if (ids.length <= 1) return ids.slice()
  if (ids.length === 2) return ids[0] === ids[1] ? [ids[0]] : ids.slice()
  return [...new Set(ids)]
}

/** Group names: 1..MAX_NAME_BYTES bytes of UTF-8 (the wire limit). Throws INVALID_ARGUMENT. */
export const checkGroupName = (name: string): void => {
  if (typeof name !== 'string' || name.length === 0 || Buffer.byteLength(name, 'utf8') > MAX_NAME_BYTES) {
    throw new MessageStoreError('INVALID_ARGUMENT', `invalid group name ${JSON.stringify(name)}: use 1-${MAX_NAME_BYTES} bytes`)
  }
}

/**
 * The versions of a duplicate message, in the order of the retried write's inboxUserIds
 * (users it no longer lists last, by userId), so both stores answer alike.
 */
export const orderVersionsLike = (
  versions: Array<{ userId: number; version: number }>,
  inboxUserIds: readonly number[],
): Array<{ userId: number; version: number }> => {
  const rank = new Map<number, number>()
  inboxUserIds.forEach((id, i) => { if (!rank.has(id)) rank.set(id, i) })
  const r = (id: number): number => rank.get(id) ?? inboxUserIds.length
  return versions.slice().sort((a, b) => r(a.userId) - r(b.userId) || a.userId - b.userId || a.version - b.version)
}
