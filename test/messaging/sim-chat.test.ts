/**
 * The messaging scenarios on the core's simulated network at 30 % loss each way with
 * reordering: every message delivered exactly once to every device that should have it,
 * in order per conversation. Deterministic: a failure names its seed.
 */
import t, { type Test } from 'tap'
import { encodeChatMessage } from '../../src/protocol/chat-codec.js'
import type { Peer } from '../../src/protocol/chat-types.js'
import { CONTROL_STREAM } from '../../src/io/session-auth.js'
import { ChatSim, type SimDevice } from '../helpers/chat-sim.js'

const LOSSY = {
  loss: { model: 'bernoulli' as const, probability: 0.3 },
  delay: { baseMs: 40, jitterMs: 40, distribution: 'uniform' as const, reorder: true },
}
const SEEDS = [1, 2, 3]
const VIRTUAL_LIMIT_MS = 600_000

const toUser = (d: SimDevice): Peer => ({ kind: 'user', userId: d.userId })

/** Bodies of the messages a device received from `fromUserId`, in arrival order. */
const bodiesFrom = (d: SimDevice, fromUserId: number): string[] => d.received.filter((e) => e.fromUserId === fromUserId).map((e) => e.body)

const noDuplicates = (t: Test, d: SimDevice, seed: number): void => {
  const ids = d.received.map((e) => e.msgId)
  t.equal(new Set(ids).size, ids.length, `seed ${seed}: ${d.address} received no message twice`)
}

const sendAll = (from: SimDevice, to: Peer, bodies: string[]): Array<Promise<unknown>> => bodies.map((b) => from.core.send(to, b))

const settle = async (sim: ChatSim, promises: Array<Promise<unknown>>, done: () => boolean): Promise<boolean> => {
  let settled = 0
  for (const p of promises) void p.then(() => settled++, () => settled++)
  return sim.runUntil(() => settled === promises.length && done(), VIRTUAL_LIMIT_MS)
}

const range = (prefix: string, n: number): string[] => Array.from({ length: n }, (_, i) => `${prefix}-${i}`)

/** Two users with one device each, both going online. */
const twoUsers = async (seed: number, a: string, b: string): Promise<[ChatSim, SimDevice, SimDevice]> => {
  const sim = new ChatSim({ seed, impairment: LOSSY })
  await sim.addUser(a)
  await sim.addUser(b)
  const devices = [await sim.addDevice(a, 'phone'), await sim.addDevice(b, 'phone')]
  for (const d of devices) sim.connect(d)
  return [sim, devices[0], devices[1]]
}

for (const seed of SEEDS) {
  t.test(`seed ${seed}: two users chat both ways`, async (t) => {
    const [sim, alice, bob] = await twoUsers(seed, 'alice', 'bob')
    const fromAlice = range('a', 30)
    const fromBob = range('b', 30)
    const sends = [...sendAll(alice, toUser(bob), fromAlice), ...sendAll(bob, toUser(alice), fromBob)]
    const ok = await settle(sim, sends, () => alice.received.length === 60 && bob.received.length === 60)
    t.ok(ok, `seed ${seed}: everything delivered within the virtual time limit (alice ${alice.received.length}, bob ${bob.received.length})`)
    t.same(bodiesFrom(bob, alice.userId), fromAlice, `seed ${seed}: bob got alice's messages once each, in order`)
    t.same(bodiesFrom(alice, bob.userId), fromBob, `seed ${seed}: alice got bob's messages once each, in order`)
    t.same(bodiesFrom(alice, alice.userId), fromAlice, `seed ${seed}: alice's own copies, in order`)
    noDuplicates(t, alice, seed)
    noDuplicates(t, bob, seed)
    t.equal(alice.core.outboxSize, 0, 'outbox empty')
    await sim.shutdown()
  })

  t.test(`seed ${seed}: a group of five`, async (t) => {
    const sim = new ChatSim({ seed, impairment: LOSSY })
    const names = ['g1', 'g2', 'g3', 'g4', 'g5']
    for (const n of names) await sim.addUser(n)
    const devices = await Promise.all(names.map((n) => sim.addDevice(n, 'phone')))
    for (const d of devices) sim.connect(d)
    t.ok(await sim.runUntil(() => devices.every((d) => d.core.connected), VIRTUAL_LIMIT_MS), `seed ${seed}: all logged in`)
    let groupId = 0
    const created = devices[0].core.groupCreate('five', names.slice(1)).then((g) => (groupId = g.groupId))
    t.ok(await settle(sim, [created], () => groupId > 0), `seed ${seed}: group created`)
    const to: Peer = { kind: 'group', groupId }
    const perSender = devices.map((d, i) => range(`m${i}`, 10))
    const sends = devices.flatMap((d, i) => sendAll(d, to, perSender[i]))
    const ok = await settle(sim, sends, () => devices.every((d) => d.received.length === 50))
    t.ok(ok, `seed ${seed}: every member got all 50 (${devices.map((d) => d.received.length).join(', ')})`)
    const order = devices[0].received.map((e) => e.msgId)
    for (const d of devices) {
      noDuplicates(t, d, seed)
      t.same(d.received.map((e) => e.msgId), order, `seed ${seed}: ${d.username} sees the group in the same order`)
      devices.forEach((s, i) => t.same(bodiesFrom(d, s.userId), perSender[i], `seed ${seed}: ${d.username} has ${s.username}'s messages in order`))
    }
    await sim.shutdown()
  })

  t.test(`seed ${seed}: a user with three devices`, async (t) => {
    const sim = new ChatSim({ seed, impairment: LOSSY })
    await sim.addUser('carol')
    await sim.addUser('dave')
    const carols = [await sim.addDevice('carol', 'phone'), await sim.addDevice('carol', 'laptop'), await sim.addDevice('carol', 'tablet')]
    const dave = await sim.addDevice('dave', 'phone')
    for (const d of [...carols, dave]) sim.connect(d)
    const fromDave = range('d', 20)
    const fromCarol = range('c', 10)
    const sends = [...sendAll(dave, toUser(carols[0]), fromDave), ...sendAll(carols[0], toUser(dave), fromCarol)]
    const ok = await settle(sim, sends, () => carols.every((c) => c.received.length === 30) && dave.received.length === 30)
    t.ok(ok, `seed ${seed}: all devices complete (${carols.map((c) => c.received.length).join(', ')}, dave ${dave.received.length})`)
    for (const c of carols) {
      noDuplicates(t, c, seed)
      t.same(bodiesFrom(c, dave.userId), fromDave, `seed ${seed}: carol's ${c.deviceName} has dave's messages in order`)
      t.same(bodiesFrom(c, carols[0].userId), fromCarol, `seed ${seed}: carol's ${c.deviceName} has the copies of carol's own messages`)
    }
    await sim.shutdown()
  })

  t.test(`seed ${seed}: an offline user comes back, syncs, and receipts flow`, async (t) => {
    const sim = new ChatSim({ seed, impairment: LOSSY })
    await sim.addUser('erin')
    await sim.addUser('frank')
    const erin = await sim.addDevice('erin', 'phone')
    const frank = await sim.addDevice('frank', 'phone')
    sim.connect(frank)
    const bodies = range('f', 20)
    const sends = sendAll(frank, toUser(erin), bodies)
    t.ok(await settle(sim, sends, () => true), `seed ${seed}: stored while erin is offline`)
    t.equal(erin.received.length, 0, 'erin has nothing yet')
    sim.connect(erin)
    t.ok(await sim.runUntil(() => erin.received.length === 20, VIRTUAL_LIMIT_MS), `seed ${seed}: erin synced (${erin.received.length})`)
    t.same(bodiesFrom(erin, frank.userId), bodies, `seed ${seed}: in order, once each`)
    const delivered = (): number => new Set(frank.receipts.filter((r) => r.status === 'delivered').map((r) => r.msgId)).size
    t.ok(await sim.runUntil(() => delivered() === 20, VIRTUAL_LIMIT_MS), `seed ${seed}: frank got 20 delivered receipts (${delivered()})`)
    erin.core.markRead(erin.received.map((e) => e.msgId))
    const read = (): number => new Set(frank.receipts.filter((r) => r.status === 'read').map((r) => r.msgId)).size
    t.ok(await sim.runUntil(() => read() === 20, VIRTUAL_LIMIT_MS), `seed ${seed}: frank got 20 read receipts (${read()})`)
    t.equal(frank.receipts.length, 40, `seed ${seed}: no receipt twice`)
    await sim.shutdown()
  })

  t.test(`seed ${seed}: a new device gets the history; a resent SEND is not duplicated`, async (t) => {
    const [sim, gina, hank] = await twoUsers(seed, 'gina', 'hank')
    const bodies = range('h', 15)
    t.ok(await settle(sim, sendAll(hank, toUser(gina), bodies), () => gina.received.length === 15), `seed ${seed}: first device has it`)

    // The same SEND twice (a client retrying after a lost SEND_OK): one message.
    const clientMsgId = new Uint8Array(16).fill(seed)
    const send = encodeChatMessage({ type: 'SEND', clientMsgId, to: toUser(gina), body: 'once' })
    for (let i = 0; i < 2; i++) hank.session!.send(sim.net.nowMs, CONTROL_STREAM, send)
    hank.endpoint!.wake(hank.session!)
    sim.net.nodeWake(hank.address)
    t.ok(await sim.runUntil(() => gina.received.length === 16, VIRTUAL_LIMIT_MS), `seed ${seed}: the retried message arrived`)
    await sim.runUntil(() => false, 5_000)
    t.equal(gina.received.filter((e) => e.body === 'once').length, 1, `seed ${seed}: exactly once`)

    // A reconnect resends the outbox (same client ids): still once each.
    const more = sendAll(hank, toUser(gina), range('r', 5))
    sim.disconnect(hank)
    sim.connect(hank)
    t.ok(await settle(sim, more, () => gina.received.length === 21), `seed ${seed}: resent after reconnect`)
    await sim.runUntil(() => false, 5_000)
    noDuplicates(t, gina, seed)
    t.equal(gina.received.length, 21, `seed ${seed}: nothing duplicated by the resend`)

    const tablet = await sim.addDevice('gina', 'tablet')
    sim.connect(tablet)
    t.ok(await sim.runUntil(() => tablet.received.length === 21, VIRTUAL_LIMIT_MS), `seed ${seed}: the new device got the whole history (${tablet.received.length})`)
    t.same(tablet.received.map((e) => e.msgId), gina.received.map((e) => e.msgId), `seed ${seed}: same messages, same order`)
    await sim.shutdown()
  })
}
