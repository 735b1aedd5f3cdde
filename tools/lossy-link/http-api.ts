/**
 * Live control over HTTP (node:http, JSON in and out). Everything changes behaviour
 * at once: the next datagram sees the new impairments. Bad input gets a 400 with the
 * offending field; nothing is half-applied. Endpoints are listed in README.md and by
 * GET /.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { Logger } from 'pino'
import { DIRECTIONS, mergeImpairment, parseImpairmentLayer, parseProfileLayer, resolveProfile, validateImpairment, type Direction } from './config.js'
import { LossyLinkConfigError } from './errors.js'
import type { Endpoint } from './ip.js'
import { PRESETS } from './presets.js'
import { isObject } from './schema.js'
import { parseTcpLayer, resolveTcp } from './tcp-config.js'
import type { LossyLinkApp } from './app.js'
import { parseDurationMs } from './units.js'

const MAX_BODY_BYTES = 1 << 20

export const ENDPOINTS = [
  'GET    /                        this list',
  'GET    /state                   everything below in one document',
  'GET    /impairments             {up, down}',
  'PUT    /impairments             a profile layer {preset, both, up, down, udpBlock, blackout}: replaces both directions',
  'GET    /impairments/{up|down}   one direction',
  'PUT    /impairments/{up|down}   replace one direction',
  'PATCH  /impairments/{up|down}   merge into one direction (null deletes a key)',
  'POST   /block                   {direction?: up|down|both} block UDP',
  'POST   /unblock                 {direction?} unblock UDP',
  'GET    /stats                   per direction: forwarded, dropped per reason, duplicated, corrupted, delay histogram',
  'GET    /stats/{up|down}',
  'POST   /stats/reset             (also DELETE /stats)',
  'GET    /clients                 client mappings (upstream port, rebinds, idle times)',
  'POST   /clients/rebind          {client?: "addr:port"} NAT rebinding now',
  'GET    /nat | PUT /nat          {rebindEveryMs, bindingTimeoutMs}',
  'GET    /tcp | PUT /tcp | PATCH /tcp   TCP relay impairments',
  'POST   /tcp/reset               reset every relayed TCP connection',
  'POST   /tcp/stall               {direction?, durationMs?} hold data',
  'POST   /tcp/unstall             {direction?}',
  'GET    /script | POST /script/stop',
  'GET    /presets',
]

class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message)
  }
}

const readJson = async (req: IncomingMessage): Promise<unknown> => {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    size += (chunk as Buffer).length
    if (size > MAX_BODY_BYTES) throw new HttpError(413, 'body too large')
    chunks.push(chunk as Buffer)
  }
  const text = Buffer.concat(chunks).toString('utf8').trim()
  if (text === '') return {}
  try {
    return JSON.parse(text)
  } catch (err) {
    throw new HttpError(400, `body is not JSON: ${(err as Error).message}`)
  }
}

const directionsOf = (body: unknown): Direction[] => {
  const d = isObject(body) ? body.direction : undefined
  if (d === undefined || d === 'both') return [...DIRECTIONS]
  if (d === 'up' || d === 'down') return [d]
  throw new LossyLinkConfigError('direction', `expected up, down or both, got ${JSON.stringify(d)}`)
}

export class HttpApi {
  private server: Server | undefined
  constructor(private readonly app: LossyLinkApp, private readonly log: Logger) {}

  async start(listen: { host: string; port: number }): Promise<Endpoint> {
    const server = createServer((req, res) => void this.handle(req, res))
    this.server = server
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(listen.port, listen.host, () => {
        server.off('error', reject)
        resolve()
      })
    })
    const a = server.address()
    if (a === null || typeof a === 'string') throw new Error('http: no address')
    return { address: a.address, port: a.port }
  }

  async close(): Promise<void> {
    const s = this.server
    if (!s) return
    s.closeAllConnections()
    await new Promise<void>((resolve) => s.close(() => resolve()))
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? 'GET'
    const path = new URL(req.url ?? '/', 'http://x').pathname.replace(/\/+$/, '') || '/'
    try {
      const body = method === 'GET' || method === 'HEAD' ? undefined : await readJson(req)
      const out = this.route(method, path, body)
      if (method !== 'GET') this.log.info({ method, path, body }, 'api change')
      send(res, 200, out)
    } catch (err) {
      if (err instanceof LossyLinkConfigError) send(res, 400, { error: err.message, field: err.field })
      else if (err instanceof HttpError) send(res, err.status, { error: err.message })
      else {
        this.log.error({ err }, 'api error')
        send(res, 500, { error: String(err) })
      }
    }
  }

  private route(method: string, path: string, body: unknown): unknown {
    const app = this.app
    const link = app.link
    const now = app.scheduler.clock.now()
    const key = `${method} ${path}`
    const dirMatch = /^\/(impairments|stats)\/(up|down)$/.exec(path)
    if (dirMatch) {
      const direction = dirMatch[2] as Direction
      if (dirMatch[1] === 'stats') {
        if (method !== 'GET') throw new HttpError(405, 'use GET')
        return link.stats[direction].toJSON()
      }
      if (method === 'GET') return link.config(direction)
      if (method === 'PUT' || method === 'PATCH') {
        const layer = parseImpairmentLayer(direction, body)
        const config = mergeImpairment(method === 'PUT' ? {} : link.config(direction), layer)
        link.setConfig(direction, validateImpairment(direction, config))
        return link.config(direction)
      }
      throw new HttpError(405, 'use GET, PUT or PATCH')
    }
    switch (key) {
      case 'GET /': return { endpoints: ENDPOINTS }
      case 'GET /state': return app.state()
      case 'GET /presets': return [...PRESETS.values()]
      case 'GET /impairments': return { up: link.config('up'), down: link.config('down') }
      case 'PUT /impairments': {
        const layer = parseProfileLayer(body)
        if (layer.nat || layer.tcp || layer.script) throw new LossyLinkConfigError('', 'PUT /impairments takes preset, both, up, down, udpBlock, blackout; use /nat, /tcp, /script')
        const resolved = resolveProfile([layer])
        link.applyState(resolved, { keepDemandBlock: true })
        return link.state(now)
      }
      case 'POST /block':
      case 'POST /unblock':
        link.setBlocked(directionsOf(body), key === 'POST /block')
        return link.state(now).udpBlocked
      case 'GET /stats': return app.stats()
      case 'POST /stats/reset':
      case 'DELETE /stats':
        app.resetStats()
        return app.stats()
      case 'GET /clients': return app.udp?.clients() ?? []
      case 'POST /clients/rebind': {
        const client = isObject(body) && typeof body.client === 'string' ? body.client : undefined
        return { rebound: app.udp?.rebindNow(client) ?? 0 }
      }
      case 'GET /nat': return app.udp?.natConfig ?? {}
      case 'PUT /nat': {
        const nat = resolveProfile([parseProfileLayer({ nat: body })]).nat
        app.udp?.setNat(nat)
        return nat
      }
      case 'GET /tcp': return app.tcp?.state() ?? null
      case 'PUT /tcp':
      case 'PATCH /tcp': {
        if (!app.tcp) throw new HttpError(409, 'TCP relay mode is not running (start with --tcp-listen/--tcp-upstream)')
        const layer = parseTcpLayer('tcp', body)
        app.tcp.setConfig(resolveTcp([layer], method === 'PATCH' ? app.tcp.currentConfig : undefined))
        return app.tcp.state()
      }
      case 'POST /tcp/reset':
        if (!app.tcp) throw new HttpError(409, 'TCP relay mode is not running')
        return { reset: app.tcp.resetAll() }
      case 'POST /tcp/stall': {
        if (!app.tcp) throw new HttpError(409, 'TCP relay mode is not running')
        const ms = isObject(body) && body.durationMs !== undefined ? parseDurationMs('durationMs', body.durationMs as string) : undefined
        app.tcp.stall(directionsOf(body), ms)
        return app.tcp.state()
      }
      case 'POST /tcp/unstall':
        if (!app.tcp) throw new HttpError(409, 'TCP relay mode is not running')
        app.tcp.unstall(directionsOf(body))
        return app.tcp.state()
      case 'GET /script': return app.script?.state() ?? null
      case 'POST /script/stop':
        app.script?.stop()
        return app.script?.state() ?? null
    }
    throw new HttpError(404, `no such endpoint: ${method} ${path} (GET / lists them)`)
  }
}

const send = (res: ServerResponse, status: number, body: unknown): void => {
  const text = JSON.stringify(body, null, 2) + '\n'
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) })
  res.end(text)
}
