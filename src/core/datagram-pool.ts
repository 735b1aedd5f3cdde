/**
 * Outgoing datagrams are carved out of shared 64 KiB slabs: a view on a slab costs a
 * fraction of a fresh ArrayBuffer (no backing-store allocation per packet), which
 * matters at hundreds of thousands of packets per second. A slab is freed by the GC
 * once no datagram cut from it is referenced any more.
 */
const SLAB_BYTES = 64 * 1024

let slab = new ArrayBuffer(SLAB_BYTES)
let used = 0

/** A copy of src[start, end) in pooled memory. */
export const copyToDatagram = (src: Uint8Array, start: number, end: number): Uint8Array => {
  const length = end - start
  if (length > SLAB_BYTES / 4) return src.slice(start, end)
  if (used + length > SLAB_BYTES) {
    slab = new ArrayBuffer(SLAB_BYTES)
    used = 0
  }
  const out = new Uint8Array(slab, used, length)
  out.set(src.subarray(start, end))
  // Keep views 8-byte aligned so neighbouring datagrams never share a cache line start.
  used += (length + 7) & ~7
  return out
}
