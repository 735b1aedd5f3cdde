/** Deterministic network simulator and the link impairment models it shares with tools/lossy-link. */
export * from './network.js'
export * from './event-queue.js'
export * from './models/index.js'
