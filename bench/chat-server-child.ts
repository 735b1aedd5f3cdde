/**
 * The chat server under test, in its own process (started by bench/chat-throughput.ts and
 * bench/chat-capacity.ts through bench/chat-common.ts): startChatServer over the durable
 * SQLite stores (WAL, synchronous FULL) in the given data directory, encryption on, with
 * the handshake limit and messaging limits the parent passes. Answers 'start', 'stats'
 * (memory, CPU, sessions, counters; optionally after forced GC) and 'stop' over IPC.
 */
import { generateStaticKeyPair } from '../src/core/crypto/noise-nk.js'
import { CryptoRng } from '../src/io/crypto-rng.js'
import { createLogger } from '../src/io/logger.js'
import { nodeCryptoBackend } from '../src/io/node-crypto-backend.js'
import { LoginService } from '../src/server/accounts/login.js'
import { SessionTokens, loadOrCreateTokenSecret } from '../src/server/accounts/tokens.js'
import { type ChatServer, type ChatServerOptions, startChatServer } from '../src/server/chat-server.js'
import type { MessagingLimits } from '../src/server/messaging/limits.js'
import { type SqliteStores, openSqliteStores } from '../src/store/sqlite-message-store.js'
import { type ServerStats, serve } from './chat-common.js'

export interface ServerStartArgs {
  dataDir: string
  handshakeLimit: NonNullable<ChatServerOptions['handshakeLimit']>
  limits?: Partial<MessagingLimits>
  commitWindowMs?: number
}

let stores: SqliteStores | undefined
let server: ChatServer | undefined

const gc = (): void => {
  const g = (globalThis as { gc?: () => void }).gc
  if (g === undefined) return
  for (let i = 0; i < 3; i++) g()
}

const numbers = (o: object): Record<string, number> =>
  Object.fromEntries(Object.entries(o).filter(([, v]) => typeof v === 'number')) as Record<string, number>

const stats = (args: { gc?: boolean }): ServerStats => {
  if (args.gc === true) gc()
  const mem = process.memoryUsage()
  const cpu = process.cpuUsage()
  return {
    rssBytes: mem.rss,
    heapUsedBytes: mem.heapUsed,
    heapTotalBytes: mem.heapTotal,
    externalBytes: mem.external,
    arrayBuffersBytes: mem.arrayBuffers,
    cpuUserUs: cpu.user,
    cpuSystemUs: cpu.system,
    sessions: server?.endpoint.core.sessionCount ?? 0,
    onlineUsers: server?.messaging.onlineUsers ?? 0,
    messaging: numbers(server?.messaging.stats ?? {}),
    commit: numbers(server?.commit.stats ?? {}),
    io: numbers(server?.endpoint.stats ?? {}),
    core: numbers(server?.endpoint.core.stats ?? {}),
  }
}

serve(
  {
    start: async (a: ServerStartArgs) => {
      const keyPair = generateStaticKeyPair({ rng: new CryptoRng(), backend: nodeCryptoBackend })
      stores = openSqliteStores({ dataDir: a.dataDir })
      const tokens = new SessionTokens({ store: stores.accounts, secret: loadOrCreateTokenSecret(a.dataDir) })
      const login = new LoginService({ store: stores.accounts, tokens })
      server = await startChatServer({
        host: '127.0.0.1',
        port: 0,
        login,
        accounts: stores.accounts,
        messages: stores.messages,
        logger: createLogger({ name: 'bench-server', level: 'warn' }),
        security: { staticKeyPair: keyPair },
        handshakeLimit: a.handshakeLimit,
        limits: a.limits,
        commitWindowMs: a.commitWindowMs,
      })
      return { port: server.port, publicKeyHex: Buffer.from(keyPair.publicKey).toString('hex'), pid: process.pid }
    },
    stats,
  },
  async () => {
    await server?.close()
    await stores?.close()
  },
)
