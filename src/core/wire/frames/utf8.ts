/** UTF-8 helpers for the few text fields (CLOSE reason). */
import { DecodeError } from '../../errors.js'

const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

/** Byte length of `s` as TextEncoder encodes it (lone surrogates become U+FFFD, 3 bytes). */
export const utf8Length = (s: string): number => {
  let n = 0
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c < 0x80) n += 1
    else if (c < 0x800) n += 2
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1)
      if (d >= 0xdc00 && d <= 0xdfff) {
        n += 4
        i++
      } else n += 3
    } else n += 3
  }
  return n
}

/** Writes `s` into `out` (which must be exactly utf8Length(s) long). */
export const utf8EncodeInto = (s: string, out: Uint8Array): void => {
  encoder.encodeInto(s, out)
}

export const utf8Decode = (bytes: Uint8Array): string => {
  try {
    return decoder.decode(bytes)
  } catch {
    throw new DecodeError('invalid UTF-8')
  }
}
