import { createSocket, type RemoteInfo } from 'node:dgram'
import { once } from 'node:events'

export interface Relay {
  /** Where clients connect. */
  port: number
  close(): Promise<void>
}

/**
 * A UDP relay between clients and one server that lets a test add datagrams in the
 * client -> server direction: `upstream(datagram)` returns what to send instead (the
 * real datagram included, or not). Everything leaves from one socket in order, so the
 * server reads it in that order.
 */
export const startRelay = async (opts: {
  host: string
  serverPort: number
  upstream: (datagram: Uint8Array) => Uint8Array[]
}): Promise<Relay> => {
  const type = opts.host.includes(':') ? 'udp6' : 'udp4'
  const front = createSocket(type)
  const back = createSocket(type)
  let client: RemoteInfo | undefined
  front.on('message', (msg, rinfo) => {
    client = rinfo
    for (const d of opts.upstream(new Uint8Array(msg.buffer, msg.byteOffset, msg.byteLength))) back.send(d, opts.serverPort, opts.host)
  })
  back.on('message', (msg) => {
    if (client !== undefined) front.send(msg, client.port, client.address)
  })
  front.bind(0, opts.host)
  back.bind(0, opts.host)
  await Promise.all([once(front, 'listening'), once(back, 'listening')])
  return {
    port: front.address().port,
    close: async () => {
      const closed = Promise.all([once(front, 'close'), once(back, 'close')])
      front.close()
      back.close()
      await closed
    },
  }
}
