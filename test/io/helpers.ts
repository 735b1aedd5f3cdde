import { createSocket } from 'node:dgram'
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
export const unusedPort = async (host: string): Promise<number> => {
  const s = createSocket(host.includes(':') ? 'udp6' : 'udp4')
  s.bind(0, host)
  await once(s, 'listening')
  const port = s.address().port
  s.close()
  await once(s, 'close')
  return port
}

export const text = (s: string): Uint8Array => new TextEncoder().encode(s)
export const str = (b: Uint8Array): string => new TextDecoder().decode(b)
