/**
 * Helpers for the messaging tests over real UDP (e2e-udp.test.ts, crash.test.ts):
 * an in-process encrypted chat server on SQLite stores in a temporary data directory,
 * users created the way `npm run admin -- add-user` creates them (but with cheap scrypt
 * parameters), ChatClients that record what they receive, a chat server as a child
 * process (`npm start`'s entry), and waiting for conditions, event-driven, with a deadline.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { ChatClient, type ChatClientOptions } from '../../src/client/chat-client.js'
import type { GroupEntry, MessageEntry, ReceiptEntry, SentInfo } from '../../src/client/chat-core.js'
import { type KeyPair, generateStaticKeyPair } from '../../src/core/crypto/noise-nk.js'
import { CryptoRng } from '../../src/io/crypto-rng.js'
import { nodeCryptoBackend } from '../../src/io/node-crypto-backend.js'
import { LoginService } from '../../src/server/accounts/login.js'
import { type ScryptParams, hashPassword } from '../../src/server/accounts/password.js'
import { SessionTokens, loadOrCreateTokenSecret } from '../../src/server/accounts/tokens.js'
import { type ChatServer, type ChatServerOptions, startChatServer } from '../../src/server/chat-server.js'
import type { AccountStore } from '../../src/store/account-store.js'
import { SqliteAccountStore } from '../../src/store/sqlite-account-store.js'
import { SQLITE_MIGRATIONS } from '../../src/store/sqlite-message-schema.js'
import { type SqliteStores, openSqliteStores } from '../../src/store/sqlite-message-store.js'

import { waitFor, watch } from '../helpers/wait.js'

export { pulse, waitFor, watch } from '../helpers/wait.js'

export const ROOT = fileURLToPath(new URL('../..', import.meta.url))

/** Cheap enough for tests; hashes carry their parameters, so servers with stronger defaults still verify them. */
export const CHEAP_SCRYPT: ScryptParams = { N: 1 << 10, r: 8, p: 1 }

export const passwordOf = (username: string): string => `${username}-password`

/** What `admin add-user NAME` does, with cheap scrypt parameters. Returns the user id. */
export const addUser = async (accounts: AccountStore, username: string): Promise<number> => {
  const user = await accounts.createUser({ username, passwordHash: await hashPassword(passwordOf(username), CHEAP_SCRYPT), nowMs: Date.now() })
  return user.userId
}

/** Users created in a data directory no server has open (the admin CLI's way: the full schema). */
export const addUsersToDataDir = async (dataDir: string, usernames: string[]): Promise<Map<string, number>> => {
  const store = new SqliteAccountStore({ dataDir, migrations: SQLITE_MIGRATIONS })
  try {
    const ids = new Map<string, number>()
    for (const name of usernames) ids.set(name, await addUser(store, name))
    return ids
  } finally {
    await store.close()
  }
}

export const tempDir = (prefix: string): string => mkdtempSync(join(tmpdir(), prefix))

/** Settles (never rejects) with `p`'s error, or throws if it resolved. */
export const rejection = async (p: Promise<unknown>): Promise<Error & { code?: string }> => {
  try {
    await p
  } catch (err) {
    return err as Error & { code?: string }
  }
  throw new Error('expected a rejection, but it resolved')
}

// --- in-process server -----------------------------------------------------------------

export interface World {
  host: string
  dataDir: string
  keyPair: KeyPair
  stores: SqliteStores
  login: LoginService
  server: ChatServer
  port: number
  /** Create a user (admin path, cheap scrypt). */
  addUser(username: string): Promise<number>
  /** Client options for `username` on this world's server (the server's key pinned). */
  clientOptions(username: string, deviceName: string, extra?: Partial<ChatClientOptions>): ChatClientOptions
  /** Stop the server and close the stores, then start both again on the same port and data dir. */
  restart(): Promise<void>
  close(): Promise<void>
}

export const startWorld = async (host = '127.0.0.1', extra: Partial<ChatServerOptions> = {}): Promise<World> => {
  const dataDir = tempDir('pigeon-e2e-')
  const keyPair = generateStaticKeyPair({ rng: new CryptoRng(), backend: nodeCryptoBackend })
  const open = async (port: number): Promise<{ stores: SqliteStores; login: LoginService; server: ChatServer }> => {
    const stores = openSqliteStores({ dataDir })
    const tokens = new SessionTokens({ store: stores.accounts, secret: loadOrCreateTokenSecret(dataDir) })
    // Every client of a test logs in from one address: lift the per-address login limit.
    const login = new LoginService({ store: stores.accounts, tokens, scryptParams: CHEAP_SCRYPT, perAddress: { capacity: 10_000, refillIntervalMs: 1, maxKeys: 1000 } })
    const server = await startChatServer({ host, port, login, accounts: stores.accounts, messages: stores.messages, security: { staticKeyPair: keyPair }, ...extra })
    watch(server.endpoint)
    return { stores, login, server }
  }
  let current = await open(0)
  const port = current.server.port
  let closed = false
  const world: World = {
    host,
    dataDir,
    keyPair,
    port,
    get stores() {
      return current.stores
    },
    get login() {
      return current.login
    },
    get server() {
      return current.server
    },
    addUser: (username) => addUser(current.stores.accounts, username),
    clientOptions: (username, deviceName, more = {}) => ({
      host,
      port,
      serverPublicKey: keyPair.publicKey,
      username,
      password: passwordOf(username),
      deviceName,
      reconnectDelayMs: 50,
      maxReconnectDelayMs: 250,
      connectTimeoutMs: 5_000,
      ...more,
    }),
    restart: async () => {
      await current.server.close()
      await current.stores.close()
      current = await open(port)
    },
    close: async () => {
      if (closed) return
      closed = true
      await current.server.close()
      await current.stores.close()
      rmSync(dataDir, { recursive: true, force: true })
    },
  }
  return world
}

// --- clients that record what they receive -------------------------------------------

/** A ChatClient and everything it has received, in arrival order. */
export interface Device {
  client: ChatClient
  username: string
  deviceName: string
  messages: MessageEntry[]
  receipts: ReceiptEntry[]
  groups: GroupEntry[]
  sent: SentInfo[]
  protocolErrors: Error[]
}

export const record = (client: ChatClient, deviceName: string): Device => {
  const d: Device = { client: watch(client), username: client.username, deviceName, messages: [], receipts: [], groups: [], sent: [], protocolErrors: [] }
  client.on('message', (e) => d.messages.push(e))
  client.on('receipt', (e) => d.receipts.push(e))
  client.on('group', (e) => d.groups.push(e))
  client.on('sent', (s) => d.sent.push(s))
  client.on('protocol_error', (err) => d.protocolErrors.push(err))
  return d
}

export const startDevice = async (opts: ChatClientOptions): Promise<Device> => record(await ChatClient.start(opts), opts.deviceName)

/** Bodies of the messages `d` received from `fromUserId`, in arrival order. */
export const bodiesFrom = (d: Device, fromUserId: number): string[] => d.messages.filter((m) => m.fromUserId === fromUserId).map((m) => m.body)

export const range = (prefix: string, n: number): string[] => Array.from({ length: n }, (_, i) => `${prefix}-${i}`)

/** Wait until the device holds its user's whole inbox as the store has it now (re-read on every check). */
export const syncedToHead = (world: World, d: Device, timeoutMs = 15_000): Promise<number> =>
  waitFor(
    () => `${d.username}/${d.deviceName} to sync (cursor ${d.client.cursor})`,
    async () => {
      const head = await world.stores.messages.inboxHead(d.client.userId!)
      return d.client.cursor === head && d.client.connected ? head : undefined
    },
    timeoutMs,
  )

// --- the server as a child process ------------------------------------------------------

export interface LogLine {
  msg: string
  port?: number
  publicKey?: string
  [key: string]: unknown
}

/** `npm start`'s entry as a child process; `started` resolves on its "listening" line. */
export class ServerProcess {
  readonly child: ChildProcess
  readonly lines: LogLine[] = []
  stderr = ''
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  private listening: Promise<LogLine>

  constructor(args: string[]) {
    this.child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/server/main.ts'), ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
    this.exited = once(this.child, 'exit').then(([code, signal]) => ({ code: code as number | null, signal: signal as NodeJS.Signals | null }))
    this.child.stderr!.on('data', (d: Buffer) => {
      this.stderr = (this.stderr + d.toString()).slice(-8000)
    })
    this.listening = new Promise<LogLine>((resolve, reject) => {
      createInterface({ input: this.child.stdout! }).on('line', (line) => {
        let j: LogLine
        try {
          j = JSON.parse(line) as LogLine
        } catch {
          return
        }
        this.lines.push(j)
        if (this.lines.length > 200) this.lines.shift()
        if (j.msg === 'listening') resolve(j)
      })
      void this.exited.then((e) => reject(new Error(`server exited (code ${e.code}, signal ${e.signal}) before listening: ${this.stderr}`)))
    })
    this.listening.catch(() => {})
  }

  /** The "listening" line, or a rejection when the process exits first or `timeoutMs` passes. */
  started(timeoutMs = 20_000): Promise<LogLine> {
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`server not listening after ${timeoutMs} ms: ${this.stderr}`)), timeoutMs)
    })
    return Promise.race([this.listening, timeout]).finally(() => clearTimeout(timer))
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null
  }

  /** SIGKILL (no shutdown work at all) and wait for the exit. */
  async kill(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.running) this.child.kill('SIGKILL')
    return this.exited
  }
}

/** A seeded PRNG (mulberry32): the same seed gives the same kill schedule. */
export const seededRandom = (seed: number): (() => number) => {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let x = a
    x = Math.imul(x ^ (x >>> 15), x | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}
