/**
 * Two network namespaces joined by a veth pair, with packet loss from nftables
 * (`numgen random mod 100 < N drop` on each side's output), so TCP and pigeon's UDP
 * cross exactly the same packet-level impairment. Needs root, `ip` and `nft`. This
 * kernel has no netem, so there is no delay here: only loss.
 */
import { spawnSync } from 'node:child_process'

export const NS_CLIENT = 'pigeon-llc'
export const NS_SERVER = 'pigeon-lls'
export const CLIENT_IP = '10.77.0.1'
export const SERVER_IP = '10.77.0.2'
const VETH_CLIENT = 'pgllc0'
const VETH_SERVER = 'pglls0'

const sh = (cmd: string, args: string[], input?: string): void => {
  const r = spawnSync(cmd, args, { input, encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr || r.error?.message || `exit ${r.status}`}`)
}

export const netnsAvailable = (): string | undefined => {
  if (process.getuid?.() !== 0) return 'needs root'
  for (const tool of ['ip', 'nft']) if (spawnSync(tool, ['-V']).error) return `${tool} not installed`
  return undefined
}

export const setupNetns = (): void => {
  teardownNetns()
  sh('ip', ['netns', 'add', NS_CLIENT])
  sh('ip', ['netns', 'add', NS_SERVER])
  sh('ip', ['link', 'add', VETH_CLIENT, 'type', 'veth', 'peer', 'name', VETH_SERVER])
  sh('ip', ['link', 'set', VETH_CLIENT, 'netns', NS_CLIENT])
  sh('ip', ['link', 'set', VETH_SERVER, 'netns', NS_SERVER])
  for (const [ns, dev, ip] of [[NS_CLIENT, VETH_CLIENT, CLIENT_IP], [NS_SERVER, VETH_SERVER, SERVER_IP]]) {
    sh('ip', ['-n', ns, 'addr', 'add', `${ip}/24`, 'dev', dev])
    sh('ip', ['-n', ns, 'link', 'set', dev, 'up'])
    sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up'])
    sh('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], `table inet lossy {\n  chain out {\n    type filter hook output priority 0;\n  }\n}\n`)
  }
}

/** Drop `percent` % of the IP packets leaving each namespace on the veth (both directions). */
export const setLossPercent = (percent: number): void => {
  for (const [ns, dev] of [[NS_CLIENT, VETH_CLIENT], [NS_SERVER, VETH_SERVER]]) {
    const rule = percent > 0 ? `add rule inet lossy out oifname "${dev}" numgen random mod 100 < ${Math.round(percent)} drop\n` : ''
    sh('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], `flush chain inet lossy out\n${rule}`)
  }
}

export const teardownNetns = (): void => {
  for (const ns of [NS_CLIENT, NS_SERVER]) spawnSync('ip', ['netns', 'del', ns])
}
