/**
 * Wire error codes (CLOSE frame) and the typed errors the core throws.
 * The numeric values are part of the protocol; see protocol-spec/README.md "Error codes".
 */
export const ErrorCode = {
  NO_ERROR: 0x00,
  INTERNAL_ERROR: 0x01,
  PROTOCOL_VIOLATION: 0x02,
  FRAME_ENCODING_ERROR: 0x03,
  FLOW_CONTROL_ERROR: 0x04,
  STREAM_LIMIT_ERROR: 0x05,
  MESSAGE_TOO_LARGE: 0x06,
  IDLE_TIMEOUT: 0x07,
  DEAD_LINK: 0x08,
  VERSION_MISMATCH: 0x09,
  HANDSHAKE_FAILED: 0x0a,
  APPLICATION_CLOSE: 0x0b,
} as const
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode]

export const errorCodeName = (code: number): string => {
  for (const [name, value] of Object.entries(ErrorCode)) if (value === code) return name
  return `UNKNOWN_0x${code.toString(16)}`
}

/** Base class: every error the protocol raises on purpose carries a wire code. */
export class PigeonError extends Error {
  readonly code: ErrorCode
  constructor(code: ErrorCode, message: string) {
    super(message)
    this.name = 'PigeonError'
    this.code = code
  }
}

/** Bytes on the wire could not be decoded (truncated, bad varint, unknown frame...). */
export class DecodeError extends PigeonError {
  constructor(message: string, code: ErrorCode = ErrorCode.FRAME_ENCODING_ERROR) {
    super(code, message)
    this.name = 'DecodeError'
  }
}

/** The peer broke a protocol rule (flow control, stream limits, bad ack...). */
export class ProtocolError extends PigeonError {
  constructor(code: ErrorCode, message: string) {
    super(code, message)
    this.name = 'ProtocolError'
  }
}

/** The local application misused the API (message too large, closed session...). */
export class UsageError extends PigeonError {
  constructor(code: ErrorCode, message: string) {
    super(code, message)
    this.name = 'UsageError'
  }
}
