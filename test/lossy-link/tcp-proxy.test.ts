/**
 * TCP relay mode on real sockets: delay, bandwidth limit, stalls, resets and the
 * black hole. Timing runs on a ManualClock; assertions await socket events.
 */
import t from 'tap'
import { once } from 'node:events'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { startLossyLink } from '../../tools/lossy-link/app.js'
import { profileFrom } from '../../tools/lossy-link/config.js'
import { ManualClock } from '../../tools/lossy-link/scheduler.js'

const LOCAL = '127.0.0.1'

/** A TCP server that records what it receives and hands out its connections. */
const startServer = async () => {
  const sockets: Socket[] = []
  const waiting: Array<(s: Socket) => void> = []
  const server: Server = createServer((s) => {
    s.on('error', () => {})
    const w = waiting.shift()
    if (w) w(s)
    else sockets.push(s)
  })
  server.listen(0, LOCAL)
  await once(server, 'listening')
  return {
    port: (server.address() as { port: number }).port,
    accept: () => (sockets.length ? Promise.resolve(sockets.shift()!) : new Promise<Socket>((r) => waiting.push(r))),
    close: () => server.close(),
  }
}

/** Resolves once `n` bytes have been read from the socket. */
const readBytes = (s: Socket, n: number): Promise<Buffer> =>
  new Promise((resolve) => {
    const chunks: Buffer[] = []
    let got = 0
    const onData = (c: Buffer) => {
      chunks.push(c)
      got += c.length
      if (got >= n) {
        s.off('data', onData)
        resolve(Buffer.concat(chunks))
      }
    }
    s.on('data', onData)
  })

const setup = async (t: { teardown(fn: () => unknown): void }, tcp: unknown, clock?: ManualClock) => {
  const server = await startServer()
  const app = await startLossyLink({
    profile: profileFrom({ tcp }),
    seed: 9,
    tcp: { listen: { host: LOCAL, port: 0 }, upstream: { host: LOCAL, port: server.port } },
    clock,
  })
  const client = connect(app.addresses.tcp!.port, LOCAL)
  client.on('error', () => {})
  await once(client, 'connect')
  const upstream = await server.accept()
  t.teardown(async () => {
    client.destroy()
    await app.close()
    server.close()
  })
  return { app, client, upstream, tcp: app.tcp! }
}

/** Resolves when the proxy has read `n` bytes in a direction. */
const proxyRead = (tcp: NonNullable<Awaited<ReturnType<typeof setup>>['tcp']>, direction: 'up' | 'down', n: number) =>
  new Promise<void>((resolve) => {
    if (tcp.stats[direction].bytesIn >= n) return resolve()
    const on = () => {
      if (tcp.stats[direction].bytesIn >= n) {
        tcp.off('data', on)
        resolve()
      }
    }
    tcp.on('data', on)
  })

t.test('relays both ways unimpaired', async (t) => {
  const { client, upstream } = await setup(t, {})
  client.write('hello server')
  t.equal((await readBytes(upstream, 12)).toString(), 'hello server')
  upstream.write('hello client')
  t.equal((await readBytes(client, 12)).toString(), 'hello client')
})

t.test('delay holds bytes until due, order kept', async (t) => {
  const clock = new ManualClock()
  const { client, upstream, tcp } = await setup(t, { up: { delayMs: '200ms' } }, clock)
  client.write('abc')
  await proxyRead(tcp, 'up', 3)
  clock.advance(199)
  t.equal(tcp.stats.up.bytesOut, 0, 'nothing written before 200 ms')
  client.write('def')
  await proxyRead(tcp, 'up', 6)
  clock.advance(1)
  t.equal(tcp.stats.up.bytesOut, 3, 'first write released at 200 ms')
  clock.advance(200)
  t.equal((await readBytes(upstream, 6)).toString(), 'abcdef', 'in order')
})

t.test('bandwidth limit releases bytes at the configured rate', async (t) => {
  const clock = new ManualClock()
  // 116.8 kbit/s = one 1460-byte segment per 100 ms.
  const { client, upstream, tcp } = await setup(t, { down: { rateBitsPerSecond: 116_800 } }, clock)
  const data = Buffer.alloc(14_600, 1)
  upstream.write(data)
  await proxyRead(tcp, 'down', data.length)
  clock.advance(500)
  t.equal(tcp.stats.down.bytesOut, 5 * 1460, 'five segments after 500 ms')
  clock.advance(500)
  t.equal(tcp.stats.down.bytesOut, 10 * 1460, 'all ten after 1 s')
  t.equal((await readBytes(client, data.length)).length, data.length)
})

t.test('stalls hold data (on demand and on a schedule) without closing', async (t) => {
  const clock = new ManualClock(0)
  const { client, upstream, tcp } = await setup(t, { down: { stallEvery: '10s/4s@1s' } }, clock)
  tcp.stall(['up'])
  client.write('held')
  await proxyRead(tcp, 'up', 4)
  t.equal(tcp.stats.up.bytesOut, 0, 'held while stalled')
  tcp.unstall(['up'])
  t.equal((await readBytes(upstream, 4)).toString(), 'held', 'released on unstall')
  clock.advance(1000) // inside the scheduled stall [1 s, 5 s)
  upstream.write('later')
  await proxyRead(tcp, 'down', 5)
  clock.advance(3999)
  t.equal(tcp.stats.down.bytesOut, 0, 'held until the stall ends')
  clock.advance(1)
  t.equal((await readBytes(client, 5)).toString(), 'later', 'released at 5 s')
})

t.test('reset on demand: both peers see a reset', async (t) => {
  const { client, upstream, tcp } = await setup(t, {})
  const clientErr = once(client, 'error').catch((e) => [e])
  const serverClosed = once(upstream, 'close')
  t.equal(tcp.resetAll(), 1)
  const [err] = (await clientErr) as [NodeJS.ErrnoException]
  t.equal(err.code, 'ECONNRESET', 'client got ECONNRESET')
  await serverClosed
  t.equal(tcp.stats.resets, 1)
})

t.test('reset after N bytes and after N ms', async (t) => {
  const clock = new ManualClock()
  const a = await setup(t, { resetAfterBytes: 1000 }, clock)
  const reset = once(a.tcp, 'reset')
  a.client.write(Buffer.alloc(2000))
  t.equal(((await reset)[0] as { reason: string }).reason, 'after-bytes')
  const b = await setup(t, { resetAfterMs: '5s' }, clock)
  const reset2 = once(b.tcp, 'reset')
  clock.advance(5000)
  t.equal(((await reset2)[0] as { reason: string }).reason, 'after-ms')
})

t.test('black hole: bytes vanish, the connection stays open', async (t) => {
  const { client, tcp, upstream } = await setup(t, { blackhole: true })
  client.write('gone')
  await proxyRead(tcp, 'up', 4)
  t.equal(tcp.stats.up.bytesSwallowed, 4)
  t.equal(tcp.stats.up.bytesOut, 0)
  t.ok(!client.destroyed && !upstream.destroyed, 'half-open: nobody closed')
  tcp.setConfig({ up: {}, down: {} })
  client.write('back')
  t.equal((await readBytes(upstream, 4)).toString(), 'back', 'flows again when the black hole is lifted')
})
