import t from 'tap'
import { formatKeyLog, KEY_LOG_CLIENT_LABEL, KEY_LOG_SERVER_LABEL, parseKeyLog } from '../../src/core/crypto/key-log.js'
import type { SessionKeys } from '../../src/core/crypto/noise-nk.js'
import { hex } from './helpers.js'

const keys: SessionKeys = {
  clientToServer: new Uint8Array(32).fill(0x11),
  serverToClient: new Uint8Array(32).fill(0x22),
  handshakeHash: new Uint8Array(32).fill(0x33),
  clientEphemeralPublicKey: new Uint8Array(32).fill(0xab),
}

t.test('two lines, id = the client ephemeral key, secrets in lowercase hex', async (t) => {
  const text = formatKeyLog({ keys })
  t.equal(text, `${KEY_LOG_CLIENT_LABEL} ${'ab'.repeat(32)} ${'11'.repeat(32)}\n${KEY_LOG_SERVER_LABEL} ${'ab'.repeat(32)} ${'22'.repeat(32)}\n`)
  t.match(formatKeyLog({ keys, id: new Uint8Array([1, 2, 0xff]) }), /^PIGEON_CLIENT_TRAFFIC_SECRET 0102ff 1{64}\n/)
})

t.test('parse round trip; comments, junk and unknown labels are skipped', async (t) => {
  const other = { ...keys, clientEphemeralPublicKey: new Uint8Array(32).fill(0xcd), clientToServer: new Uint8Array(32).fill(0x44) }
  const text = `# pigeon key log\n\n${formatKeyLog({ keys })}CLIENT_RANDOM aa bb\nPIGEON_CLIENT_TRAFFIC_SECRET zz 11\nPIGEON_SERVER_TRAFFIC_SECRET ${'cd'.repeat(32)} 1234\n${formatKeyLog({ keys: other }).toUpperCase()}`
  const map = parseKeyLog(text)
  t.equal(map.size, 2)
  const a = map.get('ab'.repeat(32))
  t.equal(a?.clientToServer && hex(a.clientToServer), '11'.repeat(32))
  t.equal(a?.serverToClient && hex(a.serverToClient), '22'.repeat(32))
  const b = map.get('cd'.repeat(32))
  t.equal(b?.clientToServer && hex(b.clientToServer), '44'.repeat(32), 'uppercase hex accepted')
})
