/**
 * The one error the tool raises for bad configuration (CLI flags, profile files, HTTP
 * bodies). `field` is a dotted path such as `up.loss.probability` so the message
 * points at what to fix.
 */
export class LossyLinkConfigError extends Error {
  readonly field: string
  constructor(field: string, message: string) {
    super(field ? `${field}: ${message}` : message)
    this.name = 'LossyLinkConfigError'
    this.field = field
  }
}
