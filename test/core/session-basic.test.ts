import t from 'tap'
import { SimPair } from '../helpers/sim-pair.js'

t.test('handshake and a few messages both ways on a clean link', async (t) => {
  const pair = new SimPair({ seed: 1, up: { delay: { baseMs: 25 } }, down: { delay: { baseMs: 25 } } })
  t.ok(pair.connect(), 'connected')
  for (let i = 0; i < 10; i++) pair.clientSend(0, new TextEncoder().encode(`hello ${i}`))
  pair.net.runUntil({ untilMs: pair.net.nowMs + 1000, predicate: () => pair.atServer.length === 10 })
  t.equal(pair.atServer.length, 10)
  t.same(pair.atServer.map((m) => new TextDecoder().decode(m.data)), Array.from({ length: 10 }, (_, i) => `hello ${i}`))
  pair.serverSend(0, new Uint8Array(100_000).fill(7))
  pair.net.runUntil({ untilMs: pair.net.nowMs + 5000, predicate: () => pair.atClient.length === 1 })
  t.equal(pair.atClient.length, 1)
  t.equal(pair.atClient[0].data.length, 100_000)
  pair.net.runUntil({ untilMs: pair.net.nowMs + 1000 })
  t.equal(pair.eventsOf('client', 'message_acked').length, 10)
  t.equal(pair.eventsOf('server', 'message_acked').length, 1)
})
