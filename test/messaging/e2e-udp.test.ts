/**
 * The messaging scenarios end to end over real UDP on loopback: the chat server in
 * process (startChatServer), encrypted (a generated server key pair the clients pin),
 * SQLite stores in a temporary data directory, ChatClients with their state on disk.
 * Every wait is for a condition with a deadline; "synced" means a device's cursor has
 * reached its inbox head as the store has it, so nothing more can arrive unseen.
 */
import { rmSync } from 'node:fs'
import t, { type Test } from 'tap'
import type { ChatClient, ChatClientOptions } from '../../src/client/chat-client.js'
import type { SentInfo } from '../../src/client/chat-core.js'
import { PigeonClient } from '../../src/io/client.js'
import { decodeChatMessage, encodeChatMessage, isChatMessage } from '../../src/protocol/chat-codec.js'
import type { ChatMessage, Peer } from '../../src/protocol/chat-types.js'
import { isLoginMessage } from '../../src/protocol/login-messages.js'
import {
  type Device,
  type World,
  bodiesFrom,
  passwordOf,
  pulse,
  range,
  rejection,
  startDevice,
  startWorld,
  syncedToHead,
  tempDir,
  waitFor,
  watch,
} from './udp-helpers.js'

const TIMEOUT = { timeout: 60_000 }

const toUser = (d: Device): Peer => ({ kind: 'user', userId: d.client.userId! })

/** Fire every send at once (several in flight); resolves with the SEND_OKs in sending order. */
const sendAll = (from: ChatClient, to: Peer, bodies: string[]): Promise<SentInfo[]> => Promise.all(bodies.map((b) => from.send(to, b)))

const noDuplicates = (t: Test, d: Device): void => {
  const ids = d.messages.map((m) => m.msgId)
  t.equal(new Set(ids).size, ids.length, `${d.username}/${d.deviceName} received no message twice (${ids.length} messages)`)
  const versions = d.messages.map((m) => m.version)
  t.ok(versions.every((v, i) => i === 0 || v > versions[i - 1]), `${d.username}/${d.deviceName}: versions strictly increasing`)
}

/** Start a device and close it when the test ends. */
const device = async (t: Test, w: World, username: string, deviceName: string, extra: Partial<ChatClientOptions> = {}): Promise<Device> => {
  const d = await startDevice(w.clientOptions(username, deviceName, extra))
  t.teardown(() => d.client.close())
  return d
}

for (const host of ['127.0.0.1', '::1']) {
  t.test(`two users chat both ways over ${host}: in order, exactly once`, TIMEOUT, async (t) => {
    const w = await startWorld(host)
    t.teardown(() => w.close())
    await w.addUser('alice')
    await w.addUser('bob')
    const alice = await device(t, w, 'alice', 'phone')
    const bob = await device(t, w, 'bob', 'phone')
    t.equal(w.server.family, host === '::1' ? 'IPv6' : 'IPv4', `the server listens on ${host}`)

    const fromAlice = range('a', 40)
    const fromBob = range('b', 40)
    const [okA, okB] = await Promise.all([sendAll(alice.client, toUser(bob), fromAlice), sendAll(bob.client, toUser(alice), fromBob)])
    t.equal(new Set(okA.map((s) => s.msgId)).size, 40, 'forty distinct msgIds for alice')
    t.equal(new Set(okB.map((s) => s.msgId)).size, 40, 'forty distinct msgIds for bob')
    await syncedToHead(w, alice)
    await syncedToHead(w, bob)

    t.same(bodiesFrom(bob, alice.client.userId!), fromAlice, "bob got alice's messages once each, in order")
    t.same(bodiesFrom(alice, bob.client.userId!), fromBob, "alice got bob's messages once each, in order")
    t.same(bodiesFrom(alice, alice.client.userId!), fromAlice, "alice's copies of her own, in order")
    t.same(bodiesFrom(bob, bob.client.userId!), fromBob, "bob's copies of his own, in order")
    t.same(
      bob.messages.filter((m) => m.fromUserId === alice.client.userId).map((m) => m.msgId),
      okA.map((s) => s.msgId),
      'the msgIds bob received are those of the SEND_OKs, in sending order',
    )
    t.ok(
      bob.messages.filter((m) => m.fromUserId === alice.client.userId).every((m, i) => Buffer.from(m.clientMsgId).equals(Buffer.from(okA[i].clientMsgId))),
      'and carry the clientMsgIds alice chose',
    )
    noDuplicates(t, alice)
    noDuplicates(t, bob)
    t.equal(alice.messages.length, 80)
    t.equal(bob.messages.length, 80)
    t.equal(alice.client.outboxSize + bob.client.outboxSize, 0, 'outboxes empty')
    t.same([...alice.protocolErrors, ...bob.protocolErrors], [], 'no protocol errors')
  })
}

t.test('a group of five: create, invite, everyone sends, everyone sees the same order; rename and leave', TIMEOUT, async (t) => {
  const w = await startWorld()
  t.teardown(() => w.close())
  const names = ['g1', 'g2', 'g3', 'g4', 'g5']
  for (const n of names) await w.addUser(n)
  const devices: Device[] = []
  for (const n of names) devices.push(await device(t, w, n, 'phone'))
  const [g1, g2, , g4, g5] = devices

  const group = await g1.client.groupCreate('five', ['g2', 'g3'])
  t.same(group.members.map((m) => m.username).sort(), ['g1', 'g2', 'g3'], 'created with three members')
  await g1.client.groupInvite(group.groupId, 'g4')
  await g2.client.groupInvite(group.groupId, 'g5')
  t.same((await g5.client.groupMembers(group.groupId)).members.map((m) => m.username).sort(), names, 'five members after the invites')
  t.match(await g4.client.groupList(), [{ groupId: group.groupId, name: 'five', memberCount: 5 }])

  const to: Peer = { kind: 'group', groupId: group.groupId }
  const perSender = devices.map((_, i) => range(`m${i}`, 10))
  const acks = await Promise.all(devices.map((d, i) => sendAll(d.client, to, perSender[i])))
  for (const d of devices) await syncedToHead(w, d)

  const order = devices[0].messages.map((m) => m.msgId)
  t.equal(order.length, 50, 'fifty group messages')
  t.same([...order].sort((a, b) => a - b), acks.flat().map((s) => s.msgId).sort((a, b) => a - b), 'exactly the acknowledged messages')
  for (const d of devices) {
    noDuplicates(t, d)
    t.same(d.messages.map((m) => m.msgId), order, `${d.username} sees the group in the same order`)
    t.ok(d.messages.every((m) => m.to.kind === 'group' && m.to.groupId === group.groupId), `${d.username}: all addressed to the group`)
    devices.forEach((s, i) => t.same(bodiesFrom(d, s.client.userId!), perSender[i], `${d.username} has ${s.username}'s messages in order`))
  }

  await g2.client.groupRename(group.groupId, 'high five')
  await g5.client.groupLeave(group.groupId)
  for (const d of devices) await syncedToHead(w, d)
  const ev = (d: Device): string[] => d.groups.map((g) => `${g.event}:${g.subjectUserId === g.actorUserId ? '' : `${g.subjectUserId}`}:${g.name}`)
  const [u1, , , u4, u5] = devices.map((d) => d.client.userId!)
  const joined4 = `joined:${u4}:five`
  const joined5 = `joined:${u5}:five`
  const tail = ['renamed::high five', 'left::high five']
  t.same(ev(g1), ['created::five', joined4, joined5, ...tail], 'the creator saw every event')
  t.same(ev(devices[2]), ['created::five', joined4, joined5, ...tail], 'g3 too')
  t.same(ev(g4), [joined4, joined5, ...tail], 'g4 from its own join on')
  t.same(ev(g5), [joined5, ...tail], 'the leaver gets its left entry too')
  t.ok(g1.groups.every((g) => g.groupId === group.groupId))
  t.equal(g1.groups[0].actorUserId, u1, 'created by g1')
  t.equal(g1.groups.find((g) => g.event === 'left')!.subjectUserId, u5, 'g5 left')

  t.same((await g1.client.groupMembers(group.groupId)).members.map((m) => m.username).sort(), ['g1', 'g2', 'g3', 'g4'], 'four members left')
  const err = await rejection(g5.client.send(to, 'still here?'))
  t.equal(err.code, 'NOT_A_MEMBER', 'the leaver can no longer send to the group')
  t.same(await g5.client.groupList(), [], 'and the group is gone from its list')
})

t.test('a user with three devices: every device gets every message, copies of its own included', TIMEOUT, async (t) => {
  const w = await startWorld()
  t.teardown(() => w.close())
  await w.addUser('carol')
  await w.addUser('dave')
  const carols = [await device(t, w, 'carol', 'phone'), await device(t, w, 'carol', 'laptop'), await device(t, w, 'carol', 'tablet')]
  const dave = await device(t, w, 'dave', 'phone')
  t.equal(new Set(carols.map((c) => c.client.deviceId)).size, 3, 'three distinct devices')
  t.ok(carols.every((c) => c.client.userId === carols[0].client.userId), 'of one user')

  const fromDave = range('d', 15)
  const fromPhone = range('c-phone', 10)
  const fromLaptop = range('c-laptop', 5)
  await Promise.all([sendAll(dave.client, toUser(carols[0]), fromDave), sendAll(carols[0].client, toUser(dave), fromPhone), sendAll(carols[1].client, toUser(dave), fromLaptop)])
  for (const d of [...carols, dave]) await syncedToHead(w, d)

  const carolId = carols[0].client.userId!
  for (const c of carols) {
    noDuplicates(t, c)
    t.equal(c.messages.length, 30, `carol's ${c.deviceName} has all 30`)
    t.same(bodiesFrom(c, dave.client.userId!), fromDave, `carol's ${c.deviceName} has dave's messages in order`)
    const own = c.messages.filter((m) => m.fromUserId === carolId)
    t.same(own.filter((m) => m.fromDeviceId === carols[0].client.deviceId).map((m) => m.body), fromPhone, `carol's ${c.deviceName} has the phone's messages`)
    t.same(own.filter((m) => m.fromDeviceId === carols[1].client.deviceId).map((m) => m.body), fromLaptop, `carol's ${c.deviceName} has the laptop's messages`)
    t.equal(own.length, 15, `carol's ${c.deviceName}: nothing else of her own`)
  }
  t.same(carols[1].messages.map((m) => m.msgId), carols[0].messages.map((m) => m.msgId), 'laptop and phone: same inbox, same order')
  t.same(carols[2].messages.map((m) => m.msgId), carols[0].messages.map((m) => m.msgId), 'tablet and phone: same inbox, same order')
  noDuplicates(t, dave)
  t.same([...bodiesFrom(dave, carolId)].sort(), [...fromPhone, ...fromLaptop].sort(), "dave got both of carol's devices' messages, once each")
  t.same(
    dave.messages.filter((m) => m.fromDeviceId === carols[0].client.deviceId).map((m) => m.body),
    fromPhone,
    "dave got the phone's messages in order",
  )
})

t.test('an offline user comes back from its state dir and syncs exactly the missing messages; receipts sent, delivered, read', TIMEOUT, async (t) => {
  const w = await startWorld()
  t.teardown(() => w.close())
  await w.addUser('erin')
  await w.addUser('frank')
  const stateDir = tempDir('pigeon-e2e-state-')
  t.teardown(() => rmSync(stateDir, { recursive: true, force: true }))
  const frank = await device(t, w, 'frank', 'phone')
  const erin1 = await device(t, w, 'erin', 'phone', { stateDir })
  const erinId = erin1.client.userId!

  const before = range('before', 5)
  await sendAll(frank.client, { kind: 'user', userId: erinId }, before)
  await syncedToHead(w, erin1)
  t.same(bodiesFrom(erin1, frank.client.userId!), before, 'erin got the first five')
  const cursorAtClose = erin1.client.cursor
  await erin1.client.close()

  const whileAway = range('away', 12)
  const sent = await sendAll(frank.client, { kind: 'user', userId: erinId }, whileAway)
  t.ok(sent.every((s) => s.msgId > 0 && s.version > 0 && s.sentAtMs > 0), 'sent: every SEND_OK carries msgId, version and time')
  const awayIds = new Set(sent.map((s) => s.msgId))
  await syncedToHead(w, frank)
  const receiptsFor = (status: string): Set<number> => new Set(frank.receipts.filter((r) => r.status === status && awayIds.has(r.msgId)).map((r) => r.msgId))
  t.equal(receiptsFor('delivered').size, 0, 'no delivered receipt while erin is offline (frank holds his whole inbox)')
  t.ok(frank.receipts.some((r) => r.status === 'delivered'), "but the first five's delivered receipts are there")

  // Back from the same state directory: RESUME with the stored token, sync from the stored cursor.
  const erin2 = await device(t, w, 'erin', 'phone', { stateDir, password: undefined })
  t.equal(erin2.client.cursor >= cursorAtClose, true, 'the cursor was kept on disk')
  await syncedToHead(w, erin2)
  t.same(erin2.messages.map((m) => m.body), whileAway, 'exactly the missing messages, in order, none of the earlier ones again')
  t.same(erin2.messages.map((m) => m.msgId), sent.map((s) => s.msgId), 'with the msgIds of the SEND_OKs')
  noDuplicates(t, erin2)

  await waitFor('delivered receipts for all twelve', () => receiptsFor('delivered').size === 12)
  t.equal(receiptsFor('read').size, 0, 'not read yet')
  erin2.client.markRead(erin2.messages.map((m) => m.msgId))
  erin2.client.flushReads()
  await waitFor('read receipts for all twelve', () => receiptsFor('read').size === 12)
  await syncedToHead(w, frank)
  t.equal(frank.receipts.filter((r) => awayIds.has(r.msgId)).length, 24, 'one delivered and one read receipt per message, none twice')
  t.ok(frank.receipts.every((r) => r.byUserId === erinId), 'all by erin')
  noDuplicates(t, frank)
})

t.test('a new device gets the whole history in the same order', TIMEOUT, async (t) => {
  const w = await startWorld()
  t.teardown(() => w.close())
  await w.addUser('gina')
  await w.addUser('hank')
  const gina = await device(t, w, 'gina', 'phone')
  const hank = await device(t, w, 'hank', 'phone')
  await sendAll(hank.client, toUser(gina), range('h', 20))
  await sendAll(gina.client, toUser(hank), range('g', 5))
  await syncedToHead(w, gina)
  t.equal(gina.messages.length, 25)

  const tablet = await device(t, w, 'gina', 'tablet')
  t.not(tablet.client.deviceId, gina.client.deviceId, 'a new device')
  t.equal(tablet.client.cursor, 0, 'starting from nothing')
  await syncedToHead(w, tablet)
  t.same(tablet.messages.map((m) => m.msgId), gina.messages.map((m) => m.msgId), 'the whole history, same order')
  t.same(tablet.messages.map((m) => m.body), gina.messages.map((m) => m.body))
  noDuplicates(t, tablet)
})

/** A raw session logged in as `username`; collects the messaging messages it receives. */
const rawSession = async (w: World, username: string, deviceName: string): Promise<{ client: PigeonClient; got: ChatMessage[] }> => {
  const client = watch(await PigeonClient.connect({ host: w.host, port: w.port, serverPublicKey: w.keyPair.publicKey, connectTimeoutMs: 5_000 }))
  const got: ChatMessage[] = []
  client.on('message', (streamId, _seq, data) => {
    if (streamId === 0 && !isLoginMessage(data) && isChatMessage(data)) got.push(decodeChatMessage(data))
  })
  await client.login({ username, password: passwordOf(username), deviceName })
  return { client, got }
}

t.test('the same SEND twice is stored once: the same msgId in every SEND_OK, across sessions and a server restart', TIMEOUT, async (t) => {
  const w = await startWorld()
  t.teardown(() => w.close())
  await w.addUser('ivan')
  const judyId = await w.addUser('judy')
  const clientMsgId = new Uint8Array(16).fill(0x5a)
  const send = encodeChatMessage({ type: 'SEND', clientMsgId, to: { kind: 'user', userId: judyId }, body: 'once' })
  const sendOks = (got: ChatMessage[]) => got.filter((m): m is Extract<ChatMessage, { type: 'SEND_OK' }> => m.type === 'SEND_OK')

  const raw = await rawSession(w, 'ivan', 'raw')
  raw.client.send(0, send)
  raw.client.send(0, send)
  const [first, second] = await waitFor('two SEND_OKs', () => (sendOks(raw.got).length >= 2 ? sendOks(raw.got) : undefined))
  t.ok(Buffer.from(first.clientMsgId).equals(Buffer.from(clientMsgId)), 'SEND_OK names the clientMsgId')
  t.same(second, first, 'the duplicate gets the same SEND_OK (msgId, version, sentAtMs)')
  t.equal(w.server.messaging.stats.duplicateSends, 1, 'counted as a duplicate')
  await raw.client.close()

  // A retry on a new session (the client reconnected without having seen the SEND_OK).
  const again = await rawSession(w, 'ivan', 'raw')
  again.client.send(0, send)
  const [third] = await waitFor('SEND_OK on the new session', () => (sendOks(again.got).length >= 1 ? sendOks(again.got) : undefined))
  t.same(third, first, 'the same SEND_OK on a new session')
  await again.client.close()

  // And after a server restart (the in-memory dedupe cache is gone; the store remembers).
  await w.restart()
  const afterRestart = await rawSession(w, 'ivan', 'raw')
  afterRestart.client.send(0, encodeChatMessage({ type: 'SEND', clientMsgId, to: { kind: 'user', userId: judyId }, body: 'a different body' }))
  const [fourth] = await waitFor('SEND_OK after the restart', () => (sendOks(afterRestart.got).length >= 1 ? sendOks(afterRestart.got) : undefined))
  t.same(fourth, first, 'the same SEND_OK after a server restart, whatever the body says')
  await afterRestart.client.close()

  const judy = await device(t, w, 'judy', 'phone')
  await syncedToHead(w, judy)
  t.same(judy.messages.map((m) => m.body), ['once'], 'judy has the message exactly once')
  t.equal(judy.messages[0].msgId, first.msgId)
})

/**
 * Swallow the server's SEND_OKs (type 0x30 on stream 0) while `drop()` is true: the
 * messages are stored and delivered, but their sender never hears so.
 */
const dropSendOks = (w: World, drop: () => boolean): { dropped: () => number } => {
  const endpoint = w.server.endpoint
  const original = endpoint.send.bind(endpoint)
  let dropped = 0
  endpoint.send = ((session, streamId, data, opts) => {
    if (drop() && streamId === 0 && data[0] === 0x30) {
      dropped++
      pulse()
      return 0
    }
    return original(session, streamId, data, opts)
  }) as typeof endpoint.send
  return { dropped: () => dropped }
}

for (const how of ['the session is closed', 'the server restarts'] as const) {
  t.test(`a ChatClient resends unacknowledged messages after a reconnect (${how}): each stored once, the same msgId`, TIMEOUT, async (t) => {
    const w = await startWorld()
    t.teardown(() => w.close())
    await w.addUser('kate')
    await w.addUser('liam')
    const kate = await device(t, w, 'kate', 'phone')
    const liam = await device(t, w, 'liam', 'phone')
    let dropping = true
    const drops = dropSendOks(w, () => dropping)

    const bodies = range('k', 30)
    const pending = bodies.map((b) => kate.client.send(toUser(liam), b))
    // Stored and delivered, but kate has no SEND_OK: all thirty wait in her outbox.
    await waitFor('liam to have all thirty', () => liam.messages.length === 30)
    await waitFor('every SEND_OK swallowed', () => drops.dropped() === 30)
    t.equal(kate.client.outboxSize, 30, 'none acknowledged yet')
    const firstDelivery = liam.messages.map((m) => m.msgId)

    const reconnected = new Promise<boolean>((resolve) => kate.client.once('connected', (i) => resolve(i.resumed)))
    dropping = false
    if (how === 'the session is closed') t.equal(w.server.kickUser(kate.client.userId!), 1, "kate's session closed")
    else await w.restart() // the new server has no dedupe cache: the store answers
    t.ok(await reconnected, 'kate reconnected (RESUME with her token)')
    const sent = await Promise.all(pending)
    t.equal(w.server.messaging.stats.duplicateSends, 30, 'the server saw all thirty again, as duplicates')
    t.same(sent.map((s) => s.msgId), firstDelivery, 'the SEND_OKs name the msgIds of the first delivery')

    await syncedToHead(w, liam)
    await syncedToHead(w, kate)
    t.same(bodiesFrom(liam, kate.client.userId!), bodies, 'liam has each message once, in order')
    t.same(bodiesFrom(kate, kate.client.userId!), bodies, "kate's own copies, once each")
    noDuplicates(t, liam)
    noDuplicates(t, kate)
    t.equal(kate.client.outboxSize, 0, 'outbox empty')
  })
}

t.test('errors have clear codes: unknown user, oversized message, not a member, unknown group', TIMEOUT, async (t) => {
  const w = await startWorld()
  t.teardown(() => w.close())
  await w.addUser('mona')
  await w.addUser('nick')
  await w.addUser('olga')
  const mona = await device(t, w, 'mona', 'phone')
  const nick = await device(t, w, 'nick', 'phone')

  t.equal((await rejection(mona.client.send({ kind: 'user', userId: 999_999 }, 'hello?'))).code, 'UNKNOWN_USER', 'SEND to an unknown user id')
  t.equal((await rejection(mona.client.contactAdd('ghost'))).code, 'UNKNOWN_USER', 'CONTACT_ADD of an unknown name')
  t.equal((await rejection(mona.client.groupCreate('g', ['nick', 'ghost']))).code, 'UNKNOWN_USER', 'GROUP_CREATE with an unknown member')

  const big = 'x'.repeat(4097)
  const tooLarge = await rejection(mona.client.send(toUser(nick), big))
  t.equal(tooLarge.code, 'MESSAGE_TOO_LARGE', 'a body over the server limit (4096 bytes)')
  t.match(tooLarge.message, /MESSAGE_TOO_LARGE/)
  t.equal((await rejection(mona.client.send(toUser(nick), 'y'.repeat(70_000)))).code, 'MESSAGE_TOO_LARGE', 'a body over the wire limit is refused locally')
  await mona.client.send(toUser(nick), 'z'.repeat(4096)).then((s) => t.ok(s.msgId > 0, 'exactly at the limit is fine'))

  const group = await nick.client.groupCreate('private', ['olga'])
  const to: Peer = { kind: 'group', groupId: group.groupId }
  t.equal((await rejection(mona.client.send(to, 'let me in'))).code, 'NOT_A_MEMBER', 'SEND to a group one is not in')
  t.equal((await rejection(mona.client.groupMembers(group.groupId))).code, 'NOT_A_MEMBER', 'GROUP_MEMBERS of such a group')
  t.equal((await rejection(mona.client.groupRename(group.groupId, 'mine'))).code, 'NOT_A_MEMBER', 'GROUP_RENAME of such a group')
  t.equal((await rejection(mona.client.groupInvite(group.groupId, 'mona'))).code, 'NOT_A_MEMBER', 'GROUP_INVITE by a non-member')
  t.equal((await rejection(mona.client.send({ kind: 'group', groupId: 424_242 }, 'hm'))).code, 'UNKNOWN_GROUP', 'SEND to an unknown group')
  t.equal((await rejection(nick.client.groupInvite(group.groupId, 'olga'))).code, 'ALREADY_MEMBER', 'inviting a member again')

  t.equal(mona.client.outboxSize, 0, 'refused messages leave the outbox')
  await syncedToHead(w, nick)
  t.same(nick.messages.map((m) => m.body.length), [4096], 'nick got only the message that was accepted')
  t.same(mona.protocolErrors, [])
})
