/**
 * The chat CLI's behaviour, apart from the terminal: turns typed lines into ChatClient
 * calls and ChatClient events into printed lines, and keeps the local history.
 * Every text that others chose (bodies, names, server error texts) goes through
 * display.ts before it is printed or put into the prompt, so it cannot drive the terminal.
 */
import { ChatError, type GroupEntry, type MessageEntry, type ReceiptEntry, type SentInfo } from './chat-core.js'
import type { ChatClient, ChatClientEvents } from './chat-client.js'
import { type OutboxEntry, hexId } from './client-state.js'
import { safeBody, safeName, snippet } from './display.js'
import { ChatHistory, type ConvKey, type HistoryItem, convOf, idsByName, peerOf } from './history.js'
import type { Peer } from '../protocol/chat-types.js'

export const COMMANDS_HELP = `Commands:
  /list                     conversations with unread counts
  /to USER                  talk to USER (by name, or #id)
  /group GROUP              talk in a group (by name, or #id)
  TEXT                      send TEXT to the current conversation
  /history [N]              the last N (default 20) messages of the current conversation
  /contacts                 your contacts and who is online
  /add USER, /remove USER   add or remove a contact
  /groups                   your groups
  /create NAME u1,u2        create a group with these members
  /invite GROUP USER        add USER to a group
  /leave GROUP              leave a group
  /rename GROUP NAME        rename a group
  /members GROUP            who is in a group
  /status                   connection, sync cursor and unsent messages
  /help                     this help
  /quit                     leave (unsent messages are kept and sent next time)
Receipts: ✓ stored by the server, ✓✓ delivered, ✓✓ read`

const pad = (n: number): string => String(n).padStart(2, '0')

export const formatTime = (ms: number, nowMs = Date.now()): string => {
  const d = new Date(ms)
  const hm = `${pad(d.getHours())}:${pad(d.getMinutes())}`
  const today = new Date(nowMs)
  if (d.getFullYear() === today.getFullYear() && d.getMonth() === today.getMonth() && d.getDate() === today.getDate()) return hm
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${hm}`
}

export interface ChatUiOptions {
  client: ChatClient
  history: ChatHistory
  /** Print one line (the terminal front end keeps its prompt intact). */
  print: (line: string) => void
  /** The prompt changed (the current conversation). */
  onPromptChange?: (prompt: string) => void
  /** /quit was typed. */
  onQuit: () => void
}

export class ChatUi {
  /** The client followed now (the CLI may replace it: see attach). */
  private client: ChatClient
  private readonly history: ChatHistory
  private readonly print: (line: string) => void
  private current: ConvKey | undefined
  /** clientMsgIds (hex) sent from this device: their copies from sync are not printed again. */
  private readonly ownIds = new Set<string>()
  /** Output that needs names resolved first goes through this queue, so it stays in order. */
  private printQueue: Promise<void> = Promise.resolve()
  private everConnected = false
  /**
   * Until the first sync after start has caught up, what arrives is stored but not
   * printed (the banner then tells how many conversations have unread messages).
   */
  private catchingUp = true

  constructor(private readonly opts: ChatUiOptions) {
    this.client = opts.client
    this.history = opts.history
    this.print = opts.print
    this.everConnected = this.client.connected
    this.follow(opts.client)
  }

  /**
   * Follow `client` (logged in) from now on: the CLI starts a new one when the server
   * refused the password the old one had (ChatClient gives up then, and is closed).
   */
  attach(client: ChatClient): void {
    this.client = client
    this.follow(client)
    this.notice('reconnected (logged in again)')
  }

  /** Print a status line ("* text") after the lines already queued. */
  notice(text: string): void {
    this.later(async () => this.print(`* ${text}`))
  }

  private follow(c: ChatClient): void {
    for (const e of c.pendingMessages) this.ownIds.add(hexId(e.clientMsgId))
    // Only the client followed now is listened to (a replaced one is closed anyway).
    const on = <E extends keyof ChatClientEvents>(event: E, fn: (...args: ChatClientEvents[E]) => void): void => {
      const listener = (...args: ChatClientEvents[E]): void => {
        if (c === this.client) fn(...args)
      }
      ;(c as unknown as { on: (e: E, l: typeof listener) => void }).on(event, listener)
    }
    on('connected', (info) => {
      const again = this.everConnected
      this.everConnected = true
      const name = this.client.username
      this.history.setUserName(info.userId, name)
      this.later(async () => {
        if (again) this.print(`* reconnected${info.resumed ? '' : ' (logged in again)'}`)
        else this.banner()
      })
    })
    on('disconnected', (reason) => this.notice(`disconnected (${safeName(reason)}); reconnecting…`))
    // auth_failed: the CLI decides (ask for the password again, or say why it gives up).
    on('message', (e) => this.onMessage(e))
    // The core saves its cursor right after this: what the handlers stored must be durable first.
    on('applied', () => this.history.sync())
    on('receipt', (e) => this.onReceipt(e))
    on('group', (e) => this.onGroup(e))
    on('sent', (info) => this.onSent(info))
    on('send_failed', (entry, err) => this.onSendFailed(entry, err))
    on('presence', (userId, online) => this.later(async () => this.print(`* ${await this.userLabel(userId)} is ${online ? 'online' : 'offline'}`)))
    on('protocol_error', (err) => this.notice(`ignored a bad message from the server: ${safeName(err.message)}`))
  }

  /** The first sync is done (or taking too long): print from now on. */
  caughtUp(): void {
    this.catchingUp = false
  }

  /** "connected as ..." and what is waiting (call once the client is connected). */
  banner(): void {
    const c = this.client
    if (c.userId !== undefined) this.history.setUserName(c.userId, c.username)
    this.print(`* connected as ${this.myName()} (user #${c.userId}, device #${c.deviceId}); /help for commands`)
    const unread = this.history.conversations().filter((s) => s.unread > 0)
    if (unread.length > 0) this.print(`* unread messages in ${unread.length} conversation(s): /list`)
    if (c.outboxSize > 0) this.print(`* sending ${c.outboxSize} message(s) left from last time`)
  }

  get prompt(): string {
    return this.current === undefined ? '> ' : `${this.convLabelSync(this.current)}> `
  }

  /** Wait until everything queued for printing is printed. */
  settled(): Promise<void> {
    return this.printQueue
  }

  private later(fn: () => Promise<void>): void {
    this.printQueue = this.printQueue.then(fn).catch((err: unknown) => this.print(`* ${safeName(describe(err))}`))
  }

  // --- incoming --------------------------------------------------------------------------

  private me(): number | undefined {
    return this.client.userId
  }

  /** The own user name (from the command line, but shown like every other name). */
  private myName(): string {
    return safeName(this.client.username)
  }

  private onMessage(e: MessageEntry): void {
    const out = e.fromUserId === this.me()
    const conv = e.to.kind === 'group' ? convOf(e.to) : out ? convOf(e.to) : `u:${e.fromUserId}`
    // History first (synchronously, before the core persists its cursor).
    if (!this.history.addMessage({ conv, version: e.version, msgId: e.msgId, fromUserId: e.fromUserId, out, sentAtMs: e.sentAtMs, body: e.body })) return
    const mine = out && this.ownIds.delete(hexId(e.clientMsgId))
    if (conv === this.current) {
      // The pending READ is stored before the message stops counting as unread.
      if (!out) this.client.markRead([e.msgId])
      this.history.markSeen(conv, e.version)
    }
    if (mine || this.catchingUp) return // printed when it was typed, or summed up by the banner
    this.later(async () => {
      const who = out ? 'you (other device)' : await this.userLabel(e.fromUserId)
      this.print(`${formatTime(e.sentAtMs)} [${await this.convLabel(conv)}] ${who}: ${safeBody(e.body)}`)
    })
  }

  private onReceipt(e: ReceiptEntry): void {
    this.history.addReceipt(e.msgId, e.status, e.byUserId)
    const m = this.history.message(e.msgId)
    if (this.catchingUp) return
    this.later(async () => {
      const what = m === undefined ? `message #${e.msgId}` : snippet(m.body)
      const mark = e.status === 'read' ? '✓✓ read by' : '✓✓ delivered to'
      const where = m === undefined || m.conv === this.current ? '' : ` [${await this.convLabel(m.conv)}]`
      this.print(`  ${mark} ${await this.userLabel(e.byUserId)}: ${what}${where}`)
    })
  }

  private onGroup(e: GroupEntry): void {
    this.history.setGroupName(e.groupId, e.name)
    const conv = `g:${e.groupId}`
    const known = (id: number): string => (id === this.me() ? this.client.username : (this.history.userNames.get(id) ?? `#${id}`))
    if (!this.history.addEvent({ conv, version: e.version, atMs: e.atMs, text: groupEventText(e, known) }) || this.catchingUp) return
    this.later(async () => {
      await this.resolveUsers([e.actorUserId, e.subjectUserId])
      this.print(`${formatTime(e.atMs)} [${await this.convLabel(conv)}] * ${safeName(groupEventText(e, known))}`)
    })
  }

  private onSent(info: SentInfo): void {
    this.later(async () => {
      const where = convOf(info.to) === this.current ? '' : ` [${await this.convLabel(convOf(info.to))}]`
      this.print(`  ✓ sent ${snippet(info.body)}${where}`)
    })
  }

  private onSendFailed(entry: OutboxEntry, err: ChatError): void {
    this.ownIds.delete(hexId(entry.clientMsgId))
    this.later(async () => this.print(`* not sent to ${await this.convLabel(convOf(entry.to))}: ${snippet(entry.body)}: ${safeName(describe(err))}`))
  }

  // --- names (the labels are display-safe) -----------------------------------------------

  private async userLabel(userId: number): Promise<string> {
    if (userId === this.me()) return this.myName()
    await this.resolveUsers([userId])
    return safeName(this.history.userNames.get(userId) ?? `#${userId}`)
  }

  private async resolveUsers(ids: number[]): Promise<void> {
    const missing = [...new Set(ids)].filter((id) => !this.history.userNames.has(id))
    if (missing.length === 0 || !this.client.connected) return
    try {
      for (const u of await this.client.userLookup(missing)) this.history.setUserName(u.userId, u.username)
    } catch {
      // offline or refused: the id will do
    }
  }

  private async convLabel(conv: ConvKey): Promise<string> {
    const peer = peerOf(conv)
    if (peer.kind === 'user') return this.userLabel(peer.userId)
    return this.convLabelSync(conv)
  }

  private convLabelSync(conv: ConvKey): string {
    const peer = peerOf(conv)
    if (peer.kind === 'user') return safeName(this.history.userNames.get(peer.userId) ?? `#${peer.userId}`)
    const name = this.history.groupNames.get(peer.groupId)
    return name === undefined ? `group #${peer.groupId}` : `#${peer.groupId} ${safeName(name)}`
  }

  // --- typed lines ---------------------------------------------------------------------------

  /**
   * Handle one typed line; errors are printed. False when the line was not carried out
   * (piped input then fails the run: nobody is there to read the "!" and type it again).
   */
  async handleLine(raw: string): Promise<boolean> {
    const line = raw.trim()
    if (line === '') return true
    let done = true
    try {
      if (line.startsWith('/') && !line.startsWith('//')) await this.command(line)
      else this.sendText(line.startsWith('//') ? line.slice(1) : line)
    } catch (err) {
      this.print(`! ${safeName(describe(err))}`)
      done = false
    }
    await this.settled()
    return done
  }

  private sendText(text: string): void {
    if (this.current === undefined) throw new Error('no conversation: pick one with /to USER or /group GROUP (/help)')
    const peer = peerOf(this.current)
    const { clientMsgId, sent } = this.client.enqueue(peer, text)
    this.ownIds.add(hexId(clientMsgId))
    sent.catch(() => {}) // reported through 'send_failed' / on close
    // Not sent yet: marked pending until "✓ sent" or "not sent ...: CODE" follows.
    const pending = this.client.connected ? 'sending…' : 'queued: offline'
    this.print(`${formatTime(Date.now())} [${this.convLabelSync(this.current)}] ${this.myName()}: ${safeBody(text)}  (${pending})`)
  }

  private async command(line: string): Promise<void> {
    const [cmd, ...rest] = line.split(/\s+/)
    const arg = line.slice(cmd.length).trim()
    switch (cmd.toLowerCase()) {
      case '/help':
      case '/?':
        return this.print(COMMANDS_HELP)
      case '/quit':
      case '/exit':
        return this.opts.onQuit()
      case '/list':
        return this.list()
      case '/to':
        return this.open({ kind: 'user', userId: await this.userIdOf(need(arg, '/to USER')) })
      case '/group':
        return this.open({ kind: 'group', groupId: await this.groupIdOf(need(arg, '/group GROUP'), '/group') })
      case '/history':
        return this.showHistory(rest[0] === undefined ? 20 : positiveInt(rest[0]))
      case '/contacts':
        return this.contacts()
      case '/add':
        await this.client.contactAdd(need(arg, '/add USER'))
        await this.learnContacts()
        return this.print(`* added ${safeName(arg)} to your contacts`)
      case '/remove':
        await this.client.contactRemove(need(arg, '/remove USER'))
        return this.print(`* removed ${safeName(arg)} from your contacts`)
      case '/groups':
        return this.groups()
      case '/create': {
        if (rest.length < 1) throw new Error('usage: /create NAME user1,user2')
        const members = rest.length > 1 ? rest.slice(1).join(',').split(',').map((s) => s.trim()).filter((s) => s !== '') : []
        const g = await this.client.groupCreate(rest[0], members)
        this.history.setGroupName(g.groupId, g.name)
        for (const m of g.members) this.history.setUserName(m.userId, m.username)
        return this.print(`* created group #${g.groupId} "${safeName(g.name)}" with ${g.members.map((m) => safeName(m.username)).join(', ')}; /group #${g.groupId} to talk there`)
      }
      case '/invite': {
        if (rest.length !== 2) throw new Error('usage: /invite GROUP USER')
        const groupId = await this.groupIdOf(rest[0], '/invite', ` ${rest[1]}`)
        await this.client.groupInvite(groupId, rest[1])
        return this.print(`* invited ${safeName(rest[1])} to ${this.convLabelSync(`g:${groupId}`)}`)
      }
      case '/leave': {
        const groupId = await this.groupIdOf(need(arg, '/leave GROUP'), '/leave')
        await this.client.groupLeave(groupId)
        if (this.current === `g:${groupId}`) this.setCurrent(undefined)
        return this.print(`* left ${this.convLabelSync(`g:${groupId}`)}`)
      }
      case '/rename': {
        if (rest.length < 2) throw new Error('usage: /rename GROUP NAME')
        const name = arg.slice(rest[0].length).trim()
        const groupId = await this.groupIdOf(rest[0], '/rename', ` ${name}`)
        await this.client.groupRename(groupId, name)
        this.history.setGroupName(groupId, name)
        this.opts.onPromptChange?.(this.prompt)
        return this.print(`* renamed group #${groupId} to "${safeName(name)}"`)
      }
      case '/members': {
        const g = await this.client.groupMembers(await this.groupIdOf(need(arg, '/members GROUP'), '/members'))
        this.history.setGroupName(g.groupId, g.name)
        for (const m of g.members) this.history.setUserName(m.userId, m.username)
        return this.print(`#${g.groupId} ${safeName(g.name)}: ${g.members.map((m) => safeName(m.username)).join(', ')} (${g.members.length})`)
      }
      case '/status': {
        const c = this.client
        return this.print(`${c.connected ? 'connected' : 'offline'} as ${this.myName()}${c.userId === undefined ? '' : ` (#${c.userId})`}; synced to version ${c.cursor}; ${c.outboxSize} message(s) not yet stored by the server`)
      }
      default:
        throw new Error(`unknown command ${cmd} (/help)`)
    }
  }

  private setCurrent(conv: ConvKey | undefined): void {
    this.current = conv
    this.opts.onPromptChange?.(this.prompt)
  }

  private async open(peer: Peer): Promise<void> {
    const conv = convOf(peer)
    this.setCurrent(conv)
    const label = await this.convLabel(conv)
    this.opts.onPromptChange?.(this.prompt)
    const unread = this.history.unread(conv)
    this.print(`* talking to ${label}${unread.length > 0 ? ` (${unread.length} unread)` : ''}`)
    await this.showHistory(Math.max(10, unread.length))
    if (unread.length > 0) this.client.markRead(unread.map((m) => m.msgId))
    this.history.markSeen(conv, this.history.lastVersion(conv))
  }

  private async list(): Promise<void> {
    const convs = this.history.conversations()
    if (convs.length === 0) return this.print('no conversations yet: /contacts, then /to USER')
    for (const s of convs) {
      const label = await this.convLabel(s.conv)
      const last = s.last === undefined ? '' : `  ${formatTime(s.lastAtMs)} ${await this.itemText(s.last)}`
      const mark = s.conv === this.current ? '*' : ' '
      this.print(`${mark} ${label}${s.unread > 0 ? ` (${s.unread} unread)` : ''}${last}`)
    }
  }

  private async itemText(it: HistoryItem): Promise<string> {
    if (it.kind === 'event') return `* ${safeName(it.text)}`
    return `${it.out ? this.myName() : await this.userLabel(it.fromUserId)}: ${snippet(it.body, 40)}`
  }

  private async showHistory(limit: number): Promise<void> {
    if (this.current === undefined) throw new Error('no conversation: /to USER or /group GROUP first')
    const items = this.history.items(this.current, limit)
    if (items.length === 0) return this.print('  (no messages yet)')
    const group = this.current.startsWith('g:')
    for (const it of items) {
      if (it.kind === 'event') {
        this.print(`  ${formatTime(it.atMs)} * ${safeName(it.text)}`)
        continue
      }
      let mark = ''
      if (it.out) {
        const r = this.history.receipts(it.msgId)
        if (group) mark = r.readBy.length > 0 ? `  ✓✓ read by ${r.readBy.length}` : r.deliveredTo.length > 0 ? `  ✓✓ ${r.deliveredTo.length}` : '  ✓'
        else mark = r.readBy.length > 0 ? '  ✓✓ read' : r.deliveredTo.length > 0 ? '  ✓✓' : '  ✓'
      }
      const who = it.out ? this.myName() : await this.userLabel(it.fromUserId)
      this.print(`  ${formatTime(it.sentAtMs)} ${who}: ${safeBody(it.body)}${mark}`)
    }
  }

  private async contacts(): Promise<void> {
    const list = await this.client.contactList()
    if (list.length === 0) return this.print('no contacts yet: /add USER')
    for (const c of list) {
      this.history.setUserName(c.userId, c.username)
      this.print(`  ${c.online ? '●' : '○'} ${safeName(c.username)} (#${c.userId})${c.online ? ' online' : ''}`)
    }
  }

  private async groups(): Promise<void> {
    const list = await this.client.groupList()
    if (list.length === 0) return this.print('no groups yet: /create NAME user1,user2')
    for (const g of list) {
      this.history.setGroupName(g.groupId, g.name)
      this.print(`  #${g.groupId} ${safeName(g.name)} (${g.memberCount} members)`)
    }
  }

  private async learnContacts(): Promise<void> {
    try {
      for (const c of await this.client.contactList()) this.history.setUserName(c.userId, c.username)
    } catch {
      // not needed now
    }
  }

  /**
   * A user name (or #id) to a user id: known names first, then the contact list. Only
   * `#N` is an id: a bare number is a valid user name.
   */
  private async userIdOf(name: string): Promise<number> {
    const byId = /^#(\d+)$/.exec(name)
    if (byId !== null) return Number(byId[1])
    let id = this.history.userIdByName(name)
    if (id !== undefined) return id
    await this.learnContacts()
    id = this.history.userIdByName(name)
    if (id !== undefined) return id
    for (const u of await this.client.userFind([name])) this.history.setUserName(u.userId, u.username)
    id = this.history.userIdByName(name)
    if (id !== undefined) return id
    throw new Error(`no user named ${name}`)
  }

  /**
   * A group name (or #id) to a group id. Only `#N` is an id (a bare number is a name).
   * Names need not be unique: when several groups have it, nothing is guessed (the
   * error lists the ids, for `cmd #id...rest`). Unless exactly one known group has the
   * name, the server's list (the groups one is still in) decides.
   */
  private async groupIdOf(text: string, cmd: string, rest = ''): Promise<number> {
    const byId = /^#(\d+)$/.exec(text)
    if (byId !== null) return Number(byId[1])
    let ids = this.history.groupIdsByName(text)
    if (ids.length !== 1) {
      try {
        const list = await this.client.groupList()
        for (const g of list) this.history.setGroupName(g.groupId, g.name)
        ids = idsByName(list.map((g) => [g.groupId, g.name]), text)
      } catch (err) {
        if (ids.length === 0) throw err // else: say what is known locally
      }
    }
    if (ids.length === 1) return ids[0]
    if (ids.length === 0) throw new Error(`unknown group ${text} (/groups)`)
    throw new Error(`${ids.length} groups are named ${text}: ${ids.map((id) => `#${id}`).join(', ')}; pick one by id, e.g. ${cmd} #${ids[ids.length - 1]}${rest}`)
  }
}

const groupEventText = (e: GroupEntry, name: (userId: number) => string): string => {
  const actor = name(e.actorUserId)
  const subject = name(e.subjectUserId)
  switch (e.event) {
    case 'created':
      return `${actor} created the group "${e.name}"`
    case 'joined':
      return e.actorUserId === e.subjectUserId ? `${subject} joined` : `${actor} added ${subject}`
    case 'left':
      return e.actorUserId === e.subjectUserId ? `${subject} left` : `${actor} removed ${subject}`
    case 'renamed':
      return `${actor} renamed the group to "${e.name}"`
  }
}

const need = (arg: string, usage: string): string => {
  if (arg === '') throw new Error(`usage: ${usage}`)
  return arg
}

const positiveInt = (text: string): number => {
  const n = Number(text)
  if (!Number.isInteger(n) || n < 1) throw new Error(`not a positive number: ${text}`)
  return n
}

const describe = (err: unknown): string => {
  if (err instanceof ChatError) {
    switch (err.code) {
      case 'NOT_CONNECTED':
      case 'DISCONNECTED':
        return `${err.message} (try again when reconnected)`
      default:
        return `${err.code}${err.message && err.message !== err.code ? `: ${err.message}` : ''}`
    }
  }
  return err instanceof Error ? err.message : String(err)
}
