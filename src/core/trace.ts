/**
 * One trace schema for server, client and tools: qlog-like events, one JSON object
 * per line when serialised: {"time": ms, "name": "category:event", "data": {...}}.
 * The core emits through an injected sink; it never writes files itself.
 */
export interface TraceEvent {
  /** Milliseconds, on the caller's clock (virtual in simulation). */
  time: number
  /** `category:event`, e.g. `transport:packet_sent`, `recovery:packet_lost`. */
  name: string
  data: Record<string, unknown>
  /** Which session emitted it (hex connection id), when known. */
  session?: string
}

export type TraceSink = (event: TraceEvent) => void

/** Names used by the core; tools match on these strings. */
export const TraceName = {
  packetSent: 'transport:packet_sent',
  packetReceived: 'transport:packet_received',
  packetDropped: 'transport:packet_dropped',
  packetLost: 'recovery:packet_lost',
  metricsUpdated: 'recovery:metrics_updated',
  congestionStateUpdated: 'recovery:congestion_state_updated',
  messageSent: 'stream:message_sent',
  messageDelivered: 'stream:message_delivered',
  messageExpired: 'stream:message_expired',
  sessionStateUpdated: 'connectivity:session_state_updated',
  sessionClosed: 'connectivity:session_closed',
} as const

/** Serialise one event as a JSON line (newline included). */
export const traceLine = (event: TraceEvent): string => JSON.stringify(event) + '\n'
