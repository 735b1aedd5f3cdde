/**
 * `npm run ping -- --host 127.0.0.1 --port 7700 --count 10`: round trips through the
 * echo server, one message at a time. Exit 0 when every message came back, 1 when the
 * server is unreachable or the session dies, 2 on bad arguments.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { existsSync, readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { parseKeyHex } from '../io/server-key.js'
import { PigeonClient, PigeonConnectError } from '../io/client.js'
import { formatAddress } from '../io/address.js'

const HELP = `Usage: npm run ping -- [options]

  --host HOST        server address (env PIGEON_HOST; default 127.0.0.1)
  --port PORT        server UDP port (env PIGEON_PORT; default 7700)
  --count N          messages to send (default 10)
  --size BYTES       message size, at least 8 (default 56)
  --stream ID        stream id (default 4: ordered; stream 0 carries login and
                     chat, the server echoes the other streams)
  --interval-ms MS   pause between messages (default 200)
  --timeout-ms MS    give up when the server is silent this long (default 5000)
  --server-key HEX   the server's public key to pin (env PIGEON_SERVER_KEY; default:
                     read from ./data/server-key.json when it exists, as written by
                     npm start on this machine)
  --insecure         talk to a server started with --insecure (no encryption)
  --user NAME        log in as NAME first (env PIGEON_USER); the password comes
                     from env PIGEON_PASSWORD (servers echo only after a login)
  --device NAME      device name for the login (default ping)
  --help             show this help`

interface Settings {
  host: string
  port: number
  count: number
  sizeBytes: number
  streamId: number
  intervalMs: number
  timeoutMs: number
  serverPublicKey: Uint8Array | undefined
  user: string | undefined
  deviceName: string
}

const parseSettings = (argv: string[]): Settings | 'help' => {
  const { values: v } = parseArgs({
    args: argv,
    options: {
      host: { type: 'string' },
      port: { type: 'string' },
      count: { type: 'string' },
      size: { type: 'string' },
      stream: { type: 'string' },
      'interval-ms': { type: 'string' },
      'timeout-ms': { type: 'string' },
      'server-key': { type: 'string' },
      insecure: { type: 'boolean' },
      user: { type: 'string' },
      device: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  })
  if (v.help === true) return 'help'
  const int = (name: string, text: string | undefined, fallback: number, min: number, max: number): number => {
    const n = Number(text ?? fallback)
    if (!Number.isInteger(n) || n < min || n > max) throw new Error(`--${name} must be an integer in [${min}, ${max}], got ${text}`)
    return n
  }
  return {
    host: v.host ?? process.env.PIGEON_HOST ?? '127.0.0.1',
    port: int('port', v.port ?? process.env.PIGEON_PORT, 7700, 1, 65_535),
    count: int('count', v.count, 10, 1, 1_000_000),
    sizeBytes: int('size', v.size, 56, 8, 1 << 20),
    streamId: int('stream', v.stream, 4, 1, 63),
    intervalMs: int('interval-ms', v['interval-ms'], 200, 0, 3_600_000),
    timeoutMs: int('timeout-ms', v['timeout-ms'], 5000, 1, 3_600_000),
    serverPublicKey: v.insecure === true ? undefined : serverKey(v['server-key'] ?? process.env.PIGEON_SERVER_KEY),
    user: v.user ?? process.env.PIGEON_USER,
    deviceName: v.device ?? 'ping',
  }
}

/** The pinned key: given, or the local server's key file when there is one. */
const serverKey = (hex: string | undefined): Uint8Array | undefined => {
  if (hex !== undefined) return parseKeyHex(hex, '--server-key')
  if (!existsSync(LOCAL_KEY_FILE)) return undefined
  const { publicKey } = JSON.parse(readFileSync(LOCAL_KEY_FILE, 'utf8')) as { publicKey?: string }
  return publicKey === undefined ? undefined : parseKeyHex(publicKey, `${LOCAL_KEY_FILE} publicKey`)
}
const LOCAL_KEY_FILE = 'data/server-key.json'

const fmt = (ms: number): string => ms.toFixed(3)

const percentile = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]

const run = async (s: Settings): Promise<number> => {
  const target = `${s.host}:${s.port}`
  const t0 = performance.now()
  let client: PigeonClient
  try {
    client = await PigeonClient.connect({
      host: s.host,
      port: s.port,
      connectTimeoutMs: s.timeoutMs,
      sessionConfig: { deadLinkTimeoutMs: s.timeoutMs },
      serverPublicKey: s.serverPublicKey,
    })
  } catch (err) {
    if (!(err instanceof PigeonConnectError)) throw err
    process.stderr.write(`pigeon ping: ${err.message}\n`)
    return 1
  }
  if (s.user !== undefined) {
    try {
      await client.login({ username: s.user, password: process.env.PIGEON_PASSWORD ?? '', deviceName: s.deviceName })
    } catch (err) {
      process.stderr.write(`pigeon ping: login as ${s.user} failed: ${(err as Error).message}\n`)
      await client.close()
      return 1
    }
  }
  const peer = formatAddress(client.remote)
  console.log(`PING ${target} (${peer}): ${s.count} messages of ${s.sizeBytes} bytes on stream ${s.streamId}, connected in ${fmt(performance.now() - t0)} ms`)

  // Each message carries its index; the echo resolves the waiter registered under it.
  const waiting = new Map<number, (rttMs: number) => void>()
  const sentAtMs = new Map<number, number>()
  let failure: string | undefined
  let fail: (reason: string) => void = () => {}
  client.on('message', (_streamId, _seq, data) => {
    if (data.length < 8) return
    const index = new DataView(data.buffer, data.byteOffset, data.byteLength).getUint32(0)
    const sent = sentAtMs.get(index)
    if (sent !== undefined) waiting.get(index)?.(performance.now() - sent)
  })
  client.on('closed', (info) => fail(info.byPeer ? `server closed the session: ${info.reason || `code ${info.code}`}` : info.reason || 'session closed'))

  const rttsMs: number[] = []
  const started = performance.now()
  for (let i = 0; i < s.count && failure === undefined; i++) {
    const payload = new Uint8Array(s.sizeBytes)
    new DataView(payload.buffer).setUint32(0, i)
    const echoed = new Promise<number | undefined>((resolve) => {
      waiting.set(i, resolve)
      fail = (reason) => {
        failure = reason
        resolve(undefined)
      }
    })
    sentAtMs.set(i, performance.now())
    client.send(s.streamId, payload)
    const rttMs = await echoed
    waiting.delete(i)
    if (rttMs === undefined) break
    rttsMs.push(rttMs)
    console.log(`${s.sizeBytes} bytes from ${peer}: index=${i} rtt=${fmt(rttMs)} ms`)
    if (i + 1 < s.count && s.intervalMs > 0) await sleep(s.intervalMs)
  }
  const elapsedMs = performance.now() - started
  const st = client.stats
  const allEchoed = failure === undefined && rttsMs.length === s.count
  if (failure === undefined) {
    fail = () => {} // our own close below is not a failure
    await client.close()
  } else process.stderr.write(`pigeon ping: ${failure}\n`)

  const sent = sentAtMs.size
  const lostPct = sent === 0 ? 0 : (100 * (sent - rttsMs.length)) / sent
  console.log(`--- ${target} pigeon ping statistics ---`)
  console.log(`${sent} sent, ${rttsMs.length} echoed, ${lostPct.toFixed(1)}% lost, time ${Math.round(elapsedMs)} ms`)
  if (rttsMs.length > 0) {
    const sorted = [...rttsMs].sort((a, b) => a - b)
    const avg = sorted.reduce((a, b) => a + b, 0) / sorted.length
    console.log(`rtt min/avg/p50/p99/max = ${[sorted[0], avg, percentile(sorted, 0.5), percentile(sorted, 0.99), sorted[sorted.length - 1]].map(fmt).join('/')} ms`)
  }
  const ss = st.session
  console.log(
    `session: srtt ${fmt(st.smoothedRttMs)} ms, packets sent ${ss.packetsSent} received ${ss.packetsReceived} lost ${ss.packetsLost}, fragments retransmitted ${ss.fragmentsRetransmitted}`,
  )
  return allEchoed ? 0 : 1
}

const main = async (): Promise<void> => {
  let settings
  try {
    settings = parseSettings(process.argv.slice(2))
  } catch (err) {
    process.stderr.write(`pigeon ping: ${(err as Error).message}\n\n${HELP}\n`)
    process.exit(2)
  }
  if (settings === 'help') {
    console.log(HELP)
    return
  }
  process.exitCode = await run(settings)
}

main().catch((err: unknown) => {
  process.stderr.write(`pigeon ping: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exit(1)
})
