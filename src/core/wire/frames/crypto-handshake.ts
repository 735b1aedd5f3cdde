/**
 * CRYPTO_HANDSHAKE (0x0a): messageLength varint | message — one Noise NK handshake
 * message (protocol-spec/handshake.md). Carried only in INITIAL packets; ack-eliciting.
 */
import { DecodeError, ErrorCode, UsageError } from '../../errors.js'
import type { Reader } from '../reader.js'
import { varintLength } from '../varint.js'
import type { Writer } from '../writer.js'
import { FrameType } from './frame-type.js'

export interface CryptoHandshakeFrame {
  type: typeof FrameType.CRYPTO_HANDSHAKE
  message: Uint8Array
}

export const encodeCryptoHandshake = (w: Writer, f: CryptoHandshakeFrame): void => {
  if (f.message.length === 0) throw new UsageError(ErrorCode.INTERNAL_ERROR, 'CRYPTO_HANDSHAKE message must not be empty')
  w.u8(FrameType.CRYPTO_HANDSHAKE)
  w.varint(f.message.length)
  w.bytes(f.message)
}

export const cryptoHandshakeLength = (f: CryptoHandshakeFrame): number => 1 + varintLength(f.message.length) + f.message.length

export const decodeCryptoHandshake = (r: Reader): CryptoHandshakeFrame => {
  const n = r.varint()
  if (n === 0) throw new DecodeError('CRYPTO_HANDSHAKE with an empty message')
  return { type: FrameType.CRYPTO_HANDSHAKE, message: r.bytes(n) }
}
