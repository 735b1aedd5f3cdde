import { randomBytes } from 'node:crypto'
import t from 'tap'
import { makeStreamId, StreamKind } from '../../src/core/streams/stream-kind.js'
import { LOOPBACKS, connect, endpointEvent, messages, startServer, str, text } from './helpers.js'

const TIMEOUT_MS = 30_000

for (const host of LOOPBACKS) {
  t.test(`echo over ${host}`, async (t) => {
    const server = await startServer(host)
    t.teardown(() => server.close())

    t.test('connect and echo a small message', { timeout: TIMEOUT_MS }, async (t) => {
      const client = await connect(host, server.port)
      t.ok(client.isConnected)
      const echoed = messages(client, 1)
      const seq = client.send(0, text('hello pigeon'))
      const [m] = await echoed
      t.same({ streamId: m.streamId, seq: m.seq, text: str(m.data) }, { streamId: 0, seq, text: 'hello pigeon' })
      await client.close()
    })

    t.test('echo a 200 KB message (fragmented) on each stream kind', { timeout: TIMEOUT_MS }, async (t) => {
      const client = await connect(host, server.port)
      const payload = randomBytes(200_000)
      for (const streamId of [makeStreamId(1, StreamKind.ordered), makeStreamId(1, StreamKind.unordered)]) {
        const echoed = messages(client, 1)
        client.send(streamId, payload)
        const [m] = await echoed
        t.equal(m.streamId, streamId)
        t.ok(Buffer.from(m.data).equals(payload), `stream ${streamId}: same 200 KB back`)
      }
      t.ok(client.stats.session.packetsReceived > 2 * (200_000 / 1200), 'it took many datagrams')
      await client.close()
    })

    t.test('many messages come back in order, all acknowledged', { timeout: TIMEOUT_MS }, async (t) => {
      const client = await connect(host, server.port)
      const count = 2000
      let acked = 0
      const allAcked = new Promise<void>((resolve) =>
        client.on('acked', () => {
          if (++acked === count) resolve()
        }),
      )
      const echoed = messages(client, count)
      for (let i = 0; i < count; i++) client.send(0, text(`m${i}`))
      const got = await echoed
      t.same(got.map((m) => str(m.data)), Array.from({ length: count }, (_, i) => `m${i}`))
      await allAcked
      t.equal(acked, count)
      await client.close()
    })

    t.test('two clients at once each get only their own echoes', { timeout: TIMEOUT_MS }, async (t) => {
      const [a, b] = await Promise.all([connect(host, server.port), connect(host, server.port)])
      const count = 300
      const gotA = messages(a, count)
      const gotB = messages(b, count)
      for (let i = 0; i < count; i++) {
        a.send(0, text(`a${i}`))
        b.send(4, text(`b${i}`))
      }
      const [ma, mb] = await Promise.all([gotA, gotB])
      t.same(ma.map((m) => str(m.data)), Array.from({ length: count }, (_, i) => `a${i}`))
      t.same(mb.map((m) => str(m.data)), Array.from({ length: count }, (_, i) => `b${i}`))
      t.ok(mb.every((m) => m.streamId === 4))
      await Promise.all([a.close(), b.close()])
    })

    t.test('client close -> the server sees the session closed by its peer', { timeout: TIMEOUT_MS }, async (t) => {
      const accepted = endpointEvent(server.endpoint, 'accepted')
      const client = await connect(host, server.port)
      const { session } = await accepted
      const closedAtServer = endpointEvent(server.endpoint, 'closed', (e) => e.session === session)
      const closedAtClient = new Promise((resolve) => client.once('closed', resolve))
      await client.close(0, 'bye')
      t.same(await closedAtClient, { code: 0, reason: 'bye', byPeer: false })
      const e = await closedAtServer
      t.same(e.event, { type: 'closed', code: 0, reason: 'bye', byPeer: true })
    })

    t.test('server close -> the client sees the session closed by its peer', { timeout: TIMEOUT_MS }, async (t) => {
      const other = await startServer(host)
      const client = await connect(host, other.port)
      const closed = new Promise((resolve) => client.once('closed', resolve))
      await other.close()
      t.same(await closed, { code: 0, reason: 'server shutting down', byPeer: true })
    })

    t.test('nothing went wrong at the edge', async (t) => {
      t.equal(server.endpoint.stats.coreErrors, 0)
      t.equal(server.endpoint.stats.sendErrors, 0)
      t.equal(server.endpoint.stats.socketErrors, 0)
    })
  })
}
