import type { Endpoint, EndpointEvent } from '../core/endpoint.js'
import type { SimAddress, SimNode } from './network.js'

/**
 * Puts a sans-IO Endpoint on the simulated network and reports its sessions' events
 * with the virtual time at which they happened (for latency measurements).
 */
export class EndpointNode implements SimNode {
  readonly endpoint: Endpoint<SimAddress>
  private readonly onEvent: (nowMs: number, e: EndpointEvent<SimAddress>) => void

  constructor(endpoint: Endpoint<SimAddress>, onEvent: (nowMs: number, e: EndpointEvent<SimAddress>) => void) {
    this.endpoint = endpoint
    this.onEvent = onEvent
  }

  handleDatagram(nowMs: number, bytes: Uint8Array, from: SimAddress): void {
    this.endpoint.handleDatagram(nowMs, bytes, from)
    this.drain(nowMs)
  }

  handleTimeout(nowMs: number): void {
    this.endpoint.handleTimeout(nowMs)
    this.drain(nowMs)
  }

  pollTransmit(nowMs: number): { bytes: Uint8Array; to: SimAddress } | undefined {
    const out = this.endpoint.pollTransmit(nowMs)
    if (out === undefined) this.drain(nowMs)
    return out
  }

  pollTimeout(): number | undefined {
    return this.endpoint.pollTimeout()
  }

  private drain(nowMs: number): void {
    for (;;) {
      const e = this.endpoint.pollEvent()
      if (e === undefined) return
      this.onEvent(nowMs, e)
    }
  }
}
