/**
 * Frame type codes (spec "Frames"). The type is a varint; every type defined so far
 * fits in one byte. MESSAGE uses 0x10..0x13: 0x10 | LEN (0x02) | FRAG (0x01).
 */
export const FrameType = {
  PADDING: 0x00,
  PING: 0x01,
  ACK: 0x02,
  CLOSE: 0x03,
  MAX_DATA: 0x04,
  MAX_STREAM_DATA: 0x05,
  DATA_BLOCKED: 0x06,
  STREAM_DATA_BLOCKED: 0x07,
  ABANDON: 0x08,
  HELLO: 0x09,
  CRYPTO_HANDSHAKE: 0x0a,
  // 0x0b..0x0f reserved for the crypto handshake.
  MESSAGE: 0x10,
  // 0x14..0x17 reserved.
  PATH_CHALLENGE: 0x18,
  PATH_RESPONSE: 0x19,
  NEW_TOKEN: 0x1a,
} as const
export type FrameType = (typeof FrameType)[keyof typeof FrameType]

/** Flag bits of the MESSAGE frame type byte. */
export const MESSAGE_FLAG_FRAG = 0x01
export const MESSAGE_FLAG_LEN = 0x02
