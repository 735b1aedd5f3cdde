/**
 * A minimal pcapng writer and reader (https://www.ietf.org/archive/id/draft-ietf-opsawg-pcapng):
 * one Section Header Block, one Interface Description Block per side of the proxy, and
 * an Enhanced Packet Block per datagram seen, with the direction in epb_flags and, for
 * drops and impairments, a comment saying what happened. Little-endian, microsecond
 * timestamps, LINKTYPE_RAW (101) with synthesised IP/UDP headers.
 */
import { closeSync, openSync, writeSync } from 'node:fs'

export const LINKTYPE_RAW = 101
const SHB = 0x0a0d0d0a
const IDB = 0x00000001
const EPB = 0x00000006
const BYTE_ORDER_MAGIC = 0x1a2b3c4d

const OPT_END = 0
const OPT_COMMENT = 1
const SHB_USERAPPL = 4
const IF_NAME = 2
const IF_DESCRIPTION = 3
const IF_TSRESOL = 9
const EPB_FLAGS = 2

export type PacketDirection = 'inbound' | 'outbound'

export interface InterfaceSpec { name: string; description?: string; linkType?: number; snapLength?: number }

export interface PacketRecord {
  interfaceId: number
  /** Microseconds since the Unix epoch. */
  timestampUs: number
  data: Uint8Array
  direction?: PacketDirection
  comment?: string
}

const pad4 = (n: number): number => (n + 3) & ~3
const utf8 = new TextEncoder()

interface Option { code: number; value: Uint8Array }

const optionsLength = (opts: Option[]): number =>
  opts.length === 0 ? 0 : opts.reduce((n, o) => n + 4 + pad4(o.value.length), 0) + 4

const writeOptions = (view: DataView, bytes: Uint8Array, offset: number, opts: Option[]): number => {
  if (opts.length === 0) return offset
  let o = offset
  for (const opt of opts) {
    view.setUint16(o, opt.code, true)
    view.setUint16(o + 2, opt.value.length, true)
    bytes.set(opt.value, o + 4)
    o += 4 + pad4(opt.value.length)
  }
  view.setUint32(o, OPT_END, true) // opt_endofopt (code 0, length 0)
  return o + 4
}

/** Frame a block: type, total length, body, options, total length again. */
const block = (type: number, bodyLength: number, opts: Option[], fillBody: (view: DataView, bytes: Uint8Array) => void): Uint8Array => {
  const total = 12 + pad4(bodyLength) + optionsLength(opts)
  const bytes = new Uint8Array(total)
  const view = new DataView(bytes.buffer)
  view.setUint32(0, type, true)
  view.setUint32(4, total, true)
  fillBody(new DataView(bytes.buffer, 8), bytes.subarray(8))
  writeOptions(view, bytes, 8 + pad4(bodyLength), opts)
  view.setUint32(total - 4, total, true)
  return bytes
}

export const encodeSectionHeader = (application: string): Uint8Array =>
  block(SHB, 16, [{ code: SHB_USERAPPL, value: utf8.encode(application) }], (v) => {
    v.setUint32(0, BYTE_ORDER_MAGIC, true)
    v.setUint16(4, 1, true)
    v.setUint16(6, 0, true)
    v.setBigInt64(8, -1n, true) // section length unknown
  })

export const encodeInterface = (spec: InterfaceSpec): Uint8Array => {
  const opts: Option[] = [{ code: IF_NAME, value: utf8.encode(spec.name) }]
  if (spec.description) opts.push({ code: IF_DESCRIPTION, value: utf8.encode(spec.description) })
  opts.push({ code: IF_TSRESOL, value: Uint8Array.of(6) })
  return block(IDB, 8, opts, (v) => {
    v.setUint16(0, spec.linkType ?? LINKTYPE_RAW, true)
    v.setUint32(4, spec.snapLength ?? 0, true) // 0 = no limit
  })
}

export const encodePacket = (p: PacketRecord): Uint8Array => {
  const opts: Option[] = []
  if (p.direction) {
    const flags = new Uint8Array(4)
    new DataView(flags.buffer).setUint32(0, p.direction === 'inbound' ? 1 : 2, true)
    opts.push({ code: EPB_FLAGS, value: flags })
  }
  if (p.comment) opts.push({ code: OPT_COMMENT, value: utf8.encode(p.comment) })
  const ts = Math.round(p.timestampUs)
  return block(EPB, 20 + p.data.length, opts, (v, b) => {
    v.setUint32(0, p.interfaceId, true)
    v.setUint32(4, Math.floor(ts / 2 ** 32), true)
    v.setUint32(8, ts >>> 0, true)
    v.setUint32(12, p.data.length, true)
    v.setUint32(16, p.data.length, true)
    b.set(p.data, 20)
  })
}

/**
 * Appends blocks to a file. Writes are batched per event-loop turn (one setImmediate,
 * not one syscall per datagram) and flushed synchronously on close, so a capture is
 * complete when close() returns.
 */
export class PcapngWriter {
  private fd: number | undefined
  private pending: Uint8Array[] = []
  private pendingBytes = 0
  private flushQueued = false
  packets = 0

  constructor(path: string, interfaces: InterfaceSpec[], application = 'pigeon lossy-link') {
    this.fd = openSync(path, 'w')
    this.push(encodeSectionHeader(application))
    for (const i of interfaces) this.push(encodeInterface(i))
    this.flush()
  }

  write(p: PacketRecord): void {
    if (this.fd === undefined) return
    this.packets++
    this.push(encodePacket(p))
  }

  private push(bytes: Uint8Array): void {
    this.pending.push(bytes)
    this.pendingBytes += bytes.length
    if (this.pendingBytes >= 1 << 20) this.flush()
    else if (!this.flushQueued) {
      this.flushQueued = true
      setImmediate(() => this.flush())
    }
  }

  flush(): void {
    this.flushQueued = false
    if (this.fd === undefined || this.pending.length === 0) return
    const all = Buffer.concat(this.pending)
    this.pending = []
    this.pendingBytes = 0
    let off = 0
    while (off < all.length) off += writeSync(this.fd, all, off)
  }

  close(): void {
    if (this.fd === undefined) return
    this.flush()
    closeSync(this.fd)
    this.fd = undefined
  }
}

export interface ReadInterface { linkType: number; snapLength: number; name?: string; description?: string; tsResolution: number }
export interface ReadPacket {
  interfaceId: number
  /** In the interface's resolution converted to microseconds. */
  timestampUs: number
  data: Uint8Array
  originalLength: number
  direction?: PacketDirection
  comments: string[]
}
export interface Capture { application?: string; interfaces: ReadInterface[]; packets: ReadPacket[] }

const utf8d = new TextDecoder()

const readOptions = (v: DataView, start: number, end: number, le: boolean): Array<{ code: number; value: Uint8Array }> => {
  const out: Array<{ code: number; value: Uint8Array }> = []
  let o = start
  while (o + 4 <= end) {
    const code = v.getUint16(o, le)
    const len = v.getUint16(o + 2, le)
    if (code === OPT_END) break
    out.push({ code, value: new Uint8Array(v.buffer, v.byteOffset + o + 4, len) })
    o += 4 + pad4(len)
  }
  return out
}

/** Parse a whole pcapng file (single or multiple sections, either byte order). */
export const readPcapng = (file: Uint8Array): Capture => {
  const v = new DataView(file.buffer, file.byteOffset, file.byteLength)
  const capture: Capture = { interfaces: [], packets: [] }
  let le = true
  let sectionInterfaces: ReadInterface[] = []
  let o = 0
  while (o + 12 <= file.length) {
    const typeLE = v.getUint32(o, true)
    if (typeLE === SHB) {
      const magic = v.getUint32(o + 8, true)
      if (magic === BYTE_ORDER_MAGIC) le = true
      else if (magic === 0x4d3c2b1a) le = false
      else throw new Error(`pcapng: bad byte-order magic at ${o}`)
      sectionInterfaces = []
    }
    const type = v.getUint32(o, le)
    const total = v.getUint32(o + 4, le)
    if (total < 12 || total % 4 !== 0 || o + total > file.length) throw new Error(`pcapng: bad block length ${total} at ${o}`)
    if (v.getUint32(o + total - 4, le) !== total) throw new Error(`pcapng: trailing length mismatch at ${o}`)
    const body = o + 8
    const end = o + total - 4
    if (type === SHB) {
      for (const opt of readOptions(v, body + 16, end, le)) if (opt.code === SHB_USERAPPL) capture.application = utf8d.decode(opt.value)
    } else if (type === IDB) {
      const iface: ReadInterface = { linkType: v.getUint16(body, le), snapLength: v.getUint32(body + 4, le), tsResolution: 6 }
      for (const opt of readOptions(v, body + 8, end, le)) {
        if (opt.code === IF_NAME) iface.name = utf8d.decode(opt.value)
        else if (opt.code === IF_DESCRIPTION) iface.description = utf8d.decode(opt.value)
        else if (opt.code === IF_TSRESOL) iface.tsResolution = opt.value[0]
      }
      sectionInterfaces.push(iface)
      capture.interfaces.push(iface)
    } else if (type === EPB) {
      const interfaceId = v.getUint32(body, le)
      const ticks = v.getUint32(body + 4, le) * 2 ** 32 + v.getUint32(body + 8, le)
      const captured = v.getUint32(body + 12, le)
      const resolution = sectionInterfaces[interfaceId]?.tsResolution ?? 6
      const perSecond = resolution & 0x80 ? 2 ** (resolution & 0x7f) : 10 ** resolution
      const packet: ReadPacket = {
        interfaceId,
        timestampUs: (ticks / perSecond) * 1e6,
        data: file.slice(body + 20, body + 20 + captured),
        originalLength: v.getUint32(body + 16, le),
        comments: [],
      }
      for (const opt of readOptions(v, body + 20 + pad4(captured), end, le)) {
        if (opt.code === EPB_FLAGS) {
          const dir = new DataView(opt.value.buffer, opt.value.byteOffset, 4).getUint32(0, le) & 3
          if (dir === 1) packet.direction = 'inbound'
          else if (dir === 2) packet.direction = 'outbound'
        } else if (opt.code === OPT_COMMENT) packet.comments.push(utf8d.decode(opt.value))
      }
      capture.packets.push(packet)
    }
    o += total
  }
  return capture
}
