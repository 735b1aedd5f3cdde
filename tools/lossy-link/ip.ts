/**
 * Synthesised IPv4/IPv6 + UDP headers, so a capture taken in user space (we only see
 * payloads) opens in Wireshark with addresses and ports (LINKTYPE_RAW). And the
 * reverse, for the tests and the inspector.
 */
import { isIPv4, isIPv6 } from 'node:net'

export interface Endpoint { address: string; port: number }

const V4_MAPPED = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i

/** 4 bytes for IPv4 (also IPv4-mapped IPv6), 16 for IPv6. */
export const addressBytes = (address: string): Uint8Array => {
  const mapped = V4_MAPPED.exec(address)
  const a = mapped ? mapped[1] : address
  if (isIPv4(a)) return Uint8Array.from(a.split('.').map(Number))
  if (!isIPv6(a)) throw new Error(`not an IP address: ${address}`)
  const out = new Uint8Array(16)
  let text = a.split('%')[0]
  // An embedded dotted quad at the end ("::1.2.3.4") becomes two hex groups.
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text)
  if (dotted) {
    const b = dotted[1].split('.').map(Number)
    text = text.slice(0, -dotted[1].length) + `${((b[0] << 8) | b[1]).toString(16)}:${((b[2] << 8) | b[3]).toString(16)}`
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined]
  const headGroups = head ? head.split(':') : []
  const tailGroups = tail ? tail.split(':') : []
  const groups = tail === undefined ? headGroups : [...headGroups, ...new Array(8 - headGroups.length - tailGroups.length).fill('0'), ...tailGroups]
  groups.forEach((g, i) => {
    const v = parseInt(g, 16)
    out[2 * i] = v >> 8
    out[2 * i + 1] = v & 0xff
  })
  return out
}

export const formatAddress = (bytes: Uint8Array): string => {
  if (bytes.length === 4) return bytes.join('.')
  const groups: string[] = []
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i] << 8) | bytes[i + 1]).toString(16))
  // Collapse the longest run of zero groups, as RFC 5952 asks.
  let best = -1
  let bestLen = 1
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') { i++; continue }
    let j = i
    while (j < 8 && groups[j] === '0') j++
    if (j - i > bestLen) { best = i; bestLen = j - i }
    i = j
  }
  if (best < 0) return groups.join(':')
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`
}

/** Ones' complement sum of 16-bit words, folded (RFC 1071). */
const sum16 = (bytes: Uint8Array, start: number, end: number, acc = 0): number => {
  let s = acc
  let i = start
  for (; i + 1 < end; i += 2) s += (bytes[i] << 8) | bytes[i + 1]
  if (i < end) s += bytes[i] << 8
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16)
  return s
}

let ipv4Id = 0

/** An IPv4 or IPv6 packet carrying one UDP datagram (families of src and dst must match). */
export const synthesizeUdp = (src: Endpoint, dst: Endpoint, payload: Uint8Array): Uint8Array => {
  const s = addressBytes(src.address)
  let d = addressBytes(dst.address)
  if (s.length !== d.length) d = s.length === 4 ? new Uint8Array([0, 0, 0, 0]) : new Uint8Array(16)
  const udpLength = 8 + payload.length
  if (s.length === 4) {
    const out = new Uint8Array(20 + udpLength)
    const v = new DataView(out.buffer)
    out[0] = 0x45
    v.setUint16(2, Math.min(out.length, 0xffff))
    v.setUint16(4, ipv4Id++ & 0xffff)
    v.setUint16(6, 0x4000) // don't fragment
    out[8] = 64
    out[9] = 17
    out.set(s, 12)
    out.set(d, 16)
    v.setUint16(10, ~sum16(out, 0, 20) & 0xffff)
    v.setUint16(20, src.port)
    v.setUint16(22, dst.port)
    v.setUint16(24, udpLength)
    // UDP checksum 0 = "not computed", legal over IPv4 and keeps capture cheap.
    out.set(payload, 28)
    return out
  }
  const out = new Uint8Array(40 + udpLength)
  const v = new DataView(out.buffer)
  out[0] = 0x60
  v.setUint16(4, udpLength)
  out[6] = 17
  out[7] = 64
  out.set(s, 8)
  out.set(d, 24)
  v.setUint16(40, src.port)
  v.setUint16(42, dst.port)
  v.setUint16(44, udpLength)
  out.set(payload, 48)
  // IPv6 requires the UDP checksum: pseudo-header (addresses, length, next header) + datagram.
  let acc = sum16(out, 8, 40)
  acc += udpLength + 17
  const c = ~sum16(out, 40, out.length, acc) & 0xffff
  v.setUint16(46, c === 0 ? 0xffff : c)
  return out
}

export interface DecodedUdp {
  ipVersion: 4 | 6
  src: Endpoint
  dst: Endpoint
  payload: Uint8Array
  /** IPv4 header checksum verified (always true for IPv6, which has none). */
  headerChecksumOk: boolean
}

/** Decode what synthesizeUdp makes (enough for tests and the inspector, not a general parser). */
export const decodeUdp = (packet: Uint8Array): DecodedUdp => {
  const v = new DataView(packet.buffer, packet.byteOffset, packet.byteLength)
  const version = packet[0] >> 4
  if (version === 4) {
    const ihl = (packet[0] & 0x0f) * 4
    if (packet[9] !== 17) throw new Error('not UDP')
    return {
      ipVersion: 4,
      src: { address: formatAddress(packet.subarray(12, 16)), port: v.getUint16(ihl) },
      dst: { address: formatAddress(packet.subarray(16, 20)), port: v.getUint16(ihl + 2) },
      payload: packet.subarray(ihl + 8, ihl + v.getUint16(ihl + 4)),
      headerChecksumOk: sum16(packet, 0, ihl) === 0xffff,
    }
  }
  if (version === 6) {
    if (packet[6] !== 17) throw new Error('not UDP')
    return {
      ipVersion: 6,
      src: { address: formatAddress(packet.subarray(8, 24)), port: v.getUint16(40) },
      dst: { address: formatAddress(packet.subarray(24, 40)), port: v.getUint16(42) },
      payload: packet.subarray(48, 40 + v.getUint16(44)),
      headerChecksumOk: true,
    }
  }
  throw new Error(`not an IP packet (version ${version})`)
}
