import t from 'tap'
import { decodeChatMessage } from '../../src/protocol/chat-codec.js'
import { type ChatLink, LinkRegistry } from '../../src/server/messaging/links.js'

const link = (userId: number, deviceId: number, got: string[]): ChatLink => ({
  userId,
  deviceId,
  traceId: `${userId}/${deviceId}`,
  maxMessageBytes: 1 << 20,
  send: (bytes) => {
    const m = decodeChatMessage(bytes)
    got.push(`${deviceId}:${m.type}${m.type === 'PUSH' ? ` ${m.latestVersion}` : ''}`)
    return true
  },
})

const tick = (): Promise<void> => new Promise((resolve) => queueMicrotask(resolve))

t.test('PUSH: one per device per tick with the newest version; the sending device is skipped for its own copy', async (t) => {
  const got: string[] = []
  const links = new LinkRegistry()
  const phone = link(1, 10, got)
  const laptop = link(1, 11, got)
  links.add(phone)
  links.add(laptop)
  links.notify(1, 4, phone)
  links.notify(1, 5, phone)
  await tick()
  t.same(got, ['11:PUSH 5'], 'only the other device')

  got.length = 0
  links.notify(1, 6, phone)
  links.notify(1, 7) // a receipt in the same tick: every device must hear of it
  await tick()
  t.same(got.sort(), ['10:PUSH 7', '11:PUSH 7'])

  got.length = 0
  links.notify(1, 8, phone)
  links.notify(1, 9, laptop) // both devices sent: each is told by its SEND_OK only about its own
  await tick()
  t.same(got.sort(), ['10:PUSH 9', '11:PUSH 9'])

  got.length = 0
  links.notify(2, 1) // not online
  await tick()
  t.same(got, [])
})

t.test('online links: first and last device, one or several per user', async (t) => {
  const got: string[] = []
  const links = new LinkRegistry()
  const phone = link(1, 10, got)
  const laptop = link(1, 11, got)
  const tablet = link(1, 12, got)
  t.equal(links.add(phone), true, 'first device online')
  t.equal(links.add(phone), false, 'the same link again changes nothing')
  t.same([...links.linksOf(1)], [phone])
  t.equal(links.add(laptop), false)
  t.equal(links.add(tablet), false)
  t.same([...links.linksOf(1)], [phone, laptop, tablet])
  t.equal(links.remove(laptop), false)
  t.equal(links.remove(laptop), false, 'removing twice is harmless')
  t.equal(links.remove(phone), false)
  t.same([...links.linksOf(1)], [tablet])
  t.equal(links.isOnline(1), true)
  links.sendToUser(1, new Uint8Array([0x32, 0x01]), tablet)
  t.same(got, [], 'the only link is the excepted one')
  t.equal(links.remove(phone), false, 'a link that is not online')
  t.equal(links.remove(tablet), true, 'last device offline')
  t.equal(links.isOnline(1), false)
  t.same([...links.linksOf(1)], [])
  t.equal(links.onlineUsers, 0)
})
