/** The HTTP control API changes behaviour live; bad input is a 400 that names the field and changes nothing. */
import t from 'tap'
import { once } from 'node:events'
import { startLossyLink, type LossyLinkApp } from '../../tools/lossy-link/app.js'
import { profileFrom } from '../../tools/lossy-link/config.js'
import { UdpPeer } from './helpers.js'

const LOCAL = '127.0.0.1'

const server = await UdpPeer.open()
server.echo = true
const app = await startLossyLink({
  profile: profileFrom({ preset: 'wifi', both: { delay: null, rateBitsPerSecond: null, loss: null } }),
  seed: 5,
  udp: { listen: { host: LOCAL, port: 0 }, upstream: { host: LOCAL, port: server.port } },
  http: { host: LOCAL, port: 0 },
})
const client = await UdpPeer.open()
const port = app.addresses.udp!.port
const base = `http://${LOCAL}:${app.addresses.http!.port}`
t.teardown(async () => {
  await app.close()
  server.close()
  client.close()
})

const api = async (method: string, path: string, body?: unknown) => {
  const res = await fetch(base + path, { method, body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body) })
  return { status: res.status, json: (await res.json()) as any }
}
const decision = (a: LossyLinkApp) => once(a.udp!, 'decision').then(([d]) => d as { direction: string; result: { dropped?: string } })
const roundTrip = async (text: string) => {
  client.send(text, port)
  return (await client.next()).msg.toString()
}

t.test('GET / lists the endpoints; GET /state has the seed', async (t) => {
  t.ok((await api('GET', '/')).json.endpoints.length > 10)
  t.equal((await api('GET', '/state')).json.seed, 5)
})

t.test('PUT /impairments/up changes the next datagram; PATCH with null restores', async (t) => {
  t.equal(await roundTrip('ping'), 'ping', 'clean link echoes')
  const put = await api('PUT', '/impairments/up', { loss: '100%' })
  t.equal(put.status, 200)
  t.same(put.json.loss, { model: 'bernoulli', probability: 1 })
  const d = decision(app)
  client.send('into the void', port)
  t.same((await d).result, { dropped: 'loss' }, 'dropped right after the PUT')
  const stats = await api('GET', '/stats/up')
  t.equal(stats.json.dropped.loss, 1, 'per-reason counter')
  const patch = await api('PATCH', '/impairments/up', { loss: null, mtuBytes: 1200 })
  t.same(patch.json, { mtuBytes: 1200 })
  t.equal(await roundTrip('back'), 'back', 'forwarding again')
})

t.test('POST /block and /unblock', async (t) => {
  const blocked = await api('POST', '/block', { direction: 'down' })
  t.same(blocked.json, { up: false, down: true })
  const d1 = decision(app)
  const d2 = decision(app).then(() => decision(app))
  client.send('one way', port)
  t.equal((await d1).direction, 'up')
  t.same((await d2).result, { dropped: 'blocked' }, 'the echo is blocked on the way down')
  await api('POST', '/unblock', {})
  t.equal(await roundTrip('open'), 'open')
})

t.test('PUT /impairments applies a whole profile (preset)', async (t) => {
  const r = await api('PUT', '/impairments', { preset: '3g' })
  t.equal(r.status, 200)
  t.equal((await api('GET', '/impairments')).json.down.rateBitsPerSecond, 780_000)
  await api('PUT', '/impairments', {})
  t.same((await api('GET', '/impairments')).json, { up: {}, down: {} }, 'an empty profile is a clean link')
})

t.test('bad input: 400 naming the field, nothing changed', async (t) => {
  await api('PUT', '/impairments/down', { delay: '5ms' })
  const cases: Array<[string, string, unknown, number, string | undefined, RegExp]> = [
    ['PUT', '/impairments/down', { loss: '500%' }, 400, 'down.loss', /not a probability/],
    ['PATCH', '/impairments/down', { dealy: 5 }, 400, 'down.dealy', /unknown key/],
    ['PUT', '/impairments/down', { loss: { model: 'markov4', p13: 0.9, p31: 0.1, p14: 0.5 } }, 400, 'down.loss.p14', /must be <= 1/],
    ['PUT', '/impairments', { preset: 'dialup' }, 400, 'preset', /unknown preset/],
    ['POST', '/block', { direction: 'sideways' }, 400, 'direction', /up, down or both/],
    ['PUT', '/nat', { rebindEveryMs: -1 }, 400, 'nat.rebindEveryMs', /negative|duration/],
    ['PUT', '/impairments/down', '{not json', 400, undefined, /not JSON/],
    ['GET', '/nowhere', undefined, 404, undefined, /no such endpoint/],
  ]
  for (const [method, path, body, status, field, message] of cases) {
    const r = await api(method, path, body)
    t.equal(r.status, status, `${method} ${path} -> ${status}`)
    if (field) t.equal(r.json.field, field)
    t.match(r.json.error, message)
  }
  t.same((await api('GET', '/impairments/down')).json, { delay: { baseMs: 5 } }, 'config untouched by the bad requests')
  await api('PUT', '/impairments/down', {})
})

t.test('stats: per direction, per reason, delay histogram; reset', async (t) => {
  const s = (await api('GET', '/stats')).json
  t.ok(s.up.offered > 0 && s.down.offered > 0)
  t.ok(Array.isArray(s.up.delayHistogram.buckets) && s.up.delayHistogram.count > 0, 'delay histogram present')
  t.same(Object.keys(s.up.dropped).sort(), ['blackout', 'blocked', 'loss', 'mtu', 'nat-timeout', 'queue', 'send-error', 'total'])
  const r = (await api('POST', '/stats/reset')).json
  t.equal(r.up.offered, 0)
  t.equal(r.down.forwarded, 0)
})

t.test('clients, NAT rebinding now, NAT settings', async (t) => {
  const clients = (await api('GET', '/clients')).json
  t.equal(clients.length, 1)
  const oldPort = clients[0].upstreamPort
  const rebound = once(app.udp!, 'rebind')
  t.same((await api('POST', '/clients/rebind', {})).json, { rebound: 1 })
  const [ev] = (await rebound) as [{ newPort: number; reason: string }]
  t.equal(ev.reason, 'api')
  t.not(ev.newPort, oldPort)
  t.equal(await roundTrip('via new port'), 'via new port')
  t.same((await api('PUT', '/nat', { rebindEveryMs: '30s', bindingTimeoutMs: 60000 })).json, { rebindEveryMs: 30_000, bindingTimeoutMs: 60_000 })
  t.same((await api('GET', '/nat')).json, { rebindEveryMs: 30_000, bindingTimeoutMs: 60_000 })
})

t.test('TCP endpoints say when the relay is not running', async (t) => {
  t.equal((await api('POST', '/tcp/reset')).status, 409)
})
