/**
 * ChatUi over a fake ChatClient (events and requests in memory) and an in-memory
 * history: what it prints for what others sent, how it resolves names, and which typed
 * lines it reports as not carried out.
 */
import { EventEmitter } from 'node:events'
import t from 'tap'
import type { ChatClient } from '../../src/client/chat-client.js'
import { ChatError, type GroupEntry, type MessageEntry } from '../../src/client/chat-core.js'
import { ChatUi } from '../../src/client/chat-ui.js'
import { CONTINUATION } from '../../src/client/display.js'
import { ChatHistory } from '../../src/client/history.js'
import type { GroupSummary, Peer, UserSummary } from '../../src/protocol/chat-types.js'

class FakeClient extends EventEmitter {
  userId = 1
  deviceId = 3
  username = 'alice'
  connected = true
  pendingMessages = []
  outboxSize = 0
  cursor = 0
  users = new Map<number, string>([
    [1, 'alice'],
    [2, 'bob'],
    [5, '2'],
  ])
  groups: GroupSummary[] = []
  members = new Map<number, UserSummary[]>()
  sent: Array<{ to: Peer; body: string }> = []
  enqueue(to: Peer, body: string) {
    this.sent.push({ to, body })
    return { clientMsgId: new Uint8Array(16).fill(this.sent.length), sent: new Promise(() => {}) }
  }
  markRead() {}
  flushReads() {}
  async contactList() {
    return []
  }
  async contactAdd(name: string) {
    if (![...this.users.values()].includes(name)) throw new ChatError('UNKNOWN_USER', 'no such user')
  }
  async userLookup(ids: number[]) {
    return ids.filter((id) => this.users.has(id)).map((userId) => ({ userId, username: this.users.get(userId)! }))
  }
  async userFind(names: string[]) {
    return [...this.users].filter(([, n]) => names.includes(n)).map(([userId, username]) => ({ userId, username }))
  }
  async groupList() {
    return this.groups
  }
  async groupMembers(groupId: number) {
    const g = this.groups.find((x) => x.groupId === groupId)
    if (g === undefined) throw new ChatError('NOT_A_MEMBER', 'not a member')
    return { groupId, name: g.name, members: this.members.get(groupId) ?? [] }
  }
}

const setup = () => {
  const client = new FakeClient()
  const history = new ChatHistory()
  const out: string[] = []
  const prompts: string[] = []
  const ui = new ChatUi({ client: client as unknown as ChatClient, history, print: (l) => out.push(l), onPromptChange: (p) => prompts.push(p), onQuit: () => {} })
  ui.caughtUp()
  return { client, history, ui, out, prompts }
}

let version = 0
const message = (from: number, to: Peer, body: string): MessageEntry => ({
  kind: 'message',
  version: ++version,
  msgId: 1000 + version,
  fromUserId: from,
  fromDeviceId: 1,
  to,
  sentAtMs: Date.now(),
  clientMsgId: new Uint8Array(16).fill(version),
  body,
})
const groupEvent = (groupId: number, event: GroupEntry['event'], name: string, actor = 2, subject = actor): GroupEntry => ({
  kind: 'group',
  version: ++version,
  groupId,
  event,
  actorUserId: actor,
  subjectUserId: subject,
  name,
  atMs: Date.now(),
})

/** No character a terminal would act on, except the newlines between lines. */
const inert = (s: string): boolean => !/[\0-\x09\x0b-\x1f\x7f-\x9f\p{Cf}\p{Zl}\p{Zp}]/u.test(s)
/** Every printed line, split at newlines. */
const screen = (out: string[]): string[] => out.flatMap((l) => l.split('\n'))
/** Lines that look like a live message from someone ("06:01 [conv] sender: ..."). */
const messageLines = (out: string[]): string[] => screen(out).filter((l) => /^\d\d:\d\d \[/.test(l))

const EVIL_BODIES = ['\x1b]0;PWNED\x07\x1b[2J', 'hi\n06:01 [bob] bob: FAKE', 'ok\r\x1b[K* bob is offline', 'csi\u009b2J nul\0 bel\x07 rlo\u202Eevil lri\u2066x\u2069']

t.test('bodies from the network cannot drive the terminal or forge lines: live, in /history and in /list', async (t) => {
  const { client, ui, out } = setup()
  const bob: Peer = { kind: 'user', userId: 2 }
  for (const body of EVIL_BODIES) client.emit('message', message(2, { kind: 'user', userId: 1 }, body))
  await ui.settled()
  t.equal(messageLines(out).length, 4, 'one message line per message')
  for (const l of messageLines(out)) t.match(l, /^\d\d:\d\d \[bob\] bob: /)
  t.ok(screen(out).every(inert), JSON.stringify(out))
  t.match(out.join('\n'), /\[bob\] bob: \\e\]0;PWNED\\a\\e\[2J/)
  t.match(out.join('\n'), new RegExp(`bob: hi\\n${CONTINUATION}06:01 \\[bob\\] bob: FAKE`))
  t.match(out.join('\n'), /bob: ok\\r\\e\[K\* bob is offline/)
  t.match(out.join('\n'), /csi\\x9b2J nul\\x00 bel\\a rlo\\u\{202E\}evil lri\\u\{2066\}x\\u\{2069\}/)

  out.length = 0
  t.ok(await ui.handleLine('/to bob'))
  out.length = 0
  t.ok(await ui.handleLine('/history'))
  const replay = screen(out).filter((l) => /^ {2}\d\d:\d\d /.test(l))
  t.equal(replay.length, 4, 'one history line per message')
  t.ok(screen(out).every(inert), JSON.stringify(out))
  t.ok(screen(out).some((l) => l === `${CONTINUATION}06:01 [bob] bob: FAKE`))

  out.length = 0
  t.ok(await ui.handleLine('/list'))
  t.ok(screen(out).every(inert), JSON.stringify(out))

  // Typed text is echoed the same way (a pasted escape sequence is shown, not run).
  out.length = 0
  t.ok(await ui.handleLine('mine\x1b[2J'))
  t.same(client.sent, [{ to: bob, body: 'mine\x1b[2J' }], 'sent as typed')
  t.ok(out.every(inert))
})

t.test('group and user names from the network are escaped everywhere: prompt, events, /members, /groups, receipts, presence', async (t) => {
  const { client, history, ui, out, prompts } = setup()
  const evilGroup = 'team\x1b]0;PWNED\x07\n06:01 [bob] bob: FAKE\u202E'
  const evilUser = 'mallory\x1b[2J\u009b'
  client.users.set(9, evilUser)
  client.groups = [{ groupId: 4, name: evilGroup, memberCount: 3 }]
  client.members.set(4, [
    { userId: 1, username: 'alice' },
    { userId: 9, username: evilUser },
  ])
  client.emit('group', groupEvent(4, 'created', evilGroup, 9))
  client.emit('group', groupEvent(4, 'joined', evilGroup, 9, 1))
  client.emit('message', message(9, { kind: 'group', groupId: 4 }, 'hello'))
  client.emit('presence', 9, true)
  await ui.settled()
  t.ok(await ui.handleLine('/group #4'))
  t.ok(await ui.handleLine('/members #4'))
  t.ok(await ui.handleLine('/groups'))
  t.ok(await ui.handleLine('/list'))
  const mine = message(1, { kind: 'group', groupId: 4 }, 'sent by me')
  client.emit('message', mine)
  client.emit('receipt', { kind: 'receipt', version: ++version, msgId: mine.msgId, status: 'read', byUserId: 9, atMs: 0 })
  client.emit('disconnected', 'server closed the session: \x1b[2Jbye')
  await ui.settled()
  t.ok(screen(out).every(inert), JSON.stringify(out))
  t.ok([...prompts, ui.prompt].every((p) => inert(p) && !p.includes('\n')), JSON.stringify(prompts))
  t.match(ui.prompt, /^#4 team\\e\]0;PWNED\\a\\n06:01 \[bob\] bob: FAKE\\u\{202E\}> $/)
  t.equal(messageLines(out).filter((l) => l.includes('FAKE') && !l.includes('\\n06:01')).length, 0, 'no forged line')
  t.match(out.join('\n'), /mallory\\e\[2J\\x9b created the group/)
  t.match(out.join('\n'), /#4 team\\e.*: alice, mallory\\e\[2J\\x9b \(2\)/)
  t.match(out.join('\n'), /disconnected \(server closed the session: \\e\[2Jbye\)/)
  // History keeps the raw names (they are escaped when shown, also for older history).
  t.equal(history.groupNames.get(4), evilGroup)
})

t.test('a bare number is a name: only #N is an id (users and groups)', async (t) => {
  const { client, ui, out } = setup()
  client.groups = [
    { groupId: 1, name: 'first', memberCount: 2 },
    { groupId: 7, name: '1', memberCount: 2 },
  ]
  t.ok(await ui.handleLine('/to 2'))
  t.match(ui.prompt, /^2> $/)
  t.ok(await ui.handleLine('hi'))
  t.same(client.sent.at(-1)?.to, { kind: 'user', userId: 5 }, '/to 2 is the user named "2"')
  t.ok(await ui.handleLine('/to #2'))
  t.ok(await ui.handleLine('hi bob'))
  t.same(client.sent.at(-1)?.to, { kind: 'user', userId: 2 }, '/to #2 is user #2')
  t.ok(await ui.handleLine('/group 1'))
  t.ok(await ui.handleLine('hi group'))
  t.same(client.sent.at(-1)?.to, { kind: 'group', groupId: 7 }, '/group 1 is the group named "1"')
  t.ok(await ui.handleLine('/group #1'))
  t.ok(await ui.handleLine('hi first'))
  t.same(client.sent.at(-1)?.to, { kind: 'group', groupId: 1 })
  t.notOk(await ui.handleLine('/to 3'), 'no user named "3" (user #3 is not meant)')
  t.match(out.at(-1), /! no user named 3/)
  t.notOk(await ui.handleLine('/group 9'))
  t.match(out.at(-1), /! unknown group 9/)
})

t.test('two groups with the same name: no guess, the ids are listed', async (t) => {
  const { client, history, ui, out } = setup()
  client.groups = [
    { groupId: 3, name: 'team', memberCount: 2 },
    { groupId: 6, name: 'team', memberCount: 4 },
    { groupId: 8, name: 'Team', memberCount: 4 },
  ]
  t.notOk(await ui.handleLine('/group team'))
  t.equal(out.at(-1), '! 2 groups are named team: #3, #6; pick one by id, e.g. /group #6')
  t.equal(ui.prompt, '> ', 'no conversation was opened')
  t.notOk(await ui.handleLine('/invite team carol'))
  t.match(out.at(-1), /e\.g\. \/invite #6 carol$/)
  t.ok(await ui.handleLine('/group Team'), 'one exact match')
  t.match(ui.prompt, /^#8 Team> $/)
  t.ok(await ui.handleLine('/group #6'))
  t.match(ui.prompt, /^#6 team> $/)
  t.notOk(await ui.handleLine('/group TEAM'), 'no exact match, three ignoring case')
  t.match(out.at(-1), /3 groups are named TEAM: #3, #6, #8/)
  // Left #3 long ago (its name is still in the history): the server's list decides.
  client.groups = client.groups.filter((g) => g.groupId !== 3)
  t.same(history.groupIdsByName('team'), [3, 6])
  t.ok(await ui.handleLine('/group team'))
  t.match(ui.prompt, /^#6 team> $/)
})

t.test('handleLine says whether the line was carried out', async (t) => {
  const { ui, out } = setup()
  t.notOk(await ui.handleLine('hello?'), 'text without a conversation')
  t.match(out.at(-1), /^! no conversation/)
  t.notOk(await ui.handleLine('/to nobody'), 'unknown user')
  t.match(out.at(-1), /^! no user named nobody/)
  t.notOk(await ui.handleLine('/bogus'), 'unknown command')
  t.notOk(await ui.handleLine('/add nobody'), 'a request the server refused')
  t.match(out.at(-1), /^! UNKNOWN_USER: no such user/)
  t.notOk(await ui.handleLine('/history x'))
  t.ok(await ui.handleLine(''))
  t.ok(await ui.handleLine('/help'))
  t.ok(await ui.handleLine('/to bob'))
  t.ok(await ui.handleLine('hello'))
})

t.test('a typed message is echoed as pending, not as sent; "✓ sent" or "not sent ...: CODE" follows', async (t) => {
  const { client, ui, out } = setup()
  const bob: Peer = { kind: 'user', userId: 2 }
  t.ok(await ui.handleLine('/to bob'))
  out.length = 0
  t.ok(await ui.handleLine('hello bob'))
  t.ok(await ui.handleLine('to nobody'))
  t.same(out.length, 2)
  for (const [i, body] of ['hello bob', 'to nobody'].entries()) t.match(out[i], new RegExp(`^\\d\\d:\\d\\d \\[bob\\] alice: ${body}  \\(sending…\\)$`), 'marked pending')

  const entry = (body: string) => ({ clientMsgId: new Uint8Array(16).fill(client.sent.findIndex((s) => s.body === body) + 1), to: bob, body, createdAtMs: Date.now() })
  out.length = 0
  client.emit('sent', { ...entry('hello bob'), msgId: 70, version: 7, sentAtMs: Date.now() })
  client.emit('send_failed', entry('to nobody'), new ChatError('UNKNOWN_USER', 'no such user'))
  await ui.settled()
  t.same(out, ['  ✓ sent "hello bob"', '* not sent to bob: "to nobody": UNKNOWN_USER: no such user'])

  client.connected = false
  out.length = 0
  t.ok(await ui.handleLine('later'))
  t.match(out[0], /alice: later {2}\(queued: offline\)$/, 'offline: queued')
})
