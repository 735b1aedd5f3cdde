import t from 'tap'
import { type PacketProtection, checksumProtection } from '../../src/core/protection.js'
import { UdpEndpoint } from '../../src/io/udp-endpoint.js'
import { LOOPBACKS, connect, endpointEvent, messages, str, text } from './helpers.js'

/** Echo server on a bare UdpEndpoint whose protection throws on its first `failures` opens. */
const flakyServer = async (host: string, failures: number): Promise<UdpEndpoint> => {
  let left = failures
  const flaky: PacketProtection = {
    ...checksumProtection,
    open: (packet, opts) => {
      if (left-- > 0) throw new Error('simulated bug inside the core')
      return checksumProtection.open(packet, opts)
    },
  }
  const udp = await UdpEndpoint.open({ host, port: 0, server: true, protection: () => flaky })
  udp.on('event', (e) => {
    if (e.event.type === 'message') udp.send(e.session, e.event.streamId, e.event.data)
  })
  return udp
}

for (const host of LOOPBACKS) {
  t.test(`over ${host}: a datagram that makes the core throw is counted, not fatal`, { timeout: 30_000 }, async (t) => {
    const server = await flakyServer(host, 1)
    t.teardown(() => server.close())
    // The client's first Initial hits the bug; its retransmission gets through.
    const client = await connect(host, server.localAddress.port, { sessionConfig: { initialRttMs: 20 } })
    const one = messages(client, 1)
    client.send(0, text('survived'))
    t.equal(str((await one)[0].data), 'survived')
    t.equal(server.stats.coreErrors, 1)
    await client.close()
  })

  t.test(`over ${host}: a peer the socket cannot send to is counted as a send error`, { timeout: 30_000 }, async (t) => {
    const udp = await UdpEndpoint.open({ host, port: 0, server: false })
    t.teardown(() => udp.close())
    const family = host.includes(':') ? 'IPv6' : 'IPv4'
    const session = udp.connect({ address: host, port: 0, family }) // port 0: Node refuses to send
    const closed = endpointEvent(udp, 'closed', (e) => e.session === session)
    udp.closeSession(session)
    await closed
    t.ok(udp.stats.sendErrors >= 1, `sendErrors ${udp.stats.sendErrors}`)
  })
}

t.test('close() is idempotent and may be called from an event listener', { timeout: 30_000 }, async (t) => {
  const server = await flakyServer('127.0.0.1', 0)
  const client = await connect('127.0.0.1', server.localAddress.port)
  let closes = 0
  server.on('event', (e) => {
    if (e.event.type === 'message') {
      closes++
      void server.close()
    }
  })
  const closedByPeer = new Promise((resolve) => client.once('closed', resolve))
  client.send(0, text('close please'))
  t.same(await closedByPeer, { code: 0, reason: '', byPeer: true })
  await Promise.all([server.close(), server.close()])
  t.equal(closes, 1)
  t.ok(server.isClosing)
})

t.test('a port already in use is a clear bind error', { timeout: 30_000 }, async (t) => {
  const first = await UdpEndpoint.open({ host: '127.0.0.1', port: 0, server: true })
  t.teardown(() => first.close())
  await t.rejects(UdpEndpoint.open({ host: '127.0.0.1', port: first.localAddress.port, server: true }), { code: 'EADDRINUSE' })
})

t.test("an 'event' listener that throws is counted and logged; the endpoint and the session go on", { timeout: 30_000 }, async (t) => {
  const server = await UdpEndpoint.open({ host: '127.0.0.1', port: 0, server: true, protection: () => checksumProtection })
  t.teardown(() => server.close())
  let thrown = 0
  server.on('event', (e) => {
    if (e.event.type !== 'message') return
    if (str(e.event.data) === 'boom') {
      thrown++
      throw new Error('a bug in a handler')
    }
    server.send(e.session, e.event.streamId, e.event.data)
  })
  const client = await connect('127.0.0.1', server.localAddress.port)
  const echoed = messages(client, 1)
  client.send(0, text('boom'))
  client.send(0, text('still here'))
  t.equal(str((await echoed)[0].data), 'still here', 'the next message is handled and answered')
  t.equal(thrown, 1)
  t.equal(server.stats.listenerErrors, 1)
  await client.close()
})
