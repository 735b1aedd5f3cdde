/**
 * The UDP proxy on real sockets (127.0.0.1 only). Assertions await events (datagrams,
 * 'decision', 'rebind'); delays and NAT timers run on a ManualClock, so nothing here
 * depends on how fast the machine is.
 */
import t from 'tap'
import { once } from 'node:events'
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startLossyLink, type LossyLinkApp } from '../../tools/lossy-link/app.js'
import { profileFrom } from '../../tools/lossy-link/config.js'
import { decodeUdp } from '../../tools/lossy-link/ip.js'
import { readPcapng } from '../../tools/lossy-link/pcapng.js'
import { ManualClock } from '../../tools/lossy-link/scheduler.js'
import { UdpPeer } from './helpers.js'

const LOCAL = '127.0.0.1'

const setup = async (t: { teardown(fn: () => unknown): void }, raw: unknown, opts: { clock?: ManualClock; pcapPath?: string } = {}) => {
  const server = await UdpPeer.open()
  const app = await startLossyLink({
    profile: profileFrom(raw),
    seed: 42,
    udp: { listen: { host: LOCAL, port: 0 }, upstream: { host: LOCAL, port: server.port } },
    clock: opts.clock,
    pcapPath: opts.pcapPath,
  })
  const clients: UdpPeer[] = []
  const client = async () => {
    const c = await UdpPeer.open()
    clients.push(c)
    return c
  }
  t.teardown(async () => {
    await app.close()
    server.close()
    for (const c of clients) c.close()
  })
  return { server, app, client, port: app.addresses.udp!.port }
}

const decision = (app: LossyLinkApp) =>
  once(app.udp!, 'decision').then(([d]) => d as { direction: string; result: { dropped?: string } })

t.test('forwards both ways; every client gets its own upstream port', async (t) => {
  const { server, client, port } = await setup(t, {})
  const a = await client()
  const b = await client()
  a.send('from a', port)
  const ma = await server.next()
  b.send('from b', port)
  const mb = await server.next()
  t.equal(ma.msg.toString(), 'from a')
  t.equal(mb.msg.toString(), 'from b')
  t.not(ma.rinfo.port, mb.rinfo.port, 'two mappings, two source ports')
  t.not(ma.rinfo.port, a.port, 'the server sees the proxy, not the client')
  server.send('to a', ma.rinfo.port)
  server.send('to b', mb.rinfo.port)
  const ra = await a.next()
  const rb = await b.next()
  t.equal(ra.msg.toString(), 'to a')
  t.equal(ra.rinfo.port, port, 'replies come from the listen port')
  t.equal(rb.msg.toString(), 'to b')
})

t.test('delay on virtual time: nothing leaves before it is due', async (t) => {
  const clock = new ManualClock()
  const { server, client, port, app } = await setup(t, { up: { delay: '100ms' } }, { clock })
  const c = await client()
  const idle = app.scheduler.size // the mapping sweep task
  const decided = decision(app)
  c.send('late', port)
  await decided
  t.equal(app.scheduler.size, idle + 1, 'one delivery pending in the heap')
  clock.advance(99.9)
  t.equal(app.scheduler.size, idle + 1, 'still pending at 99.9 ms')
  t.equal(app.link.stats.up.sent, 0)
  clock.advance(0.1)
  t.equal((await server.next()).msg.toString(), 'late', 'delivered at 100 ms')
  t.equal(app.link.stats.up.delay.toJSON().count, 1)
})

t.test('loss and MTU drops never reach the server, and are counted by reason', async (t) => {
  const { server, client, port, app } = await setup(t, { up: { mtuBytes: 100 } })
  const c = await client()
  let d = decision(app)
  c.send(Buffer.alloc(101), port)
  t.equal((await d).result.dropped, 'mtu')
  app.link.setConfig('up', { loss: { model: 'bernoulli', probability: 1 } })
  d = decision(app)
  c.send('lost', port)
  t.equal((await d).result.dropped, 'loss')
  app.link.setConfig('up', {})
  c.send('kept', port)
  t.equal((await server.next()).msg.toString(), 'kept', 'the first datagram the server sees is the one sent after the drops')
  t.equal(app.link.stats.up.dropped.mtu, 1)
  t.equal(app.link.stats.up.dropped.loss, 1)
  t.equal(app.link.stats.up.forwarded, 1)
})

t.test('NAT rebinding: the apparent source port changes every N seconds', async (t) => {
  const clock = new ManualClock()
  const { server, client, port, app } = await setup(t, { nat: { rebindEveryMs: '10s' } }, { clock })
  const c = await client()
  c.send('one', port)
  const first = await server.next()
  const rebound = once(app.udp!, 'rebind')
  clock.advance(10_000)
  const [ev] = (await rebound) as [{ oldPort: number; newPort: number; reason: string }]
  t.equal(ev.reason, 'timer')
  t.equal(ev.oldPort, first.rinfo.port)
  c.send('two', port)
  const second = await server.next()
  t.equal(second.msg.toString(), 'two')
  t.not(second.rinfo.port, first.rinfo.port, 'new source port after rebinding')
  t.equal(second.rinfo.port, ev.newPort)
  server.send('to old port', first.rinfo.port)
  server.send('to new port', second.rinfo.port)
  t.equal((await c.next()).msg.toString(), 'to new port', 'the old binding is gone: replies to it are lost')
  t.equal((app.udp!.clients()[0] as { rebinds: number }).rebinds, 1)
})

t.test('NAT binding timeout: inbound dropped after outbound silence, then a new port', async (t) => {
  const clock = new ManualClock()
  const { server, client, port, app } = await setup(t, { nat: { bindingTimeoutMs: '30s' } }, { clock })
  const c = await client()
  c.send('hello', port)
  const first = await server.next()
  server.send('reply 1', first.rinfo.port)
  t.equal((await c.next()).msg.toString(), 'reply 1', 'binding alive')
  clock.advance(30_001)
  const d = decision(app)
  server.send('reply 2', first.rinfo.port)
  const dd = await d
  t.same([dd.direction, dd.result.dropped], ['down', 'nat-timeout'], 'inbound dropped after 30 s of outbound silence')
  const rebound = once(app.udp!, 'rebind')
  c.send('again', port)
  const again = await server.next()
  t.equal(((await rebound)[0] as { reason: string }).reason, 'nat-timeout')
  t.not(again.rinfo.port, first.rinfo.port, 'the next outbound datagram got a new binding')
  server.send('reply 3', again.rinfo.port)
  t.equal((await c.next()).msg.toString(), 'reply 3', 'reply 2 never arrived; reply 3 did')
  t.equal(app.link.stats.down.dropped['nat-timeout'], 1)
})

t.test('UDP blocked on demand; the capture holds both sides with drop comments', async (t) => {
  const pcapPath = join(mkdtempSync(join(tmpdir(), 'lossy-link-udp-')), 'cap.pcapng')
  const { server, client, port, app } = await setup(t, {}, { pcapPath })
  const c = await client()
  c.send('before', port)
  const got = await server.next()
  server.send('reply', got.rinfo.port)
  await c.next()
  app.link.setBlocked(['up', 'down'], true)
  const d = decision(app)
  c.send('blocked', port)
  t.equal((await d).result.dropped, 'blocked')
  app.link.setBlocked(['up', 'down'], false)
  c.send('after', port)
  t.equal((await server.next()).msg.toString(), 'after')
  await app.close()
  const cap = readPcapng(readFileSync(pcapPath))
  t.same(cap.interfaces.map((i) => i.name), ['client-side', 'server-side'])
  const rows = cap.packets.map((p) => {
    const u = decodeUdp(p.data)
    return `${p.interfaceId}/${p.direction}/${Buffer.from(u.payload).toString()}/${u.src.port === c.port ? 'client' : u.src.port === server.port ? 'server' : u.src.port === port ? 'listen' : 'mapped'}${p.comments.length ? `/${p.comments.join()}` : ''}`
  })
  t.same(rows, [
    '0/inbound/before/client',
    '1/outbound/before/mapped',
    '1/inbound/reply/server',
    '0/outbound/reply/listen',
    '0/inbound/blocked/client/lossy-link: dropped (blocked)',
    '0/inbound/after/client',
    '1/outbound/after/mapped',
  ])
  t.ok(cap.packets.every((p) => decodeUdp(p.data).headerChecksumOk), 'IPv4 header checksums valid')
})

t.test('IPv6: listen and upstream on ::1', async (t) => {
  const { createSocket } = await import('node:dgram')
  const server = createSocket('udp6')
  try {
    server.bind(0, '::1')
    await once(server, 'listening')
  } catch {
    t.pass('no IPv6 loopback here: skipped')
    return
  }
  server.on('message', (m, r) => server.send(m, r.port, r.address))
  const app = await startLossyLink({ profile: profileFrom({}), seed: 1, udp: { listen: { host: '::1', port: 0 }, upstream: { host: '::1', port: server.address().port } } })
  const c = createSocket('udp6')
  c.bind(0, '::1')
  await once(c, 'listening')
  c.send('hi over v6', app.addresses.udp!.port, '::1')
  const [msg, rinfo] = await once(c, 'message')
  t.equal(String(msg), 'hi over v6')
  t.equal(rinfo.address, '::1')
  await app.close()
  c.close()
  server.close()
})
