/**
 * pigeon v1 frames — API summary (wire codec; spec: protocol-spec/README.md "Frames").
 *
 * Primitives (src/core/wire/):
 *   writer.ts     class Writer(capacity | buffer, offset?) { buf, offset, start, capacity, remaining,
 *                 length, reset(), finish(), u8, u16, u32, uint(v, n), varint, varintFixed(v, n),
 *                 bytes, zeros(n), reserve(n) } — overflow throws UsageError.
 *   reader.ts     class Reader(buf, offset?, end?) { buf, offset, end, remaining, peekU8, u8, u16, u32,
 *                 uint(n), varint, bytes(n) (zero-copy), rest(), skip(n) } — truncation throws DecodeError.
 *   varint.ts     varintLength(v), VARINT_MAX (= 2^53-1), VARINT_WIRE_MAX (2^62-1).
 *   pn-encoding.ts  PnLength, packetNumberLength(fullPn, largestAcked|undefined), encodeTruncated(fullPn, pnLength),
 *                 decodePacketNumber({ truncated, lengthBytes, largestReceived|undefined }), MAX_PACKET_NUMBER.
 *   packet-header.ts  VERSION_V1, CID_LENGTH, MAX_CID_LENGTH, LongPacketType, PacketHeader union
 *                 (ShortHeader | LongHeader | RetryHeader | VersionNegotiationHeader | UnsupportedVersionHeader,
 *                 discriminated by `type`: 'short' | 'initial' | 'handshake' | 'retry' | 'version-negotiation' |
 *                 'unsupported-version'; all have packetStart, headerLength, payloadOffset, packetEnd (absolute)),
 *                 decodePacketHeader(datagram, offset?), encodeShortHeader(w, {dcid, truncatedPn, pnLength, keyPhase}),
 *                 shortHeaderLength(pnLength), encodeLongHeader(w, {type, version?, dcid, scid, token?, truncatedPn,
 *                 pnLength, payloadLength, lengthFieldBytes?}), longHeaderLength(sameFields), encodeRetry / retryLength,
 *                 encodeVersionNegotiation / versionNegotiationLength, peekDestinationCid(datagram), isLikelyPigeonPacket(byte0).
 *   transport-params.ts  TransportParams, TransportParamId, TRANSPORT_PARAM_DEFAULTS, resolveTransportParams,
 *                 encodeTransportParams(w, p), transportParamsLength(p), decodeTransportParams(bytes).
 *
 * Frames (this folder; each module: interface XFrame, encodeX(w, f), xLength(f), decodeX(r) after the type byte):
 *   FrameType { PADDING 0x00, PING 0x01, ACK 0x02, CLOSE 0x03, MAX_DATA 0x04, MAX_STREAM_DATA 0x05,
 *   DATA_BLOCKED 0x06, STREAM_DATA_BLOCKED 0x07, ABANDON 0x08, HELLO 0x09, MESSAGE 0x10,
 *   PATH_CHALLENGE 0x18, PATH_RESPONSE 0x19, NEW_TOKEN 0x1a }; each frame object has `type` = its FrameType
 *   (MESSAGE frames always carry type 0x10; the LEN/FRAG flags are derived when encoding).
 *   Frame (union), encodeFrame(w, f), frameLength(f) (exact), decodeFrame(r) (reads the type byte),
 *   decodeFrames(payload): Frame[] (a run of PADDING bytes becomes one PaddingFrame {length}),
 *   isAckEliciting(f) (everything but PADDING, ACK, CLOSE).
 *   ACK helpers: ackFrameLimitedRanges(f, maxBytes), ACK_DELAY_EXPONENT.
 *   MESSAGE helpers: messageOverhead({streamId, msgSeq, msgLength, fragOffset, dataLength, hasLength?}),
 *   messageWireType(f); decodeMessage(r, wireType) also needs the type byte.
 *   Stream kinds live in src/core/streams/stream-kind.ts (streamKindOf, isValidStreamKind).
 */
import { DecodeError } from '../../errors.js'
import { Reader } from '../reader.js'
import type { Writer } from '../writer.js'
import { abandonLength, decodeAbandon, encodeAbandon, type AbandonFrame } from './abandon.js'
import { ackLength, decodeAck, encodeAck, type AckFrame } from './ack.js'
import { closeLength, decodeClose, encodeClose, type CloseFrame } from './close.js'
import { cryptoHandshakeLength, decodeCryptoHandshake, encodeCryptoHandshake, type CryptoHandshakeFrame } from './crypto-handshake.js'
import { dataBlockedLength, decodeDataBlocked, encodeDataBlocked, type DataBlockedFrame } from './data-blocked.js'
import { FrameType } from './frame-type.js'
import { decodeHello, encodeHello, helloLength, type HelloFrame } from './hello.js'
import { decodeMaxData, encodeMaxData, maxDataLength, type MaxDataFrame } from './max-data.js'
import { decodeMaxStreamData, encodeMaxStreamData, maxStreamDataLength, type MaxStreamDataFrame } from './max-stream-data.js'
import { decodeMessage, encodeMessage, messageLength, type MessageFrame } from './message.js'
import { decodeNewToken, encodeNewToken, newTokenLength, type NewTokenFrame } from './new-token.js'
import { decodePadding, encodePadding, paddingLength, type PaddingFrame } from './padding.js'
import { decodePathChallenge, encodePathChallenge, pathChallengeLength, type PathChallengeFrame } from './path-challenge.js'
import { decodePathResponse, encodePathResponse, pathResponseLength, type PathResponseFrame } from './path-response.js'
import { decodePing, encodePing, pingLength, type PingFrame } from './ping.js'
import {
  decodeStreamDataBlocked,
  encodeStreamDataBlocked,
  streamDataBlockedLength,
  type StreamDataBlockedFrame,
} from './stream-data-blocked.js'

export * from './abandon.js'
export * from './ack.js'
export * from './close.js'
export * from './data-blocked.js'
export * from './frame-type.js'
export * from './crypto-handshake.js'
export * from './hello.js'
export * from './max-data.js'
export * from './max-stream-data.js'
export * from './message.js'
export * from './new-token.js'
export * from './padding.js'
export * from './path-challenge.js'
export * from './path-response.js'
export * from './ping.js'
export * from './stream-data-blocked.js'

export type Frame =
  | PaddingFrame
  | PingFrame
  | AckFrame
  | CloseFrame
  | MaxDataFrame
  | MaxStreamDataFrame
  | DataBlockedFrame
  | StreamDataBlockedFrame
  | AbandonFrame
  | HelloFrame
  | CryptoHandshakeFrame
  | MessageFrame
  | PathChallengeFrame
  | PathResponseFrame
  | NewTokenFrame

export const encodeFrame = (w: Writer, f: Frame): void => {
  switch (f.type) {
    case FrameType.PADDING: return encodePadding(w, f)
    case FrameType.PING: return encodePing(w, f)
    case FrameType.ACK: return encodeAck(w, f)
    case FrameType.CLOSE: return encodeClose(w, f)
    case FrameType.MAX_DATA: return encodeMaxData(w, f)
    case FrameType.MAX_STREAM_DATA: return encodeMaxStreamData(w, f)
    case FrameType.DATA_BLOCKED: return encodeDataBlocked(w, f)
    case FrameType.STREAM_DATA_BLOCKED: return encodeStreamDataBlocked(w, f)
    case FrameType.ABANDON: return encodeAbandon(w, f)
    case FrameType.HELLO: return encodeHello(w, f)
    case FrameType.CRYPTO_HANDSHAKE: return encodeCryptoHandshake(w, f)
    case FrameType.MESSAGE: return encodeMessage(w, f)
    case FrameType.PATH_CHALLENGE: return encodePathChallenge(w, f)
    case FrameType.PATH_RESPONSE: return encodePathResponse(w, f)
    case FrameType.NEW_TOKEN: return encodeNewToken(w, f)
    default: return unknownFrameObject(f)
  }
}

export const frameLength = (f: Frame): number => {
  switch (f.type) {
    case FrameType.PADDING: return paddingLength(f)
    case FrameType.PING: return pingLength(f)
    case FrameType.ACK: return ackLength(f)
    case FrameType.CLOSE: return closeLength(f)
    case FrameType.MAX_DATA: return maxDataLength(f)
    case FrameType.MAX_STREAM_DATA: return maxStreamDataLength(f)
    case FrameType.DATA_BLOCKED: return dataBlockedLength(f)
    case FrameType.STREAM_DATA_BLOCKED: return streamDataBlockedLength(f)
    case FrameType.ABANDON: return abandonLength(f)
    case FrameType.HELLO: return helloLength(f)
    case FrameType.CRYPTO_HANDSHAKE: return cryptoHandshakeLength(f)
    case FrameType.MESSAGE: return messageLength(f)
    case FrameType.PATH_CHALLENGE: return pathChallengeLength(f)
    case FrameType.PATH_RESPONSE: return pathResponseLength(f)
    case FrameType.NEW_TOKEN: return newTokenLength(f)
    default: return unknownFrameObject(f)
  }
}

/**
 * Reads one frame (type byte included). Frame types are varints, but every type this
 * version knows is below 0x40 and must be sent in one byte; anything else (a longer
 * encoding, a reserved or unknown type) is a DecodeError (FRAME_ENCODING_ERROR).
 */
export const decodeFrame = (r: Reader): Frame => {
  const t = r.u8()
  switch (t) {
    case FrameType.PADDING: return decodePadding(r)
    case FrameType.PING: return decodePing(r)
    case FrameType.ACK: return decodeAck(r)
    case FrameType.CLOSE: return decodeClose(r)
    case FrameType.MAX_DATA: return decodeMaxData(r)
    case FrameType.MAX_STREAM_DATA: return decodeMaxStreamData(r)
    case FrameType.DATA_BLOCKED: return decodeDataBlocked(r)
    case FrameType.STREAM_DATA_BLOCKED: return decodeStreamDataBlocked(r)
    case FrameType.ABANDON: return decodeAbandon(r)
    case FrameType.HELLO: return decodeHello(r)
    case FrameType.CRYPTO_HANDSHAKE: return decodeCryptoHandshake(r)
    case 0x10:
    case 0x11:
    case 0x12:
    case 0x13:
      return decodeMessage(r, t)
    case FrameType.PATH_CHALLENGE: return decodePathChallenge(r)
    case FrameType.PATH_RESPONSE: return decodePathResponse(r)
    case FrameType.NEW_TOKEN: return decodeNewToken(r)
    default:
      throw new DecodeError(
        t >= 0x0b && t <= 0x0f
          ? `frame type 0x${t.toString(16)} is reserved for the crypto handshake`
          : `unknown frame type 0x${t.toString(16)}`,
      )
  }
}

/** Every frame of a packet payload, in order. */
export const decodeFrames = (payload: Uint8Array): Frame[] => {
  const r = new Reader(payload)
  const frames: Frame[] = []
  while (r.offset < r.end) frames.push(decodeFrame(r))
  return frames
}

/** Whether receiving this frame obliges the peer to send an ACK (RFC 9002 §2 semantics). */
export const isAckEliciting = (f: Frame): boolean =>
  f.type !== FrameType.PADDING && f.type !== FrameType.ACK && f.type !== FrameType.CLOSE

const unknownFrameObject = (f: never): never => {
  throw new TypeError(`not a frame: ${JSON.stringify(f)}`)
}
