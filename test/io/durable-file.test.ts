import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { createFileOnce } from '../../src/io/durable-file.js'
import { loadOrCreateServerKey } from '../../src/io/server-key.js'
import { loadOrCreateTokenSecret } from '../../src/server/accounts/tokens.js'

const tempDir = (t: { teardown: (fn: () => void) => void }): string => {
  const dir = mkdtempSync(join(tmpdir(), 'pigeon-durable-file-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

t.test('createFileOnce writes the whole file under its name once, leaves no temporary file, and never replaces one', async (t) => {
  const dir = join(tempDir(t), 'new', 'dir')
  const path = join(dir, 'key')
  t.equal(createFileOnce({ path, data: 'first', mode: 0o600 }), true)
  t.equal(createFileOnce({ path, data: 'second', mode: 0o600 }), false, 'it existed: nothing written')
  t.equal(readFileSync(path, 'utf8'), 'first')
  t.equal(statSync(path).mode & 0o777, 0o600)
  t.equal(statSync(dir).mode & 0o777, 0o700, 'a directory it creates is owner-only')
  t.same(readdirSync(dir), ['key'], 'no temporary file left')
})

t.test('the server key and the token secret: created once, then read back; a key file holding null is a clear error', async (t) => {
  const dir = tempDir(t)
  const first = loadOrCreateServerKey(join(dir, 'server-key.json'))
  const again = loadOrCreateServerKey(join(dir, 'server-key.json'))
  t.same([first.created, again.created], [true, false])
  t.same(again.keyPair.publicKey, first.keyPair.publicKey)
  t.same(loadOrCreateTokenSecret(dir), loadOrCreateTokenSecret(dir))
  const nullKey = join(dir, 'null-key.json')
  createFileOnce({ path: nullKey, data: 'null', mode: 0o600 })
  t.throws(() => loadOrCreateServerKey(nullKey), /server key file .*null-key\.json has no "privateKey"/)
  t.throws(() => loadOrCreateServerKey(dir), /server key file .*: EISDIR/, 'a directory given as the key file: named, with the reason')
})
