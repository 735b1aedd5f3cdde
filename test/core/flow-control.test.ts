/** SendCredit / RecvCredit: credit arithmetic, stale updates, when to grant more. */
import t from 'tap'
import { MESSAGE_FLOW_OVERHEAD_BYTES, RecvCredit, SendCredit } from '../../src/core/flow-control.js'

t.test('SendCredit: available credit, updates only ever raise the limit', async (t) => {
  const c = new SendCredit(1000)
  t.equal(c.available(), 1000)
  c.chargedBytes += 600
  t.equal(c.available(), 400)
  t.equal(c.update(900), false, 'a stale (smaller) limit is ignored')
  t.equal(c.maxBytes, 1000)
  t.equal(c.update(1000), false, 'the same limit is no change')
  t.equal(c.update(2000), true)
  t.equal(c.available(), 1400)
})

t.test('RecvCredit: charge within and beyond the advertised credit', async (t) => {
  const c = new RecvCredit(1000)
  t.equal(c.maxGrantedBytes, 1000)
  t.equal(c.charge(600), true)
  t.equal(c.charge(400), true, 'exactly the credit is allowed')
  t.equal(c.charge(1), false, 'one byte over is a flow-control violation')
})

t.test('RecvCredit: consume moves cost from buffered to consumed', async (t) => {
  const c = new RecvCredit(1000)
  c.charge(300)
  c.consume(300, 300)
  t.equal(c.bufferedBytes, 0)
  t.equal(c.consumedBytes, 300)
  // An abandoned message the receiver never saw: consumed without having been buffered.
  c.consume(0, 132)
  t.equal(c.consumedBytes, 432)
})

t.test('RecvCredit: a new grant once half the window has been consumed', async (t) => {
  const c = new RecvCredit(1000)
  c.charge(499)
  c.consume(499, 499)
  t.equal(c.nextGrant(), undefined, 'less than half consumed')
  c.charge(1)
  c.consume(1, 1)
  t.equal(c.nextGrant(), 1500)
  c.markGranted(1500)
  t.equal(c.maxGrantedBytes, 1500)
  t.equal(c.nextGrant(), undefined)
  c.markGranted(1200)
  t.equal(c.maxGrantedBytes, 1500, 'granted limit never shrinks')
  t.equal(c.charge(1000), true, '1000 more fit after the grant (500 consumed + 1000 = 1500)')
  t.equal(c.charge(1), false)
})

t.test('RecvCredit: buffered (not yet consumed) data does not earn new credit', async (t) => {
  const c = new RecvCredit(1000)
  c.charge(900)
  t.equal(c.nextGrant(), undefined)
  c.consume(900, 900)
  t.equal(c.nextGrant(), 1900)
})

t.test('flow cost overhead is positive so empty messages are bounded', async (t) => {
  t.ok(MESSAGE_FLOW_OVERHEAD_BYTES > 0)
  const c = new RecvCredit(10 * MESSAGE_FLOW_OVERHEAD_BYTES)
  let accepted = 0
  while (c.charge(MESSAGE_FLOW_OVERHEAD_BYTES)) accepted++
  t.equal(accepted, 10)
})
