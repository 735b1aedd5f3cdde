/**
 * What a chat device keeps between runs: the sync cursor (the last inbox version it
 * holds), the outbox (messages not yet acknowledged by the server, resent after a
 * reconnect or a restart), read receipts not yet sent, and the session token (for
 * RESUME without the password).
 *
 * FileClientState keeps them in one append-only journal of JSON lines, `state.jsonl`,
 * every record fsynced before the call returns. On open the journal is folded and
 * rewritten compactly (write a temporary file, fsync, rename, fsync the directory);
 * unreadable lines (a torn last write after a crash, or damage) are counted and skipped
 * without losing the records around them.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeFileSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { CLIENT_MSG_ID_BYTES, type Peer } from '../protocol/chat-types.js'

/** A message the server has not yet acknowledged. */
export interface OutboxEntry {
  clientMsgId: Uint8Array
  to: Peer
  body: string
  /** Local time when the user sent it (ms since the epoch). */
  createdAtMs: number
}

export interface ClientState {
  /** The last inbox version this device holds (0: nothing yet). */
  cursor: number
  /** Unacknowledged messages, oldest first. */
  outbox: OutboxEntry[]
  /** Message ids the user has read whose READ has not gone out yet. */
  reads: number[]
  /** Session token from the last login, for RESUME. */
  token: Uint8Array | undefined
}

export interface ClientStateStore {
  /** The state as stored (a copy: later changes to the store do not alter it). */
  load(): ClientState
  saveCursor(version: number): void
  /** Durable before it returns: the message may be transmitted once this returns. */
  addOutbox(entry: OutboxEntry): void
  removeOutbox(clientMsgId: Uint8Array): void
  /** Durable before it returns (the application may then forget the messages were unread). */
  addReads(msgIds: number[]): void
  removeReads(msgIds: number[]): void
  saveToken(token: Uint8Array | undefined): void
  close(): void
}

export const hexId = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex')

/** fsync a file or directory by path (directories: makes a rename in them durable). */
export const fsyncPath = (path: string): void => {
  const fd = openSync(path, 'r')
  try {
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
}

/**
 * Replace the file at `path` (in `dir`) by `text` all at once: written beside it, durable
 * before it replaces the old one, and the rename durable before appends follow (`sync`
 * false: tests that do not care about power loss).
 */
export const replaceFile = (o: { path: string; dir: string; text: string; sync: boolean }): void => {
  const tmp = `${o.path}.tmp`
  writeFileSync(tmp, o.text, { mode: 0o600 })
  if (o.sync) fsyncPath(tmp)
  renameSync(tmp, o.path)
  if (o.sync) fsyncPath(o.dir)
}

const fromHex = (hex: string): Uint8Array => new Uint8Array(Buffer.from(hex, 'hex'))

const copyEntry = (e: OutboxEntry): OutboxEntry => ({ clientMsgId: e.clientMsgId.slice(), to: { ...e.to }, body: e.body, createdAtMs: e.createdAtMs })

/** In memory only (tests, or a client that keeps nothing between runs). */
export class MemoryClientState implements ClientStateStore {
  private cursor = 0
  private readonly outbox = new Map<string, OutboxEntry>()
  private readonly reads = new Set<number>()
  private token: Uint8Array | undefined

  constructor(initial?: Partial<ClientState>) {
    if (initial?.cursor !== undefined) this.cursor = initial.cursor
    for (const e of initial?.outbox ?? []) this.outbox.set(hexId(e.clientMsgId), copyEntry(e))
    for (const id of initial?.reads ?? []) this.reads.add(id)
    this.token = initial?.token?.slice()
  }

  load(): ClientState {
    return { cursor: this.cursor, outbox: [...this.outbox.values()].map(copyEntry), reads: [...this.reads], token: this.token?.slice() }
  }

  saveCursor(version: number): void {
    this.cursor = version
  }

  addOutbox(entry: OutboxEntry): void {
    this.outbox.set(hexId(entry.clientMsgId), copyEntry(entry))
  }

  removeOutbox(clientMsgId: Uint8Array): void {
    this.outbox.delete(hexId(clientMsgId))
  }

  addReads(msgIds: number[]): void {
    for (const id of msgIds) this.reads.add(id)
  }

  removeReads(msgIds: number[]): void {
    for (const id of msgIds) this.reads.delete(id)
  }

  saveToken(token: Uint8Array | undefined): void {
    this.token = token?.slice()
  }

  close(): void {}
}

/** One journal line. */
type Record =
  | { t: 'cursor'; v: number }
  | { t: 'token'; token?: string }
  | { t: 'add'; id: string; to: Peer; body: string; at: number }
  | { t: 'remove'; id: string }
  | { t: 'read'; ids: number[] }
  | { t: 'read-sent'; ids: number[] }

const isUint = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0
const isHex = (v: unknown, bytes?: number): v is string =>
  typeof v === 'string' && v.length % 2 === 0 && /^[0-9a-f]*$/.test(v) && (bytes === undefined || v.length === bytes * 2)

const isPeer = (v: unknown): v is Peer => {
  if (typeof v !== 'object' || v === null) return false
  const p = v as { kind?: unknown; userId?: unknown; groupId?: unknown }
  return (p.kind === 'user' && isUint(p.userId)) || (p.kind === 'group' && isUint(p.groupId))
}

/** A parsed and checked journal line, or undefined when the line is not a valid record. */
const parseRecord = (line: string): Record | undefined => {
  let v: unknown
  try {
    v = JSON.parse(line)
  } catch {
    return undefined
  }
  if (typeof v !== 'object' || v === null) return undefined
  const r = v as { [k: string]: unknown }
  switch (r.t) {
    case 'cursor':
      return isUint(r.v) ? { t: 'cursor', v: r.v } : undefined
    case 'token':
      if (r.token === undefined) return { t: 'token' }
      return isHex(r.token) ? { t: 'token', token: r.token } : undefined
    case 'add':
      return isHex(r.id, CLIENT_MSG_ID_BYTES) && isPeer(r.to) && typeof r.body === 'string' && isUint(r.at)
        ? { t: 'add', id: r.id, to: r.to.kind === 'user' ? { kind: 'user', userId: r.to.userId } : { kind: 'group', groupId: r.to.groupId }, body: r.body, at: r.at }
        : undefined
    case 'remove':
      return isHex(r.id, CLIENT_MSG_ID_BYTES) ? { t: 'remove', id: r.id } : undefined
    case 'read':
    case 'read-sent':
      return Array.isArray(r.ids) && r.ids.every(isUint) ? { t: r.t, ids: r.ids as number[] } : undefined
    default:
      return undefined
  }
}

const STATE_FILE = 'state.jsonl'
const LOCK_FILE = 'lock'
/** Rewrite the journal once it holds this many records beyond the live state. */
const COMPACT_AFTER_RECORDS = 10_000

export interface FileClientStateOptions {
  /** Skip fsync (tests that do not care about power loss). Default false. */
  noSync?: boolean
}

/**
 * A directory of its own per user and server (see ChatClient.stateDirFor). Holds a lock
 * file with the owner's pid so two clients cannot interleave their journals.
 */
export class FileClientState implements ClientStateStore {
  /** Journal lines that could not be read when the directory was opened (skipped). */
  readonly corruptLines: number
  readonly dir: string
  private cursor = 0
  private readonly outbox = new Map<string, OutboxEntry>()
  private readonly reads = new Set<number>()
  private token: Uint8Array | undefined
  private fd: number | undefined
  private recordsSinceCompact = 0
  private readonly sync: boolean

  static open(dir: string, options: FileClientStateOptions = {}): FileClientState {
    return new FileClientState(dir, options)
  }

  private constructor(dir: string, options: FileClientStateOptions) {
    this.dir = dir
    this.sync = options.noSync !== true
    mkdirSync(dir, { recursive: true, mode: 0o700 })
    acquireLock(join(dir, LOCK_FILE))
    let text = ''
    try {
      text = readFileSync(join(dir, STATE_FILE), 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    }
    let corrupt = 0
    for (const line of text.split('\n')) {
      if (line.trim() === '') continue
      const r = parseRecord(line)
      if (r === undefined) corrupt++
      else this.apply(r)
    }
    this.corruptLines = corrupt
    this.compact()
  }

  load(): ClientState {
    return { cursor: this.cursor, outbox: [...this.outbox.values()].map(copyEntry), reads: [...this.reads], token: this.token?.slice() }
  }

  saveCursor(version: number): void {
    if (version === this.cursor) return
    this.append({ t: 'cursor', v: version })
  }

  addOutbox(entry: OutboxEntry): void {
    this.append({ t: 'add', id: hexId(entry.clientMsgId), to: entry.to, body: entry.body, at: entry.createdAtMs })
  }

  removeOutbox(clientMsgId: Uint8Array): void {
    const id = hexId(clientMsgId)
    if (!this.outbox.has(id)) return
    this.append({ t: 'remove', id })
  }

  addReads(msgIds: number[]): void {
    const ids = msgIds.filter((id) => !this.reads.has(id))
    if (ids.length > 0) this.append({ t: 'read', ids })
  }

  removeReads(msgIds: number[]): void {
    const ids = msgIds.filter((id) => this.reads.has(id))
    if (ids.length > 0) this.append({ t: 'read-sent', ids })
  }

  saveToken(token: Uint8Array | undefined): void {
    this.append(token === undefined ? { t: 'token' } : { t: 'token', token: hexId(token) })
  }

  close(): void {
    if (this.fd === undefined) return
    closeSync(this.fd)
    this.fd = undefined
    rmSync(join(this.dir, LOCK_FILE), { force: true })
  }

  private apply(r: Record): void {
    switch (r.t) {
      case 'cursor':
        this.cursor = r.v
        break
      case 'token':
        this.token = r.token === undefined ? undefined : fromHex(r.token)
        break
      case 'add':
        this.outbox.set(r.id, { clientMsgId: fromHex(r.id), to: r.to, body: r.body, createdAtMs: r.at })
        break
      case 'remove':
        this.outbox.delete(r.id)
        break
      case 'read':
        for (const id of r.ids) this.reads.add(id)
        break
      case 'read-sent':
        for (const id of r.ids) this.reads.delete(id)
        break
    }
  }

  /** Write the record and fsync, then apply it in memory (a failed write changes nothing). */
  private append(r: Record): void {
    if (this.fd === undefined) throw new Error(`client state ${this.dir} is closed`)
    writeSync(this.fd, JSON.stringify(r) + '\n')
    if (this.sync) fsyncSync(this.fd)
    this.apply(r)
    if (++this.recordsSinceCompact > COMPACT_AFTER_RECORDS + this.outbox.size) this.compact()
  }

  /** Replace the journal with the live state only. */
  private compact(): void {
    const records: Record[] = []
    if (this.cursor > 0) records.push({ t: 'cursor', v: this.cursor })
    if (this.token !== undefined) records.push({ t: 'token', token: hexId(this.token) })
    for (const [id, e] of this.outbox) records.push({ t: 'add', id, to: e.to, body: e.body, at: e.createdAtMs })
    if (this.reads.size > 0) records.push({ t: 'read', ids: [...this.reads] })
    const path = join(this.dir, STATE_FILE)
    replaceFile({ path, dir: this.dir, text: records.map((r) => JSON.stringify(r) + '\n').join(''), sync: this.sync })
    if (this.fd !== undefined) closeSync(this.fd)
    this.fd = openSync(path, 'a', 0o600)
    this.recordsSinceCompact = 0
  }
}

const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** Take the directory's lock file; a lock left by a dead process (or by this one) is taken over. */
const acquireLock = (path: string): void => {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(path, `${process.pid}\n`, { flag: 'wx' })
      return
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    }
    let owner = NaN
    try {
      owner = Number.parseInt(readFileSync(path, 'utf8').trim(), 10)
    } catch {
      // vanished or unreadable: take it over
    }
    if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && isAlive(owner)) {
      throw new Error(`client state directory ${path.slice(0, -LOCK_FILE.length - 1)} is in use by process ${owner}`)
    }
    rmSync(path, { force: true })
  }
  throw new Error(`cannot lock ${path}`)
}
