/**
 * The chat history is appended with every synced entry, and sync never delivers an entry
 * again once the cursor has passed it: the history must be durable before the cursor
 * that covers it. node:fs is mocked (for history.ts and client-state.ts) to record what
 * is written, fsynced and renamed, in order.
 */
import * as fs from 'node:fs'
import { mkdtempSync, rmSync } from 'node:fs'
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
