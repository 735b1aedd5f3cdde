/**
 * The crash test. The chat server runs as a child process (`npm start`'s entry) on a
 * fixed port and data directory and is killed with SIGKILL at seeded random moments
 * (after 0-1,200 SEND_OKs from each start: the moments are counted in traffic, not
 * timed) while three ChatClients each send a numbered sequence to a fourth, keeping
 * several sends in flight; after each kill it is started again on the same port and
 * data directory. Resending is the client library's job.
 *
 * Afterwards the server keeps running until every sender's outbox is empty and the
 * receiver holds its whole inbox (as pigeon.db has it). Then: every message whose send()
 * resolved (SEND_OK: stored durably) was delivered, with the msgId of its SEND_OK; nothing
 * was delivered twice (by msgId, by body); each sender's messages arrived in sending order
 * and without gaps. Set PIGEON_CRASH_SEED to replay a kill schedule.
 */
import Database from 'better-sqlite3'
import { randomInt } from 'node:crypto'
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { ChatClient, type ChatClientOptions } from '../../src/client/chat-client.js'
import type { MessageEntry, SentInfo } from '../../src/client/chat-core.js'
import type { SessionConfig } from '../../src/core/session/config.js'
import { DATABASE_FILE } from '../../src/store/sqlite-account-store.js'
import { unusedPort } from '../io/helpers.js'
import { ServerProcess, addUsersToDataDir, passwordOf, seededRandom, tempDir, waitFor, watch } from './udp-helpers.js'

const SEED = process.env.PIGEON_CRASH_SEED !== undefined ? Number(process.env.PIGEON_CRASH_SEED) : randomInt(2 ** 31)
const KILLS = 20
/** Each server incarnation is killed after a seeded random number of SEND_OKs (0: once it listens). */
const ACKS_BEFORE_KILL = { min: 0, max: 1200 }
const SENDERS = ['s1', 's2', 's3']
const RECEIVER = 'rx'
/** Sends in flight per sender (topped up as each settles). */
const IN_FLIGHT = 8
/** The clients notice a dead server within about a second and retry quickly. */
const CLIENT_SESSION: Partial<SessionConfig> = { deadLinkTimeoutMs: 1_000, keepAliveIntervalMs: 300, initialRttMs: 50, maxPtoMs: 250 }

interface Sender {
  name: string
  client: ChatClient
  next: number
  inFlight: number
  /** Sequence number -> the SEND_OK, for every send() that resolved. */
  acked: Map<number, SentInfo>
  /** Sequence number -> the server incarnation whose SEND_OK resolved it. */
  ackedBy: Map<number, number>
  failed: Array<{ n: number; error: string }>
  /** SEND_OKs per server incarnation. */
  ackedDuring: number[]
  connects: number
}

const bodyOf = (sender: string, n: number): string => `${sender}:${n}`
const parseBody = (body: string): { sender: string; n: number } => {
  const [sender, n] = body.split(':')
  return { sender, n: Number(n) }
}

/** The receiver's inbox head as the database has it (read-only, next to the running server). */
const inboxHead = (dataDir: string, userId: number): number => {
  const db = new Database(join(dataDir, DATABASE_FILE), { readonly: true, fileMustExist: true })
  try {
    const row = db.prepare('SELECT version FROM inbox_heads WHERE user_id = ?').get(userId) as { version: number } | undefined
    return row?.version ?? 0
  } finally {
    db.close()
  }
}

t.test(`the server is SIGKILLed ${KILLS} times while clients send: nothing acknowledged is lost, nothing is duplicated`, { timeout: 120_000 }, async (t) => {
  const started = Date.now()
  t.comment(`crash test seed ${SEED} (replay with PIGEON_CRASH_SEED=${SEED})`)
  const random = seededRandom(SEED)
  const dataDir = tempDir('pigeon-crash-')
  const ids = await addUsersToDataDir(dataDir, [...SENDERS, RECEIVER])
  const port = await unusedPort('127.0.0.1')
  const args = ['--host', '127.0.0.1', '--port', String(port), '--data-dir', dataDir, '--send-rate', '1000000', '--log-level', 'warn']

  let incarnation = 0
  let server = new ServerProcess(args)
  const clients: ChatClient[] = []
  t.teardown(async () => {
    for (const c of clients) await c.close()
    await server.kill()
    rmSync(dataDir, { recursive: true, force: true })
  })
  const listening = await server.started()
  const serverPublicKey = new Uint8Array(Buffer.from(listening.publicKey ?? '', 'hex'))
  t.equal(serverPublicKey.length, 32, 'the server is encrypted; the clients pin its key')

  const options = (username: string): ChatClientOptions => ({
    host: '127.0.0.1',
    port,
    serverPublicKey,
    username,
    password: passwordOf(username),
    deviceName: 'crash-test',
    sessionConfig: CLIENT_SESSION,
    connectTimeoutMs: 3_000,
    reconnectDelayMs: 50,
    maxReconnectDelayMs: 300,
  })

  const rx = watch(await ChatClient.start(options(RECEIVER)))
  clients.push(rx)
  const received: MessageEntry[] = []
  rx.on('message', (e) => received.push(e))
  const protocolErrors: string[] = []
  rx.on('protocol_error', (err) => protocolErrors.push(err.message))
  let rxConnects = 0
  rx.on('connected', () => rxConnects++)
  const to = { kind: 'user' as const, userId: ids.get(RECEIVER)! }

  const senders: Sender[] = []
  for (const name of SENDERS) {
    const client = watch(await ChatClient.start(options(name)))
    clients.push(client)
    const s: Sender = { name, client, next: 0, inFlight: 0, acked: new Map(), ackedBy: new Map(), failed: [], ackedDuring: [], connects: 0 }
    client.on('connected', () => s.connects++)
    client.on('protocol_error', (err) => protocolErrors.push(`${name}: ${err.message}`))
    senders.push(s)
  }

  // Each sender keeps IN_FLIGHT sends outstanding, without waiting for any one of them.
  let producing = true
  const settled: Array<Promise<unknown>> = []
  const pump = (s: Sender): void => {
    while (producing && s.inFlight < IN_FLIGHT) {
      const n = s.next++
      s.inFlight++
      const during = incarnation
      const p = s.client.send(to, bodyOf(s.name, n)).then(
        (info) => {
          s.acked.set(n, info)
          s.ackedBy.set(n, incarnation)
          s.ackedDuring[incarnation] = (s.ackedDuring[incarnation] ?? 0) + 1
        },
        (err: unknown) => s.failed.push({ n, error: `${(err as { code?: string }).code ?? ''} ${(err as Error).message} (sent during server ${during})` }),
      )
      settled.push(
        p.finally(() => {
          s.inFlight--
          pump(s)
        }),
      )
    }
  }
  senders.forEach(pump)

  // Kill, restart, repeat.
  let kills = 0
  const uptimes: number[] = []
  /** When each server incarnation was killed. */
  const killedAt: number[] = []
  const ackedDuring = (i: number): number => senders.reduce((sum, s) => sum + (s.ackedDuring[i] ?? 0), 0)
  let upSinceMs = Date.now()
  for (let k = 0; k < KILLS; k++) {
    const acks = ACKS_BEFORE_KILL.min + Math.floor(random() * (ACKS_BEFORE_KILL.max - ACKS_BEFORE_KILL.min + 1))
    await waitFor(() => `${acks} SEND_OKs from server ${incarnation} (${ackedDuring(incarnation)} so far)`, () => ackedDuring(incarnation) >= acks, 30_000)
    uptimes.push(Date.now() - upSinceMs)
    killedAt.push(Date.now())
    const exit = await server.kill()
    if (exit.signal === 'SIGKILL') kills++
    else t.fail(`server ${incarnation} exited on its own before the kill: code ${exit.code}, ${server.stderr}`)
    incarnation++
    server = new ServerProcess(args)
    const line = await server.started()
    upSinceMs = Date.now()
    if (line.port !== port || line.publicKey !== listening.publicKey) t.fail(`restart ${incarnation} listens on ${line.port} with key ${line.publicKey}`)
  }
  const killPhaseMs = Date.now() - started
  const ackedDuringKills = senders.reduce((sum, s) => sum + s.acked.size, 0)

  // Let the last server run: no new messages; every outbox drains, the receiver catches up.
  producing = false
  await waitFor(
    () => `every outbox to drain (${senders.map((s) => `${s.name}: ${s.client.outboxSize} waiting, connected ${s.client.connected}`).join('; ')})`,
    () => senders.every((s) => s.client.outboxSize === 0 && s.inFlight === 0),
    30_000,
  )
  await Promise.all(settled)
  const rxId = ids.get(RECEIVER)!
  const head = await waitFor(
    () => `the receiver to reach its inbox head (cursor ${rx.cursor}, head ${inboxHead(dataDir, rxId)})`,
    () => {
      const h = inboxHead(dataDir, rxId)
      return rx.connected && rx.cursor === h ? h : undefined
    },
    30_000,
  )

  const totalSent = senders.reduce((sum, s) => sum + s.next, 0)
  const totalAcked = senders.reduce((sum, s) => sum + s.acked.size, 0)
  // Stored by a server that was then killed before its SEND_OK got out; a later server answered from the store.
  const storedBeforeAKill = senders.reduce((sum, s) => sum + [...s.acked].filter(([n, info]) => {
    const by = s.ackedBy.get(n)!
    return by > 0 && info.sentAtMs < killedAt[by - 1]
  }).length, 0)
  t.comment(
    `seed ${SEED}: ${kills} kills in ${killPhaseMs} ms (server up ${uptimes.join(', ')} ms); ${totalSent} messages sent, ` +
      `${ackedDuringKills} acknowledged during the kills, ${totalAcked} in all, ${storedBeforeAKill} of them stored by a server killed before it answered; ` +
      `receiver inbox head ${head}; logins/reconnects ${senders.map((s) => `${s.name} ${s.connects}`).join(', ')}, ${RECEIVER} ${rxConnects}; ` +
      `SEND_OKs per server: ${Array.from({ length: incarnation + 1 }, (_, i) => ackedDuring(i)).join(' ')}`,
  )
  t.ok(kills >= KILLS, `the server was SIGKILLed ${kills} times (at least ${KILLS})`)
  t.ok(ackedDuringKills > 0, `messages were acknowledged while the server kept dying (${ackedDuringKills})`)
  t.same(senders.flatMap((s) => s.failed.map((f) => `${s.name}:${f.n} ${f.error}`)), [], 'no send() was refused')
  t.same(protocolErrors, [], 'no protocol errors')

  const byMsgId = new Map<number, MessageEntry>()
  const byBody = new Map<string, number>()
  for (const e of received) {
    byMsgId.set(e.msgId, e)
    byBody.set(e.body, (byBody.get(e.body) ?? 0) + 1)
  }
  t.equal(byMsgId.size, received.length, `no msgId delivered twice (${received.length} delivered)`)
  t.same([...byBody].filter(([, count]) => count > 1), [], 'no body delivered twice')
  t.equal(received.length, totalSent, 'every message sent was delivered (all were acknowledged in the end)')

  for (const s of senders) {
    const lost = [...s.acked].filter(([n, info]) => byMsgId.get(info.msgId)?.body !== bodyOf(s.name, n))
    t.same(lost.map(([n]) => n), [], `${s.name}: every acknowledged message was delivered with the msgId of its SEND_OK (${s.acked.size} acknowledged)`)
    const sequence = received.filter((e) => e.fromUserId === ids.get(s.name)).map((e) => parseBody(e.body))
    t.ok(sequence.every((m) => m.sender === s.name), `${s.name}: bodies name their sender`)
    t.same(sequence.map((m) => m.n), Array.from({ length: s.next }, (_, i) => i), `${s.name}: all ${s.next} delivered in sending order, no gaps`)
  }
  t.comment(`crash test took ${Date.now() - started} ms`)
})
