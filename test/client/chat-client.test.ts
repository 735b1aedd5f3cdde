/**
 * ChatClient over real UDP against an in-process chat server (memory stores, no
 * encryption for speed): login / register / resume with the stored token, fallback to
 * the password, and reconnecting across a server restart with the outbox resent.
 */
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { ChatClient, type ChatClientOptions } from '../../src/client/chat-client.js'
import type { MessageEntry } from '../../src/client/chat-core.js'
import { FileClientState } from '../../src/client/client-state.js'
import { AuthError } from '../../src/io/client.js'
import { LoginService } from '../../src/server/accounts/login.js'
import { SessionTokens } from '../../src/server/accounts/tokens.js'
import { type ChatServer, startChatServer } from '../../src/server/chat-server.js'
import { MemoryAccountStore } from '../../src/store/memory-account-store.js'
import { MemoryMessageStore } from '../../src/store/memory-message-store.js'
import { waitFor, watch } from '../helpers/wait.js'

const world = () => {
  const accounts = new MemoryAccountStore()
  const messages = new MemoryMessageStore({ accounts })
  const tokens = new SessionTokens({ store: accounts, secret: new Uint8Array(randomBytes(32)) })
  const login = new LoginService({ store: accounts, tokens, openRegistration: true })
  let server: ChatServer | undefined
  return {
    start: async (port = 0): Promise<ChatServer> => {
      server = await startChatServer({ host: '127.0.0.1', port, login, accounts, messages, commitWindowMs: 0 })
      return server
    },
    stop: async (): Promise<void> => {
      await server?.close()
      server = undefined
    },
  }
}

t.test('register, message, receipts; a restart resumes with the stored token; a refused token falls back to the password', async (t) => {
  const w = world()
  const server = await w.start()
  t.teardown(() => w.stop())
  const stateDir = mkdtempSync(join(tmpdir(), 'pigeon-chat-client-'))
  t.teardown(() => rmSync(stateDir, { recursive: true, force: true }))
  const base = { host: '127.0.0.1', port: server.port, deviceName: 'test', stateDir } satisfies Partial<ChatClientOptions>

  const alice = watch(await ChatClient.start({ ...base, username: 'alice', password: 'alice-password', register: true }))
  const bob = watch(await ChatClient.start({ ...base, username: 'bob', password: 'bob-password', register: true }))
  t.ok(alice.connected)
  const bobGot: MessageEntry[] = []
  bob.on('message', (e) => bobGot.push(e))
  const receipts: string[] = []
  alice.on('receipt', (e) => receipts.push(e.status))

  await alice.contactAdd('bob')
  t.match(await alice.contactList(), [{ username: 'bob', online: true }])
  const sent = await alice.send({ kind: 'user', userId: bob.userId! }, 'hello bob')
  t.ok(sent.msgId > 0)
  await waitFor('bob receives', () => bobGot.find((e) => e.body === 'hello bob'))
  await waitFor('delivered receipt', () => receipts.includes('delivered') || undefined)
  bob.markRead([sent.msgId])
  bob.flushReads()
  await waitFor('read receipt', () => receipts.includes('read') || undefined)
  t.equal(alice.outboxSize, 0)
  const bobCursor = bob.cursor
  await alice.close()
  await bob.close()

  // Again, without a password: RESUME with the stored token; the cursor was kept.
  const bob2 = watch(await ChatClient.start({ ...base, username: 'bob' }))
  const resumed = await new Promise<boolean>((resolve) => {
    if (bob2.connected) resolve(true)
    bob2.once('connected', (i) => resolve(i.resumed))
  })
  t.ok(resumed)
  t.equal(bob2.cursor, bobCursor)
  await bob2.close()

  // A token the server refuses: LOGIN with the password instead (and the new token is stored).
  const dir = ChatClient.stateDirFor(stateDir, '127.0.0.1', server.port, 'bob')
  const s = FileClientState.open(dir)
  s.saveToken(new Uint8Array(81).fill(7))
  s.close()
  await t.rejects(ChatClient.start({ ...base, username: 'bob' }), AuthError, 'no password to fall back to')
  const bob3 = watch(await ChatClient.start({ ...base, username: 'bob', password: async () => 'bob-password' }))
  t.ok(bob3.connected)
  await bob3.close()
  const s2 = FileClientState.open(dir)
  t.not(Buffer.from(s2.load().token!).toString('hex'), '07'.repeat(81))
  s2.close()

  await t.rejects(ChatClient.start({ ...base, username: 'alice', password: 'wrong-password', state: undefined, stateDir: undefined }), AuthError)
})

t.test('a server restart is survived: the client reconnects, resumes, resends its outbox and syncs on', async (t) => {
  const w = world()
  const server = await w.start()
  t.teardown(() => w.stop())
  const port = server.port
  const opts = { host: '127.0.0.1', port, deviceName: 'test', reconnectDelayMs: 50, maxReconnectDelayMs: 200 }
  const alice = watch(await ChatClient.start({ ...opts, username: 'alice', password: 'alice-password', register: true }))
  const bob = watch(await ChatClient.start({ ...opts, username: 'bob', password: 'bob-password', register: true }))
  t.teardown(async () => {
    await alice.close()
    await bob.close()
  })
  const bobGot: string[] = []
  bob.on('message', (e) => bobGot.push(e.body))
  const events: string[] = []
  alice.on('disconnected', () => events.push('disconnected'))
  alice.on('connected', (i) => events.push(`connected resumed=${i.resumed}`))
  const to = { kind: 'user', userId: bob.userId! } as const

  await alice.send(to, 'one')
  await w.stop()
  await waitFor('alice notices', () => events.includes('disconnected') || undefined)
  t.notOk(alice.connected)
  const whileDown = alice.send(to, 'two')
  t.equal(alice.outboxSize, 1, 'waits in the outbox')

  await w.start(port)
  const info = await whileDown
  t.ok(info.msgId > 0)
  t.ok(events.includes('connected resumed=true'))
  await waitFor('bob gets both, once each', () => (bobGot.includes('two') ? true : undefined))
  t.same(bobGot, ['one', 'two'])
  await alice.send(to, 'three')
  await waitFor('three', () => (bobGot.includes('three') ? true : undefined))
  t.same(bobGot, ['one', 'two', 'three'])
})

t.test('close() sends the queued read receipts first and waits until the server has them', async (t) => {
  const w = world()
  const server = await w.start()
  t.teardown(() => w.stop())
  const opts = { host: '127.0.0.1', port: server.port, deviceName: 'test' }
  const alice = watch(await ChatClient.start({ ...opts, username: 'alice', password: 'alice-password', register: true }))
  const bob = watch(await ChatClient.start({ ...opts, username: 'bob', password: 'bob-password', register: true }))
  t.teardown(() => bob.close())
  const got: MessageEntry[] = []
  alice.on('message', (e) => got.push(e))
  const receipts: string[] = []
  bob.on('receipt', (e) => receipts.push(e.status))
  const sent = await bob.send({ kind: 'user', userId: alice.userId! }, 'read me')
  await waitFor('alice receives', () => got.find((e) => e.msgId === sent.msgId))
  await waitFor('delivered', () => receipts.includes('delivered') || undefined)
  alice.markRead([sent.msgId]) // batched for readBatchDelayMs: still queued when close() is called
  await alice.close()
  await waitFor('read receipt after close', () => receipts.includes('read') || undefined, 5_000)
  t.pass()
})
