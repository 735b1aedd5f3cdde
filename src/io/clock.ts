/**
 * The edge's clock. The sans-IO core never reads time; the I/O layer passes it this.
 * performance.now() is monotonic (never jumps with NTP or the user changing the wall
 * clock) and fractional, which is what RTT and timer arithmetic need.
 */
export type Clock = () => number

/** Milliseconds since process start, monotonic, fractional. */
export const monotonicClock: Clock = () => performance.now()

/** Unix-epoch milliseconds at monotonicClock() === 0: add it to readings for traces and logs. */
export const epochOffsetMs = (): number => performance.timeOrigin
