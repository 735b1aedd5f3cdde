import t from 'tap'
import { ErrorCode } from '../../src/core/errors.js'
import { PigeonConnectError } from '../../src/io/client.js'
import { LOOPBACKS, connect, messages, startServer, text, unusedPort } from './helpers.js'
import { startRelay } from './relay.js'

for (const host of LOOPBACKS) {
  t.test(`unreachable server over ${host}`, async (t) => {
    t.test('nothing listening: connect rejects with a clear dead-link error', { timeout: 20_000 }, async (t) => {
      const port = await unusedPort(host)
      const err = await connect(host, port, { sessionConfig: { deadLinkTimeoutMs: 300, initialRttMs: 20 } }).then(
        () => undefined,
        (e: unknown) => e,
      )
      t.ok(err instanceof PigeonConnectError, 'a PigeonConnectError')
      const e = err as PigeonConnectError
      t.equal(e.reason, 'dead_link')
      t.match(e.message, /unreachable: no answer for \d+ ms \(dead link\)/)
      t.match(e.message, String(port), 'the message names the port')
    })

    t.test('connect timeout fires first when shorter than the dead-link timer', { timeout: 20_000 }, async (t) => {
      const port = await unusedPort(host)
      const err = await connect(host, port, { connectTimeoutMs: 200 }).then(
        () => undefined,
        (e: unknown) => e,
      )
      t.ok(err instanceof PigeonConnectError)
      t.equal((err as PigeonConnectError).reason, 'timeout')
      t.match((err as PigeonConnectError).message, /no answer within 200 ms \(connect timeout\)/)
    })

    t.test('server goes silent mid-session: dead_link, failed for unacknowledged messages, closed', { timeout: 20_000 }, async (t) => {
      const server = await startServer(host)
      t.teardown(() => server.close())
      let blackhole = false
      const relay = await startRelay({ host, serverPort: server.port, upstream: (d) => (blackhole ? [] : [d]) })
      t.teardown(() => relay.close())
      const client = await connect(host, relay.port, { sessionConfig: { deadLinkTimeoutMs: 300 } })
      const first = messages(client, 1)
      client.send(0, text('before'))
      await first
      blackhole = true
      const failed: number[] = []
      client.on('failed', (_streamId, seq) => failed.push(seq))
      const deadLink = new Promise<number>((resolve) => client.once('dead_link', resolve))
      const closed = new Promise<{ code: number }>((resolve) => client.once('closed', resolve))
      const seqs = [client.send(0, text('lost 1')), client.send(0, text('lost 2'))]
      t.ok((await deadLink) >= 300, 'dead link after 300 ms of silence')
      t.equal((await closed).code, ErrorCode.DEAD_LINK, 'closed with DEAD_LINK')
      t.same(failed, seqs, 'both unacknowledged messages reported failed')
    })
  })
}
