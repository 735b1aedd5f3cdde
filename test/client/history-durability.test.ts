/**
 * The chat history is appended with every synced entry, and sync never delivers an entry
 * again once the cursor has passed it: the history must be durable before the cursor
 * that covers it. node:fs is mocked (for history.ts and client-state.ts) to record what
 * is written, fsynced and renamed, in order.
 */
import * as fs from 'node:fs'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import t, { type Test } from 'tap'
import type { ChatClient } from '../../src/client/chat-client.js'
import { ChatUi } from '../../src/client/chat-ui.js'
import type * as HistoryModule from '../../src/client/history.js'
import { harness, msg } from './core-harness.js'

/** ChatHistory over a node:fs that logs writes, fsyncs and renames (by file name) into `log`. */
const loggedHistory = async (t: Test, log: string[]): Promise<typeof HistoryModule> => {
  const names = new Map<number, string>()
  const name = (fd: number): string => names.get(fd) ?? `fd ${fd}`
  const mockFs = {
    ...fs,
    openSync: (path: fs.PathLike, ...rest: unknown[]) => {
      const fd = (fs.openSync as (...a: unknown[]) => number)(path, ...rest)
      names.set(fd, basename(String(path)))
      return fd
    },
    writeSync: (fd: number, data: string) => {
      log.push(`write ${name(fd)}`)
      return fs.writeSync(fd, data)
    },
    writeFileSync: (path: string, data: string, opts: fs.WriteFileOptions) => {
      log.push(`write ${basename(path)}`)
      fs.writeFileSync(path, data, opts)
    },
    fsyncSync: (fd: number) => {
      log.push(`fsync ${name(fd)}`)
      fs.fsyncSync(fd)
    },
    renameSync: (from: string, to: string) => {
      log.push(`rename ${basename(from)} -> ${basename(to)}`)
      fs.renameSync(from, to)
    },
  }
  const clientState = await t.mockImport<typeof import('../../src/client/client-state.js')>('../../src/client/client-state.js', { 'node:fs': mockFs })
  return t.mockImport<typeof HistoryModule>('../../src/client/history.js', { 'node:fs': mockFs, '../../src/client/client-state.js': clientState })
}

const tempDir = (t: Test): string => {
  const dir = mkdtempSync(join(tmpdir(), 'pigeon-history-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

t.test('compaction fsyncs the new file before the rename and the directory after; sync() fsyncs the appends once', async (t) => {
  const log: string[] = []
  const { ChatHistory } = await loggedHistory(t, log)
  const dir = tempDir(t)
  const h = new ChatHistory(dir)
  t.same(log, ['write history.jsonl.tmp', 'fsync history.jsonl.tmp', 'rename history.jsonl.tmp -> history.jsonl', `fsync ${basename(dir)}`])
  log.length = 0
  h.addMessage({ conv: 'u:2', version: 1, msgId: 10, fromUserId: 2, out: false, sentAtMs: 1, body: 'hi' })
  h.addReceipt(9, 'read', 2)
  h.sync()
  h.sync()
  t.same(log, ['write history.jsonl', 'write history.jsonl', 'fsync history.jsonl'], 'one fsync for both, none without appends')
  h.close()
})

t.test('the chat UI makes the history of a batch durable before the core saves the cursor that covers it', async (t) => {
  const log: string[] = []
  const { ChatHistory } = await loggedHistory(t, log)
  const history = new ChatHistory(tempDir(t))
  t.teardown(() => history.close())
  const h = harness()
  const save = h.state.saveCursor.bind(h.state)
  h.state.saveCursor = (v: number) => {
    log.push(`cursor ${v}`)
    save(v)
  }
  // The core has the events and methods ChatUi uses; who is logged in comes from ChatClient.
  const client = Object.assign(h.core, { userId: 1, username: 'alice' }) as unknown as ChatClient
  new ChatUi({ client, history, print: () => {}, onQuit: () => {} })
  h.core.onConnected({ userId: 1, deviceId: 3 })
  h.take()
  log.length = 0
  h.feed({ type: 'SYNC_BATCH', afterVersion: 0, latestVersion: 2, entries: [msg(1), msg(2)] })
  t.same(log, ['write history.jsonl', 'write history.jsonl', 'fsync history.jsonl', 'cursor 2'])

  // The device's own copy, applied from SEND_OK.
  void h.core.send({ kind: 'user', userId: 2 }, 'mine')
  const [send] = h.take().filter((m) => m.type === 'SEND')
  log.length = 0
  h.feed({ type: 'SEND_OK', clientMsgId: send.type === 'SEND' ? send.clientMsgId : new Uint8Array(), msgId: 77, version: 3, sentAtMs: 7_000 })
  t.same(log, ['write history.jsonl', 'fsync history.jsonl', 'cursor 3'], 'own copy')
})

/** The file's lines, and the messages among them. */
const onDisk = (dir: string): { lines: number; messages: number } => {
  const lines = readFileSync(join(dir, 'history.jsonl'), 'utf8').split('\n').filter((l) => l !== '')
  return { lines: lines.length, messages: lines.filter((l) => l.startsWith('{"t":"m"')).length }
}

t.test('while running, a conversation past its limit is compacted like at start: memory and file stay bounded, the new file is durable before appends go on in it', async (t) => {
  const log: string[] = []
  const { ChatHistory, HISTORY_KEEP, HISTORY_SLACK } = await loggedHistory(t, log)
  const dir = tempDir(t)
  const h = new ChatHistory(dir)
  const add = (v: number): boolean => h.addMessage({ conv: 'u:2', version: v, msgId: 10 + v, fromUserId: 2, out: false, sentAtMs: v, body: `m${v}` })
  const limit = HISTORY_KEEP + HISTORY_SLACK
  for (let v = 1; v <= limit; v++) add(v)
  h.addReceipt(11, 'read', 2) // of the oldest message, dropped below
  h.addMessage({ conv: 'u:3', version: limit + 1, msgId: 5, fromUserId: 3, out: false, sentAtMs: 1, body: 'another conversation' })
  t.equal(h.items('u:2', Infinity).length, limit, 'up to the limit, nothing is compacted')
  log.length = 0
  add(limit + 2)
  t.same(log, ['write history.jsonl', 'write history.jsonl.tmp', 'fsync history.jsonl.tmp', 'rename history.jsonl.tmp -> history.jsonl', `fsync ${basename(dir)}`])
  t.equal(h.items('u:2', Infinity).length, HISTORY_KEEP, 'the newest HISTORY_KEEP are kept')
  t.equal(h.items('u:2', 1)[0].version, limit + 2)
  t.equal(h.message(11), undefined)
  t.same(h.receipts(11), { deliveredTo: [], readBy: [] }, 'receipts of dropped messages are dropped too')
  t.equal(h.items('u:3').length, 1, 'other conversations are kept')

  log.length = 0
  add(limit + 3)
  h.sync()
  t.same(log, ['write history.jsonl', 'fsync history.jsonl'], 'appends go on in the new file, fsynced by sync()')
  h.close()
  t.same(onDisk(dir).messages, HISTORY_KEEP + 2)
  const again = new ChatHistory(dir, { noSync: true })
  t.equal(again.items('u:2', Infinity).length, HISTORY_KEEP)
  t.equal(again.items('u:2', 1)[0].version, limit + 3, 'nothing appended after the compaction is lost')
  again.close()
})

t.test('while running, the file is compacted when it gained more lines than its last compaction wrote', async (t) => {
  const { ChatHistory, MIN_APPENDS_BEFORE_COMPACT } = await loggedHistory(t, [])
  const dir = tempDir(t)
  const h = new ChatHistory(dir, { noSync: true })
  let maxLines = 0
  for (let v = 1; v <= 3 * MIN_APPENDS_BEFORE_COMPACT; v++) {
    h.markSeen('u:2', v) // one line each, none of them kept by compaction but the last
    if (v % 100 === 0) maxLines = Math.max(maxLines, onDisk(dir).lines)
  }
  h.close()
  t.ok(maxLines <= MIN_APPENDS_BEFORE_COMPACT + 1, `at most ${MIN_APPENDS_BEFORE_COMPACT + 1} lines, had ${maxLines}`)
  t.ok(onDisk(dir).lines <= MIN_APPENDS_BEFORE_COMPACT + 1)
})

t.test('a compaction in the middle of a sync batch: the history is still durable before the cursor that covers it', async (t) => {
  const log: string[] = []
  const { ChatHistory, HISTORY_KEEP, HISTORY_SLACK } = await loggedHistory(t, log)
  const history = new ChatHistory(tempDir(t))
  t.teardown(() => history.close())
  const h = harness()
  const save = h.state.saveCursor.bind(h.state)
  h.state.saveCursor = (v: number) => {
    log.push(`cursor ${v}`)
    save(v)
  }
  const client = Object.assign(h.core, { userId: 1, username: 'alice' }) as unknown as ChatClient
  new ChatUi({ client, history, print: () => {}, onQuit: () => {} })
  h.core.onConnected({ userId: 1, deviceId: 3 })
  h.take()
  log.length = 0
  const count = HISTORY_KEEP + HISTORY_SLACK + 10
  h.feed({ type: 'SYNC_BATCH', afterVersion: 0, latestVersion: count, entries: Array.from({ length: count }, (_, i) => msg(i + 1)) })
  const cursorAt = log.indexOf(`cursor ${count}`)
  t.equal(cursorAt, log.length - 1, 'the cursor is saved last')
  t.ok(log.includes('rename history.jsonl.tmp -> history.jsonl'), 'compacted during the batch')
  const lastWrite = log.lastIndexOf('write history.jsonl')
  t.ok(lastWrite > log.indexOf('rename history.jsonl.tmp -> history.jsonl'), 'appends after the compaction')
  t.same(log.slice(lastWrite + 1), ['fsync history.jsonl', `cursor ${count}`], 'fsynced, then the cursor')
  t.equal(history.items('u:2', Infinity).length, HISTORY_KEEP + 9)
})
