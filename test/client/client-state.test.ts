import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { FileClientState, MemoryClientState, type OutboxEntry } from '../../src/client/client-state.js'
import { ChatHistory } from '../../src/client/history.js'

const entry = (n: number, to: OutboxEntry['to'] = { kind: 'user', userId: 2 }): OutboxEntry => ({
  clientMsgId: new Uint8Array(16).fill(n),
  to,
  body: `message ${n} ✓ "quoted"\nline two`,
  createdAtMs: 1_700_000_000_000 + n,
})

const tempDir = (t: { teardown: (fn: () => void) => void }): string => {
  const dir = mkdtempSync(join(tmpdir(), 'pigeon-client-state-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return join(dir, 'server-7700', 'alice')
}

t.test('MemoryClientState hands out copies', async (t) => {
  const s = new MemoryClientState()
  const e = entry(1)
  s.addOutbox(e)
  e.clientMsgId[0] = 99
  const loaded = s.load()
  t.equal(loaded.outbox[0].clientMsgId[0], 1)
  loaded.outbox.pop()
  t.equal(s.load().outbox.length, 1)
})

t.test('FileClientState survives close and reopen: cursor, token, outbox in order', async (t) => {
  const dir = tempDir(t)
  const s = FileClientState.open(dir)
  t.same(s.load(), { cursor: 0, outbox: [], reads: [], token: undefined })
  s.saveCursor(5)
  s.saveToken(new Uint8Array([1, 2, 3]))
  s.addOutbox(entry(1))
  s.addOutbox(entry(2, { kind: 'group', groupId: 7 }))
  s.addOutbox(entry(3))
  s.removeOutbox(entry(2).clientMsgId)
  s.saveCursor(9)
  s.close()

  const r = FileClientState.open(dir)
  t.equal(r.corruptLines, 0)
  const loaded = r.load()
  t.equal(loaded.cursor, 9)
  t.same([...(loaded.token ?? [])], [1, 2, 3])
  t.same(loaded.outbox, [entry(1), entry(3)])
  r.saveToken(undefined)
  r.close()
  t.equal(FileClientState.open(dir).load().token, undefined)
})

t.test('pending read receipts survive a crash and a compaction; sent ones are forgotten', async (t) => {
  const dir = tempDir(t)
  const s = FileClientState.open(dir)
  s.addReads([10, 11])
  s.addReads([11, 12])
  s.removeReads([10])
  // no close(): the process "died"
  const r = FileClientState.open(dir) // folds and rewrites the journal
  t.same(r.load().reads.sort(), [11, 12])
  r.removeReads([11, 12])
  r.addReads([13])
  r.close()
  t.same(FileClientState.open(dir).load().reads, [13])
  const m = new MemoryClientState({ reads: [1] })
  m.addReads([2])
  m.removeReads([1])
  t.same(m.load().reads, [2])
})

t.test('a crash (no close) loses nothing that was saved; the stale lock of this process is taken over', async (t) => {
  const dir = tempDir(t)
  const s = FileClientState.open(dir)
  s.addOutbox(entry(1))
  s.saveCursor(3)
  // no close(): the process "died"
  const r = FileClientState.open(dir)
  t.same(r.load().outbox, [entry(1)])
  t.equal(r.load().cursor, 3)
  r.close()
})

t.test('a torn last line is counted and skipped; earlier records survive and later writes are readable', async (t) => {
  const dir = tempDir(t)
  const s = FileClientState.open(dir)
  s.saveCursor(4)
  s.addOutbox(entry(1))
  s.addOutbox(entry(2))
  s.close()
  // A write cut short by a crash: half a record, no newline.
  const file = join(dir, 'state.jsonl')
  const full = JSON.stringify({ t: 'remove', id: Buffer.from(entry(1).clientMsgId).toString('hex') })
  appendFileSync(file, full.slice(0, 20))

  const r = FileClientState.open(dir)
  t.equal(r.corruptLines, 1)
  t.equal(r.load().cursor, 4)
  t.same(r.load().outbox, [entry(1), entry(2)])
  r.removeOutbox(entry(1).clientMsgId)
  r.saveCursor(6)
  r.close()

  const again = FileClientState.open(dir)
  t.equal(again.corruptLines, 0, 'the journal was rewritten clean on open')
  t.same(again.load().outbox, [entry(2)])
  t.equal(again.load().cursor, 6)
  again.close()
})

t.test('garbage in the middle of the journal is skipped, not fatal', async (t) => {
  const dir = tempDir(t)
  const s = FileClientState.open(dir)
  s.close()
  const file = join(dir, 'state.jsonl')
  const id = (n: number) => Buffer.from(entry(n).clientMsgId).toString('hex')
  writeFileSync(
    file,
    [
      JSON.stringify({ t: 'cursor', v: 2 }),
      '\u0000\u0000\u0000garbage',
      JSON.stringify({ t: 'add', id: id(1), to: { kind: 'user', userId: 2 }, body: 'hi', at: 1 }),
      JSON.stringify({ t: 'add', id: 'zz', to: { kind: 'user', userId: 2 }, body: 'bad id', at: 1 }),
      JSON.stringify({ t: 'cursor', v: -1 }),
      JSON.stringify({ t: 'mystery' }),
      JSON.stringify({ t: 'cursor', v: 3 }),
      '',
    ].join('\n'),
  )
  const r = FileClientState.open(dir)
  t.equal(r.corruptLines, 4)
  t.equal(r.load().cursor, 3)
  t.equal(r.load().outbox.length, 1)
  t.equal(r.load().outbox[0].body, 'hi')
  r.close()
})

t.test('a directory locked by another live process is refused', async (t) => {
  const dir = tempDir(t)
  FileClientState.open(dir).close()
  writeFileSync(join(dir, 'lock'), `${process.ppid}\n`)
  t.throws(() => FileClientState.open(dir), /in use by process/)
  // A lock left by a dead process is taken over.
  writeFileSync(join(dir, 'lock'), '2147483646\n')
  const s = FileClientState.open(dir)
  t.equal(readFileSync(join(dir, 'lock'), 'utf8').trim(), String(process.pid))
  s.close()
})

t.test('ChatHistory: messages de-duplicated by msgId, unread counts, receipts and names survive a reopen', async (t) => {
  const dir = tempDir(t)
  const h = new ChatHistory(dir)
  t.ok(h.addMessage({ conv: 'u:2', version: 1, msgId: 10, fromUserId: 2, out: false, sentAtMs: 1000, body: 'hi alice' }))
  t.notOk(h.addMessage({ conv: 'u:2', version: 1, msgId: 10, fromUserId: 2, out: false, sentAtMs: 1000, body: 'hi alice' }), 'duplicate')
  h.addMessage({ conv: 'u:2', version: 2, msgId: 11, fromUserId: 1, out: true, sentAtMs: 2000, body: 'hi bob' })
  h.addMessage({ conv: 'g:9', version: 3, msgId: 12, fromUserId: 3, out: false, sentAtMs: 3000, body: 'hello team' })
  h.addEvent({ conv: 'g:9', version: 4, atMs: 3500, text: 'carol joined' })
  h.addReceipt(11, 'delivered', 2)
  h.addReceipt(11, 'read', 2)
  h.setUserName(2, 'bob')
  h.setGroupName(9, 'team')
  h.markSeen('u:2', 1)
  t.equal(h.unread('u:2').length, 0)
  t.equal(h.unread('g:9').length, 1)
  appendFileSync(join(dir, 'history.jsonl'), '{"t":"m","c":"u:2"') // torn

  const r = new ChatHistory(dir)
  t.equal(r.corruptLines, 1)
  t.same(
    r.conversations().map((c) => [c.conv, c.unread]),
    [
      ['g:9', 1],
      ['u:2', 0],
    ],
  )
  t.same(
    r.items('u:2').map((i) => (i.kind === 'message' ? i.body : i.text)),
    ['hi alice', 'hi bob'],
  )
  t.same(r.items('g:9').map((i) => i.kind), ['message', 'event'])
  t.same(r.receipts(11), { deliveredTo: [2], readBy: [2] })
  t.equal(r.userIdByName('BOB'), 2)
  t.same(r.groupIdsByName('team'), [9])
  t.notOk(r.addMessage({ conv: 'u:2', version: 1, msgId: 10, fromUserId: 2, out: false, sentAtMs: 1000, body: 'hi alice' }), 'still de-duplicated after reopen')
  t.notOk(r.addEvent({ conv: 'g:9', version: 4, atMs: 3500, text: 'carol joined' }))
})
