/** One way to log a session's life-cycle events, for every server built on UdpEndpoint. */
import type { EndpointEvent } from '../core/endpoint.js'
import { errorCodeName } from '../core/errors.js'
import { type UdpAddress, formatAddress } from './address.js'
import type { Logger } from './logger.js'

export const logSessionEvent = (log: Logger, e: EndpointEvent<UdpAddress>): void => {
  const ev = e.event
  switch (ev.type) {
    case 'accepted':
      log.debug({ session: e.session.traceId, peer: formatAddress(e.address) }, 'session accepted')
      break
    case 'address_changed':
      log.info({ session: e.session.traceId, peer: formatAddress(e.address), from: formatAddress(ev.from) }, 'peer address changed')
      break
    case 'dead_link':
      log.info({ session: e.session.traceId, silentMs: Math.round(ev.silentMs) }, 'dead link')
      break
    case 'closed':
      log.info({ session: e.session.traceId, code: errorCodeName(ev.code), reason: ev.reason, byPeer: ev.byPeer, stats: e.session.stats }, 'session closed')
      break
    default:
      break
  }
}
