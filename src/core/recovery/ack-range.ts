/** One inclusive range of acknowledged packet numbers (ACK frames list them largest first). */
export interface AckRange {
  smallest: number
  largest: number
}
