/**
 * Errors of the cryptographic handshake. Every way a handshake message can be bad
 * (length, tag, key, point) surfaces as one HandshakeError, so the session can count
 * the drop and close with HANDSHAKE_FAILED without inspecting library exceptions.
 */
import { ErrorCode, PigeonError } from '../errors.js'

export type HandshakeFailure =
  /** The message is shorter or longer than the pattern allows. */
  | 'bad_length'
  /** An AEAD tag did not verify: tampering, a wrong prologue, or the wrong server key. */
  | 'bad_tag'
  /** A public key is a low-order point (the DH output would be all zeros). */
  | 'bad_public_key'
  /** A key handed to us (pinned server key, static private key) has the wrong size. */
  | 'bad_key'

export class HandshakeError extends PigeonError {
  readonly reason: HandshakeFailure
  constructor(reason: HandshakeFailure, message: string) {
    super(ErrorCode.HANDSHAKE_FAILED, message)
    this.name = 'HandshakeError'
    this.reason = reason
  }
}
