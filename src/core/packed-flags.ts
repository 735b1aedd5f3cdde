/**
 * Boolean fields stored as bits of one numeric field `flags`, behind accessors defined on
 * the prototype: an object that exists 100,000 times carries one number instead of one
 * word per boolean, and reads and writes cost about as much as a field once the JIT has
 * inlined the accessor. Declare the fields with `declare name: boolean` so that no own
 * property shadows the accessor; at most 31 names.
 */
export const packBooleanFields = <T extends { flags: number }>(prototype: T, names: ReadonlyArray<keyof T & string>): void => {
  if (names.length > 31) throw new RangeError(`at most 31 packed booleans, got ${names.length}`)
  names.forEach((name, bit) => {
    const mask = 1 << bit
    Object.defineProperty(prototype, name, {
      get(this: T): boolean {
        return (this.flags & mask) !== 0
      },
      set(this: T, on: boolean) {
        this.flags = on ? this.flags | mask : this.flags & ~mask
      },
      enumerable: false,
      configurable: false,
    })
  })
}
