/**
 * Packet protection is pluggable so the sans-IO session does not care how packets are
 * sealed. `nullProtection` adds nothing (benchmarks of the bare core, trusted links);
 * `checksumProtection` appends a CRC-32C so corrupted datagrams are dropped and counted
 * (the simulator corrupts bits; UDP's own checksum is optional on IPv4). The encrypted
 * protection (ChaCha20-Poly1305 after the handshake) implements the same interface.
 */
export interface PacketProtection {
  readonly name: string
  /** Bytes appended to every packet (AEAD tag, checksum). */
  readonly overheadBytes: number
  /**
   * Seal in place: header is buf[start, payloadStart), payload buf[payloadStart, payloadEnd).
   * Writes the trailer after the payload; returns the packet's end.
   */
  seal(buf: Uint8Array, opts: { start: number; payloadStart: number; payloadEnd: number; packetNumber: number }): number
  /** Verify one packet; returns its payload (trailer stripped) or null when it fails. */
  open(packet: Uint8Array, opts: { headerLength: number; packetNumber: number }): Uint8Array | null
  /** The peer acknowledged our packets up to this number (key update bookkeeping). */
  onPacketAcknowledged?(packetNumber: number): void
}

/** Short-header protection of an encrypted session before its keys exist: nothing opens. */
export const awaitingKeysProtection: PacketProtection = {
  name: 'awaiting-keys',
  overheadBytes: 16,
  seal: () => {
    throw new Error('no packet keys yet')
  },
  open: () => null,
}

export const nullProtection: PacketProtection = {
  name: 'none',
  overheadBytes: 0,
  seal: (_buf, opts) => opts.payloadEnd,
  open: (packet, opts) => packet.subarray(opts.headerLength),
}

const CRC32C_TABLE = (() => {
  const table = new Int32Array(256)
  for (let n = 0; n < 256; n++) {
    let c = n
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1
    table[n] = c
  }
  return table
})()

/** CRC-32C (Castagnoli) of buf[start, end). */
export const crc32c = (buf: Uint8Array, start = 0, end = buf.length): number => {
  let crc = -1
  for (let i = start; i < end; i++) crc = CRC32C_TABLE[(crc ^ buf[i]) & 0xff] ^ (crc >>> 8)
  return (crc ^ -1) >>> 0
}

export const checksumProtection: PacketProtection = {
  name: 'crc32c',
  overheadBytes: 4,
  seal: (buf, opts) => {
    const crc = crc32c(buf, opts.start, opts.payloadEnd)
    const o = opts.payloadEnd
    buf[o] = crc >>> 24
    buf[o + 1] = (crc >>> 16) & 0xff
    buf[o + 2] = (crc >>> 8) & 0xff
    buf[o + 3] = crc & 0xff
    return o + 4
  },
  open: (packet, opts) => {
    const end = packet.length - 4
    if (end < opts.headerLength) return null
    const expected = ((packet[end] << 24) | (packet[end + 1] << 16) | (packet[end + 2] << 8) | packet[end + 3]) >>> 0
    return crc32c(packet, 0, end) === expected ? packet.subarray(opts.headerLength, end) : null
  },
}
