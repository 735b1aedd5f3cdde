/**
 * Sliding anti-replay window over packet numbers (as IPsec's, RFC 4303 section 3.4.3):
 * remembers which of the newest `sizePackets` packet numbers were accepted. A packet
 * number at or below largest - sizePackets is "too old": we can no longer tell whether
 * it was seen, so it is refused. Check before decrypting, accept only after the packet
 * authenticates, so forged packets cannot move the window.
 */
export type ReplayVerdict = 'fresh' | 'duplicate' | 'too_old'

export class ReplayWindow {
  readonly sizePackets: number
  /** Largest accepted packet number, -1 before the first. */
  largest = -1
  private readonly bits: Uint32Array

  /** `bits`: storage for sizePackets / 32 zeroed words, e.g. a view into a larger buffer (allocated when omitted). */
  constructor(sizePackets = 2048, bits?: Uint32Array) {
    if (!(Number.isInteger(sizePackets) && sizePackets >= 32 && sizePackets % 32 === 0)) {
      throw new RangeError(`replay window size must be a positive multiple of 32, got ${sizePackets}`)
    }
    if (bits !== undefined && bits.length !== sizePackets / 32) throw new RangeError(`replay window storage must hold ${sizePackets / 32} words`)
    this.sizePackets = sizePackets
    this.bits = bits ?? new Uint32Array(sizePackets / 32)
  }

  check(packetNumber: number): ReplayVerdict {
    if (packetNumber > this.largest) return 'fresh'
    if (packetNumber <= this.largest - this.sizePackets) return 'too_old'
    const slot = packetNumber % this.sizePackets
    return (this.bits[slot >>> 5] & (1 << (slot & 31))) !== 0 ? 'duplicate' : 'fresh'
  }

  /** Records an authenticated packet number (which check() called fresh). */
  accept(packetNumber: number): void {
    if (packetNumber > this.largest) {
      const advance = this.largest < 0 ? this.sizePackets : packetNumber - this.largest
      if (advance >= this.sizePackets) this.bits.fill(0)
      else for (let pn = this.largest + 1; pn < packetNumber; pn++) this.clear(pn % this.sizePackets)
      this.largest = packetNumber
    }
    const slot = packetNumber % this.sizePackets
    this.bits[slot >>> 5] |= 1 << (slot & 31)
  }

  private clear(slot: number): void {
    this.bits[slot >>> 5] &= ~(1 << (slot & 31))
  }
}
