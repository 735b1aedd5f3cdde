import t from 'tap'
import { PigeonConnectError } from '../../src/io/client.js'
import { LOOPBACKS, connect, unusedPort } from './helpers.js'

for (const host of LOOPBACKS) {
  t.test(`nothing listening on ${host}`, async (t) => {
    t.test('dead link: connect rejects with a clear error', { timeout: 20_000 }, async (t) => {
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
  })
}
