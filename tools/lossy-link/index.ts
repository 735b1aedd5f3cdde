/** Library entry: the lossy link for tests and tools (see README.md). */
export { startLossyLink, type LossyLinkApp, type LossyLinkAppOptions } from './app.js'
export {
  DIRECTIONS, parseProfileLayer, profileFrom, resolveProfile,
  type Direction, type LinkState, type NatConfig, type ProfileLayer, type ResolvedProfile, type Script, type ScriptStep, type UdpBlockConfig,
} from './config.js'
export { LossyLinkConfigError } from './errors.js'
export { decodeUdp, synthesizeUdp, type Endpoint } from './ip.js'
export { LossyLink, type LinkResult } from './link.js'
export { PRESETS, getPreset, presetNames, type Preset } from './presets.js'
export { PcapngWriter, readPcapng, type Capture, type ReadPacket } from './pcapng.js'
export { ManualClock, RealClock, Scheduler, type Clock } from './scheduler.js'
export { DirectionStats, Histogram } from './stats.js'
export type { TcpConfig, TcpDirectionConfig } from './tcp-config.js'
