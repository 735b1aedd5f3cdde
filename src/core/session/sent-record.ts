import type { OutboundMessage } from '../streams/outbound-message.js'
import type { SendStream } from '../streams/send-stream.js'

/** What a sent packet carried that matters if it is acknowledged or lost. */
export const RecordKind = {
  fragment: 0,
  maxData: 1,
  maxStreamData: 2,
  abandon: 3,
  hello: 4,
  pathResponse: 5,
  pathChallenge: 6,
} as const

/** One monomorphic shape for every record kind (fields unused by a kind stay at their defaults). */
export class SentRecord {
  constructor(
    readonly kind: number,
    readonly stream: SendStream | null = null,
    readonly msg: OutboundMessage | null = null,
    /** fragment index, or the stream id for maxStreamData */
    readonly index = 0,
    /** abandon: the message sequence and its flow cost */
    readonly seq = 0,
    readonly cost = 0,
  ) {}
}
