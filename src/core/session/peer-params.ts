import { type TransportParams, resolveTransportParams } from '../wire/transport-params.js'

/**
 * Peers almost always send identical transport parameters, so sessions share one frozen
 * object per distinct set (bounded: past 1024 distinct sets, new ones are not cached).
 */
const internedParams = new Map<string, Required<TransportParams>>()
export const internPeerParams = (params: TransportParams): Required<TransportParams> => {
  const resolved = resolveTransportParams(params)
  const key = Object.values(resolved).join(',')
  const known = internedParams.get(key)
  if (known !== undefined) return known
  const frozen = Object.freeze(resolved)
  if (internedParams.size < 1024) internedParams.set(key, frozen)
  return frozen
}
