import { isIPv6 } from 'node:net'

/** A UDP peer as the driver hands it to the core (compared by address and port). */
export interface UdpAddress {
  address: string
  port: number
  family: 'IPv4' | 'IPv6'
}

/** An IPv6 literal opens a udp6 socket; anything else (IPv4 literal, host name) udp4. */
export const socketTypeFor = (host: string): 'udp4' | 'udp6' => (isIPv6(stripBrackets(host)) ? 'udp6' : 'udp4')

/** `[::1]` -> `::1`, so hosts may be written the way URLs write them. */
export const stripBrackets = (host: string): string => (host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host)

/** `127.0.0.1:7700`, `[::1]:7700`. */
export const formatAddress = (a: { address: string; port: number }): string =>
  a.address.includes(':') ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`
