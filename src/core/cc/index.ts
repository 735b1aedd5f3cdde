/** Congestion control: pick a controller by name; the pieces the session wires together. */
import { Bbr } from './bbr.js'
import type {
  CongestionController,
  CongestionControllerName,
  CongestionControllerOptions,
} from './controller.js'
import { Cubic } from './cubic.js'
import { NewReno } from './new-reno.js'
import { UsageError, ErrorCode } from '../errors.js'

export type * from './controller.js'
export { Bbr, type BbrState } from './bbr.js'
export { Cubic } from './cubic.js'
export { NewReno, defaultInitialWindowBytes } from './new-reno.js'
export { DeliveryRateEstimator, newRatePacketState, type RatePacketState } from './delivery-rate.js'
export { Pacer, type PacerOptions } from './pacer.js'

export const congestionControllerNames: readonly CongestionControllerName[] = ['newreno', 'cubic', 'bbr']

export const createCongestionController = (
  name: CongestionControllerName,
  opts: CongestionControllerOptions,
): CongestionController => {
  switch (name) {
    case 'newreno':
      return new NewReno(opts)
    case 'cubic':
      return new Cubic(opts)
    case 'bbr':
      return new Bbr(opts)
    default:
      throw new UsageError(ErrorCode.INTERNAL_ERROR, `unknown congestion controller: ${String(name)}`)
  }
}
