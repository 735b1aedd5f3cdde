/** The real command (bin/pigeon-lossy-link.js) as testers run it: errors, seed, forwarding, API, clean stop. */
import t from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { UdpPeer } from './helpers.js'

const BIN = fileURLToPath(new URL('../../bin/pigeon-lossy-link.js', import.meta.url))
const dir = mkdtempSync(join(tmpdir(), 'lossy-link-cli-'))

const run = async (args: string[]) => {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (c) => (stdout += c))
  child.stderr.on('data', (c) => (stderr += c))
  const [code] = await once(child, 'exit')
  return { code: code as number, stdout, stderr }
}

t.test('bad configuration: a clear message and exit code 2', async (t) => {
  const cases: Array<[string[], RegExp]> = [
    [['--listen', '127.0.0.1:0', '--upstream', '127.0.0.1:7000', '--loss', '5'], /--loss: "5" is not a probability; write a percentage like 5%/],
    [['--listen', '127.0.0.1:0', '--upstream', '127.0.0.1:7000', '--preset', '4g'], /unknown preset "4g"; expected one of wifi, lte, 3g/],
    [['--listen', '127.0.0.1:0'], /--upstream: required together with --listen/],
    [['--listen', '127.0.0.1:0', '--upstream', '127.0.0.1:7000', '--jitter', '10ms'], /up.delay.baseMs: required/],
    [['--listen', '127.0.0.1:0', '--upstream', '127.0.0.1:7000', '--typo'], /Unknown option '--typo'/],
  ]
  const badProfile = join(dir, 'bad.json')
  writeFileSync(badProfile, JSON.stringify({ preset: 'edge', down: { loss: { model: 'gilbert-elliott', p: 0.1, r: 7 } } }))
  cases.push([['--listen', '127.0.0.1:0', '--upstream', '127.0.0.1:7000', '--profile', badProfile], /bad\.json: down\.loss\.r: "?7"? is not a probability/])
  const results = await Promise.all(cases.map(([args]) => run(args)))
  results.forEach((r, i) => {
    t.equal(r.code, 2, `exit 2 for ${cases[i][0].slice(4).join(' ') || cases[i][0].join(' ')}`)
    t.match(r.stderr, /lossy-link: configuration error: /)
    t.match(r.stderr, cases[i][1])
  })
})

t.test('--help, --list-presets, --print-config exit 0', async (t) => {
  const [help, presets, printed] = await Promise.all([
    run(['--help']),
    run(['--list-presets']),
    run(['--print-config', '--preset', 'edge', '--seed', '3']),
  ])
  t.equal(help.code, 0)
  t.match(help.stdout, /usage: pigeon-lossy-link/)
  t.equal(presets.code, 0)
  for (const name of ['wifi', 'lte', '3g', 'edge', 'gprs', 'satellite', 'very-bad-network', 'subway', 'elevator']) t.match(presets.stdout, new RegExp(`^${name} `, 'm'))
  t.equal(printed.code, 0)
  const cfg = JSON.parse(printed.stdout)
  t.equal(cfg.seed, 3)
  t.equal(cfg.up.delay.baseMs, 440)
})

t.test('runs: prints the seed, forwards, serves the API, stops cleanly on SIGTERM', async (t) => {
  const server = await UdpPeer.open()
  server.echo = true
  const client = await UdpPeer.open()
  const child: ChildProcess = spawn(process.execPath, [BIN, '--listen', '127.0.0.1:0', '--upstream', `127.0.0.1:${server.port}`, '--seed', '42', '--duplicate', '100%', '--http', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => {
    child.kill('SIGKILL')
    server.close()
    client.close()
  })
  let stderr = ''
  child.stderr!.on('data', (c) => (stderr += c))
  const lines = createInterface({ input: child.stdout! })
  let seedLine: any
  let listening: any
  for await (const line of lines) {
    const j = JSON.parse(line)
    if (j.msg === 'seed') seedLine = j
    if (j.msg === 'listening') {
      listening = j
      break
    }
  }
  t.equal(seedLine.seed, 42, 'seed logged')
  t.match(stderr, /seed 42 \(replay with --seed 42\)/, 'seed printed')
  const udpPort = Number(listening.udp.split(':').pop())
  const httpPort = Number(listening.http.split(':').pop())
  client.send('twice', udpPort)
  // 100 % duplication both ways: 2 copies reach the server, 4 echoes come back.
  const got = [await client.next(), await client.next(), await client.next(), await client.next()]
  t.same(got.map((g) => g.msg.toString()), ['twice', 'twice', 'twice', 'twice'])
  const stats = (await (await fetch(`http://127.0.0.1:${httpPort}/stats`)).json()) as any
  t.equal(stats.up.duplicated, 1)
  t.equal(stats.down.duplicated, 2)
  const exit = once(child, 'exit')
  child.kill('SIGTERM')
  const [code] = await exit
  t.equal(code, 0, 'exit 0 on SIGTERM')
})
