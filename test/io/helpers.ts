import { randomInt } from 'node:crypto'
import { createSocket } from 'node:dgram'
import { readFileSync } from 'node:fs'
import { once } from 'node:events'
import type { EndpointEvent } from '../../src/core/endpoint.js'
import type { UdpAddress } from '../../src/io/address.js'
import { PigeonClient, type PigeonClientOptions } from '../../src/io/client.js'
import { type EchoServer, startEchoServer } from '../../src/io/server.js'
import type { UdpEndpoint } from '../../src/io/udp-endpoint.js'

/** Every real-socket test runs on both loopbacks. */
export const LOOPBACKS = ['127.0.0.1', '::1'] as const

export const startServer = (host: string): Promise<EchoServer> => startEchoServer({ host, port: 0 })

export const connect = (host: string, port: number, extra: Partial<PigeonClientOptions> = {}): Promise<PigeonClient> =>
  PigeonClient.connect({ host, port, connectTimeoutMs: 10_000, ...extra })

export interface Received {
  streamId: number
  seq: number
  data: Uint8Array
}

/** Resolves with the next `count` messages the client receives. */
export const messages = (client: PigeonClient, count: number): Promise<Received[]> =>
  new Promise((resolve) => {
    const got: Received[] = []
    const onMessage = (streamId: number, seq: number, data: Uint8Array): void => {
      got.push({ streamId, seq, data })
      if (got.length < count) return
      client.off('message', onMessage)
      resolve(got)
    }
    client.on('message', onMessage)
  })

type EventType = EndpointEvent<UdpAddress>['event']['type']

/** Resolves with the first event of `type` the endpoint emits (optionally matching `filter`). */
export const endpointEvent = (
  endpoint: UdpEndpoint,
  type: EventType,
  filter: (e: EndpointEvent<UdpAddress>) => boolean = () => true,
): Promise<EndpointEvent<UdpAddress>> =>
  new Promise((resolve) => {
    const listener = (e: EndpointEvent<UdpAddress>): void => {
      if (e.event.type !== type || !filter(e)) return
      endpoint.off('event', listener)
      resolve(e)
    }
    endpoint.on('event', listener)
  })

/** A port on which nothing listens (bound, read, released). */
/** The kernel's range for port-0 binds (Linux), or the usual default. */
const ephemeralPortStart = (): number => {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0])
    if (Number.isInteger(low) && low > 2048) return low
  } catch {
    // not Linux: assume the common default
  }
  return 32768
}

const bindsOn = async (host: string, port: number): Promise<number | undefined> => {
  const s = createSocket(host.includes(':') ? 'udp6' : 'udp4')
  try {
    s.bind(port, host)
    await Promise.race([once(s, 'listening'), once(s, 'error').then(([err]) => Promise.reject(err))])
  } catch {
    s.close()
    return undefined
  }
  const bound = s.address().port
  await new Promise<void>((resolve) => s.close(resolve)) // released before anyone binds it
  return bound
}

/**
 * A UDP port free right now, chosen BELOW the kernel's ephemeral range: no port-0 bind
 * (a client's socket, another test's) can be handed it later, so a server may be killed
 * and restarted on it (the crash test did fail with EADDRINUSE when a new client socket got
 * the dead server's ephemeral port).
 */
export const unusedPort = async (host: string): Promise<number> => {
  const high = ephemeralPortStart()
  const low = Math.min(20_000, high - 1024)
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = await bindsOn(host, randomInt(low, high))
    if (port !== undefined) return port
  }
  const port = await bindsOn(host, 0)
  if (port === undefined) throw new Error(`no free UDP port on ${host}`)
  return port
}

export const text = (s: string): Uint8Array => new TextEncoder().encode(s)
export const str = (b: Uint8Array): string => new TextDecoder().decode(b)
