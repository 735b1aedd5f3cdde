/**
 * A group of sessions: five clients behind one server endpoint, sharing a 2 Mbit/s
 * bottleneck into the server with 10 % loss. The server echoes every message back to
 * its sender; each client must get exactly its own messages back, in order.
 */
import t from 'tap'
import { Endpoint } from '../../src/core/endpoint.js'
import { checksumProtection } from '../../src/core/protection.js'
import type { Session } from '../../src/core/session/session.js'
import { EndpointNode } from '../../src/sim/endpoint-node.js'
import { SimNetwork } from '../../src/sim/network.js'

t.test('five clients through one server endpoint over a shared lossy bottleneck', async (t) => {
  for (const seed of [1, 2, 3]) {
    const net = new SimNetwork({ seed })
    const server = new Endpoint<string>({ rng: net.rngFor('server'), server: true, protection: () => checksumProtection })
    net.addNode('server', new EndpointNode(server, (now, e) => {
      if (e.event.type !== 'message') return
      e.session.send(now, e.event.streamId, e.event.data)
      server.wake(e.session)
    }))
    const received = new Map<string, string[]>()
    const sessions: Session[] = []
    for (let i = 0; i < 5; i++) {
      const name = `client-${i}`
      const client = new Endpoint<string>({ rng: net.rngFor(name), server: false, protection: () => checksumProtection })
      received.set(name, [])
      net.addNode(name, new EndpointNode(client, (_now, e) => {
        if (e.event.type === 'message') received.get(name)!.push(new TextDecoder().decode(e.event.data))
      }))
      // Per-client links share nothing but the server's loss and delay settings.
      net.setLink(name, 'server', { delay: { baseMs: 20, jitterMs: 5, reorder: true }, loss: { model: 'bernoulli', probability: 0.1 }, rateBitsPerSecond: 2_000_000 })
      net.setLink('server', name, { delay: { baseMs: 20 }, loss: { model: 'bernoulli', probability: 0.1 } })
      const session = client.connect(net.nowMs, 'server')
      sessions.push(session)
      for (let m = 0; m < 40; m++) {
        net.at(100 + m * 15 + i, (now) => {
          session.send(now, 0, new TextEncoder().encode(`${name}:${m}`))
          client.wake(session)
          net.nodeWake(name)
        })
      }
      net.nodeWake(name)
    }
    net.runUntil({ untilMs: 60_000, predicate: () => [...received.values()].every((r) => r.length === 40) })
    for (const [name, got] of received) {
      t.same(got, Array.from({ length: 40 }, (_, m) => `${name}:${m}`), `seed ${seed}: ${name} got its 40 echoes, in order, once`)
    }
    t.equal(server.sessionCount, 5, `seed ${seed}: five sessions on the server`)
  }
})
