/** Link impairment models shared by the simulator (src/sim) and tools/lossy-link. */
export * from './config-error.js'
export * from './loss.js'
export * from './delay.js'
export * from './impairment.js'
