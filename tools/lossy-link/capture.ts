/**
 * What the proxy sees, on both of its sides, as a pcapng file: interface 0 is the
 * client side (clients <-> listen socket), interface 1 the server side (per-client
 * upstream sockets <-> server). Each datagram appears when it arrives (inbound, with a
 * comment if it was dropped) and each time it is sent (outbound, with a comment for a
 * duplicate or a corrupted copy), so the inspector can line the two sides up.
 */
import { synthesizeUdp, type Endpoint } from './ip.js'
import { PcapngWriter, type PacketDirection } from './pcapng.js'

export type Side = 'client' | 'server'

export class ProxyCapture {
  private readonly writer: PcapngWriter
  private readonly originEpochMs: number
  private readonly now: () => number

  constructor(options: { path: string; originEpochMs: number; now: () => number }) {
    this.writer = new PcapngWriter(options.path, [
      { name: 'client-side', description: 'between clients and the lossy-link listen socket' },
      { name: 'server-side', description: 'between the lossy-link upstream sockets and the server' },
    ])
    this.originEpochMs = options.originEpochMs
    this.now = options.now
  }

  record(side: Side, direction: PacketDirection, src: Endpoint, dst: Endpoint, payload: Uint8Array, comment?: string): void {
    const record = {
      interfaceId: side === 'client' ? 0 : 1,
      timestampUs: (this.originEpochMs + this.now()) * 1000,
      data: synthesizeUdp(src, dst, payload),
      direction,
    }
    this.writer.write(comment ? { ...record, comment } : record)
  }

  get packets(): number {
    return this.writer.packets
  }

  close(): void {
    this.writer.close()
  }
}
