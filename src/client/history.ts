/**
 * The chat CLI's local history: messages, receipts and group events per conversation,
 * what the user has seen (for unread counts) and the names of users and groups, so
 * /history and /list work offline and after a restart. One append-only file of JSON
 * lines, `history.jsonl`, next to the client state; compacted on open (the newest
 * HISTORY_KEEP messages of each conversation are kept), and the same way while running
 * when a conversation grows HISTORY_SLACK items past that or the file has gained more
 * lines since the last compaction than that compaction wrote (at least
 * MIN_APPENDS_BEFORE_COMPACT), so memory and file stay bounded and compaction costs
 * O(1) per append, amortized. Unreadable lines are skipped.
 *
 * Inbox entries are synced only once (the sync cursor moves past them), so what sync
 * delivered must be durable before the cursor that covers it: sync() fsyncs the appends
 * (the UI calls it on the core's 'applied' event, right before the cursor is saved), and
 * compaction fsyncs the new file before renaming it and the directory after. Messages
 * are de-duplicated by msgId, so entries that sync delivers again are stored once.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import type { Peer, ReceiptStatus } from '../protocol/chat-types.js'
import { replaceFile } from './client-state.js'

/** 'u:<userId>' for a 1:1 conversation, 'g:<groupId>' for a group. */
export type ConvKey = string

export const convOf = (peer: Peer): ConvKey => (peer.kind === 'user' ? `u:${peer.userId}` : `g:${peer.groupId}`)
export const peerOf = (conv: ConvKey): Peer => {
  const id = Number(conv.slice(2))
  return conv.startsWith('g:') ? { kind: 'group', groupId: id } : { kind: 'user', userId: id }
}

/**
 * The ids whose name is exactly `name`, or when there is none, whose name matches it
 * ignoring case. Several ids mean the name is ambiguous: callers must not pick one.
 */
export const idsByName = (names: Iterable<[number, string]>, name: string): number[] => {
  const all = [...names]
  const exact = all.filter(([, n]) => n === name)
  if (exact.length > 0) return exact.map(([id]) => id)
  const want = name.toLowerCase()
  return all.filter(([, n]) => n.toLowerCase() === want).map(([id]) => id)
}

export interface HistoryMessage {
  kind: 'message'
  conv: ConvKey
  version: number
  msgId: number
  fromUserId: number
  /** Sent by this user (from any of its devices). */
  out: boolean
  sentAtMs: number
  body: string
}

export interface HistoryEvent {
  kind: 'event'
  conv: ConvKey
  version: number
  atMs: number
  text: string
}

export type HistoryItem = HistoryMessage | HistoryEvent

export interface ConversationSummary {
  conv: ConvKey
  lastAtMs: number
  last: HistoryItem | undefined
  unread: number
}

type Line =
  | { t: 'm'; c: ConvKey; v: number; id: number; from: number; out: boolean; at: number; body: string }
  | { t: 'e'; c: ConvKey; v: number; at: number; text: string }
  | { t: 'r'; id: number; s: ReceiptStatus; by: number }
  | { t: 'seen'; c: ConvKey; v: number }
  | { t: 'name'; id: number; name: string }
  | { t: 'gname'; id: number; name: string }

export const HISTORY_KEEP = 1000
/** How far past HISTORY_KEEP a conversation grows while running before it is compacted. */
export const HISTORY_SLACK = HISTORY_KEEP / 4
/** Lines appended while running before the file is compacted, at least (see the module comment). */
export const MIN_APPENDS_BEFORE_COMPACT = 4 * HISTORY_KEEP
const FILE = 'history.jsonl'

const isUint = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0
const isConv = (v: unknown): v is ConvKey => typeof v === 'string' && /^[ug]:\d+$/.test(v)

const parse = (text: string): Line | undefined => {
  let v: unknown
  try {
    v = JSON.parse(text)
  } catch {
    return undefined
  }
  if (typeof v !== 'object' || v === null) return undefined
  const r = v as { [k: string]: unknown }
  switch (r.t) {
    case 'm':
      return isConv(r.c) && isUint(r.v) && isUint(r.id) && isUint(r.from) && typeof r.out === 'boolean' && isUint(r.at) && typeof r.body === 'string'
        ? (r as Line)
        : undefined
    case 'e':
      return isConv(r.c) && isUint(r.v) && isUint(r.at) && typeof r.text === 'string' ? (r as Line) : undefined
    case 'r':
      return isUint(r.id) && (r.s === 'delivered' || r.s === 'read') && isUint(r.by) ? (r as Line) : undefined
    case 'seen':
      return isConv(r.c) && isUint(r.v) ? (r as Line) : undefined
    case 'name':
    case 'gname':
      return isUint(r.id) && typeof r.name === 'string' ? (r as Line) : undefined
    default:
      return undefined
  }
}

export interface ChatHistoryOptions {
  /** Skip fsync (tests that do not care about power loss). Default false. */
  noSync?: boolean
}

export class ChatHistory {
  readonly corruptLines: number
  private readonly dir: string | undefined
  private readonly path: string | undefined
  private readonly fsync: boolean
  /** The history file, open for appending (undefined: in memory only, or closed). */
  private fd: number | undefined
  /** Appended since the last sync(). */
  private dirty = false
  /** Lines the last compaction wrote, and lines appended since. */
  private compactedLines = 0
  private appendedLines = 0
  private readonly convs = new Map<ConvKey, HistoryItem[]>()
  private readonly msgIds = new Set<number>()
  private readonly eventVersions = new Set<number>()
  private readonly delivered = new Map<number, Set<number>>()
  private readonly read = new Map<number, Set<number>>()
  private readonly seen = new Map<ConvKey, number>()
  readonly userNames = new Map<number, string>()
  readonly groupNames = new Map<number, string>()

  /** `dir` undefined: in memory only. */
  constructor(dir?: string, options: ChatHistoryOptions = {}) {
    let corrupt = 0
    this.fsync = options.noSync !== true
    if (dir !== undefined) {
      mkdirSync(dir, { recursive: true, mode: 0o700 })
      this.dir = dir
      this.path = join(dir, FILE)
      let text = ''
      try {
        text = readFileSync(this.path, 'utf8')
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
      }
      for (const raw of text.split('\n')) {
        if (raw.trim() === '') continue
        const line = parse(raw)
        if (line === undefined) corrupt++
        else this.apply(line)
      }
      this.compact()
      this.fd = openSync(this.path, 'a', 0o600)
    }
    this.corruptLines = corrupt
  }

  /** Make every append so far durable (one fsync, none when nothing was appended). */
  sync(): void {
    if (!this.dirty || this.fd === undefined) return
    if (this.fsync) fsyncSync(this.fd)
    this.dirty = false
  }

  /** sync(), then close the file (later changes stay in memory only). */
  close(): void {
    if (this.fd === undefined) return
    this.sync()
    closeSync(this.fd)
    this.fd = undefined
  }

  /** Store a message; false when its msgId is already stored. */
  addMessage(m: Omit<HistoryMessage, 'kind'>): boolean {
    if (this.msgIds.has(m.msgId)) return false
    this.write({ t: 'm', c: m.conv, v: m.version, id: m.msgId, from: m.fromUserId, out: m.out, at: m.sentAtMs, body: m.body })
    return true
  }

  /** Store a group event; false when an event of this version is already stored. */
  addEvent(e: Omit<HistoryEvent, 'kind'>): boolean {
    if (this.eventVersions.has(e.version)) return false
    this.write({ t: 'e', c: e.conv, v: e.version, at: e.atMs, text: e.text })
    return true
  }

  addReceipt(msgId: number, status: ReceiptStatus, byUserId: number): void {
    if ((status === 'read' ? this.read : this.delivered).get(msgId)?.has(byUserId)) return
    this.write({ t: 'r', id: msgId, s: status, by: byUserId })
  }

  /** The user has seen `conv` up to `version`. */
  markSeen(conv: ConvKey, version: number): void {
    if ((this.seen.get(conv) ?? 0) >= version) return
    this.write({ t: 'seen', c: conv, v: version })
  }

  setUserName(userId: number, name: string): void {
    if (this.userNames.get(userId) !== name) this.write({ t: 'name', id: userId, name })
  }

  setGroupName(groupId: number, name: string): void {
    if (this.groupNames.get(groupId) !== name) this.write({ t: 'gname', id: groupId, name })
  }

  /** The user id with this name (case-insensitive), when known. */
  userIdByName(name: string): number | undefined {
    const want = name.toLowerCase()
    for (const [id, n] of this.userNames) if (n.toLowerCase() === want) return id
    return undefined
  }

  /** The ids of the known groups with this name (see idsByName); several groups may share a name. */
  groupIdsByName(name: string): number[] {
    return idsByName(this.groupNames, name)
  }

  /** The last `limit` items of a conversation, oldest first. */
  items(conv: ConvKey, limit = 20): HistoryItem[] {
    const all = this.convs.get(conv) ?? []
    return all.slice(Math.max(0, all.length - limit))
  }

  /** Incoming messages in `conv` after what the user has seen. */
  unread(conv: ConvKey): HistoryMessage[] {
    const seen = this.seen.get(conv) ?? 0
    return (this.convs.get(conv) ?? []).filter((i): i is HistoryMessage => i.kind === 'message' && !i.out && i.version > seen)
  }

  lastVersion(conv: ConvKey): number {
    const all = this.convs.get(conv) ?? []
    return all.length === 0 ? 0 : all[all.length - 1].version
  }

  /** Conversations, most recent activity first. */
  conversations(): ConversationSummary[] {
    const out: ConversationSummary[] = []
    for (const [conv, items] of this.convs) {
      const last = items[items.length - 1]
      out.push({ conv, last, lastAtMs: last === undefined ? 0 : last.kind === 'message' ? last.sentAtMs : last.atMs, unread: this.unread(conv).length })
    }
    return out.sort((a, b) => b.lastAtMs - a.lastAtMs)
  }

  message(msgId: number): HistoryMessage | undefined {
    for (const items of this.convs.values()) {
      for (let i = items.length - 1; i >= 0; i--) {
        const it = items[i]
        if (it.kind === 'message' && it.msgId === msgId) return it
      }
    }
    return undefined
  }

  receipts(msgId: number): { deliveredTo: number[]; readBy: number[] } {
    return { deliveredTo: [...(this.delivered.get(msgId) ?? [])], readBy: [...(this.read.get(msgId) ?? [])] }
  }

  private write(line: Line): void {
    this.apply(line)
    if (this.fd !== undefined) {
      writeSync(this.fd, JSON.stringify(line) + '\n')
      this.dirty = true
      this.appendedLines++
    }
    if (this.overLimit(line)) this.compact()
  }

  /** While running: the conversation just written to, or the file, has outgrown its limit. */
  private overLimit(line: Line): boolean {
    const conv = line.t === 'm' || line.t === 'e' ? this.convs.get(line.c) : undefined
    if (conv !== undefined && conv.length > HISTORY_KEEP + HISTORY_SLACK) return true
    return this.fd !== undefined && this.appendedLines > Math.max(MIN_APPENDS_BEFORE_COMPACT, this.compactedLines)
  }

  private apply(line: Line): void {
    switch (line.t) {
      case 'm': {
        if (this.msgIds.has(line.id)) return
        this.msgIds.add(line.id)
        this.insert({ kind: 'message', conv: line.c, version: line.v, msgId: line.id, fromUserId: line.from, out: line.out, sentAtMs: line.at, body: line.body })
        return
      }
      case 'e':
        if (this.eventVersions.has(line.v)) return
        this.eventVersions.add(line.v)
        this.insert({ kind: 'event', conv: line.c, version: line.v, atMs: line.at, text: line.text })
        return
      case 'r': {
        const map = line.s === 'read' ? this.read : this.delivered
        let set = map.get(line.id)
        if (set === undefined) map.set(line.id, (set = new Set()))
        set.add(line.by)
        return
      }
      case 'seen':
        this.seen.set(line.c, Math.max(this.seen.get(line.c) ?? 0, line.v))
        return
      case 'name':
        this.userNames.set(line.id, line.name)
        return
      case 'gname':
        this.groupNames.set(line.id, line.name)
        return
    }
  }

  /** Keep items in version order (sync delivers them in order; this only guards odd input). */
  private insert(item: HistoryItem): void {
    let items = this.convs.get(item.conv)
    if (items === undefined) this.convs.set(item.conv, (items = []))
    let i = items.length
    while (i > 0 && items[i - 1].version > item.version) i--
    items.splice(i, 0, item)
  }

  /**
   * Keep the newest HISTORY_KEEP items of each conversation (and the receipts of kept
   * messages only) and, with a file, replace it by what is kept: written, fsynced and
   * renamed over the old one, the directory fsynced (replaceFile), so everything
   * appended before is durable too; appends go on in the new file.
   */
  private compact(): void {
    this.trim()
    if (this.path === undefined || this.dir === undefined) return
    const lines = this.keptLines()
    replaceFile({ path: this.path, dir: this.dir, text: lines.map((l) => JSON.stringify(l) + '\n').join(''), sync: this.fsync })
    this.compactedLines = lines.length
    this.appendedLines = 0
    if (this.fd === undefined) return // on open: the constructor opens the file
    closeSync(this.fd)
    this.fd = openSync(this.path, 'a', 0o600)
    this.dirty = false
  }

  private trim(): void {
    for (const items of this.convs.values()) {
      const dropped = items.splice(0, Math.max(0, items.length - HISTORY_KEEP))
      for (const it of dropped) {
        if (it.kind === 'event') {
          this.eventVersions.delete(it.version)
          continue
        }
        this.msgIds.delete(it.msgId)
      }
    }
    // Receipts of messages not kept (dropped, or never stored here) are not kept either.
    for (const map of [this.delivered, this.read]) for (const id of map.keys()) if (!this.msgIds.has(id)) map.delete(id)
  }

  private keptLines(): Line[] {
    const lines: Line[] = []
    for (const [id, name] of this.userNames) lines.push({ t: 'name', id, name })
    for (const [id, name] of this.groupNames) lines.push({ t: 'gname', id, name })
    for (const [c, v] of this.seen) lines.push({ t: 'seen', c, v })
    for (const [conv, items] of this.convs) {
      for (const it of items) {
        if (it.kind === 'event') {
          lines.push({ t: 'e', c: conv, v: it.version, at: it.atMs, text: it.text })
          continue
        }
        lines.push({ t: 'm', c: conv, v: it.version, id: it.msgId, from: it.fromUserId, out: it.out, at: it.sentAtMs, body: it.body })
        for (const by of this.delivered.get(it.msgId) ?? []) lines.push({ t: 'r', id: it.msgId, s: 'delivered', by })
        for (const by of this.read.get(it.msgId) ?? []) lines.push({ t: 'r', id: it.msgId, s: 'read', by })
      }
    }
    return lines
  }
}
