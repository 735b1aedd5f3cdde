import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { SettingsError, parseSettings, resolveDataDir, type Settings } from '../../src/server/settings.js'

const configFile = (content: string): string => {
  const path = join(mkdtempSync(join(tmpdir(), 'pigeon-settings-')), 'pigeon.json')
  writeFileSync(path, content)
  return path
}
const parse = (argv: string[], env: NodeJS.ProcessEnv = {}, tty = false): Settings => {
  const s = parseSettings(argv, env, tty)
  if (s === 'help') throw new Error('unexpected help')
  return s
}

t.test('defaults', async (t) => {
  const s = parse([])
  t.match(s, { port: 7700, dataDir: 'data', keyFile: join('data', 'server-key.json'), retry: true, insecure: false, maxMessageBytes: 4096, sendRatePerSecond: 50, commitWindowMs: 1, logPretty: false })
  t.equal(s.retentionDays, undefined)
  t.equal(parse([], {}, true).logPretty, true, 'pretty logs on a terminal')
  t.equal(parseSettings(['--help'], {}, false), 'help')
})

t.test('flags beat the environment, which beats the config file', async (t) => {
  const file = configFile(JSON.stringify({ port: 7001, 'data-dir': '/srv/pigeon', 'retention-days': 30, insecure: true, 'max-message-bytes': 1000 }))
  const fromFile = parse(['--config', file])
  t.match(fromFile, { port: 7001, dataDir: '/srv/pigeon', keyFile: join('/srv/pigeon', 'server-key.json'), retentionDays: 30, insecure: true, maxMessageBytes: 1000 })
  const withEnv = parse([], { PIGEON_CONFIG: file, PIGEON_PORT: '7002', PIGEON_RETENTION_DAYS: '7' })
  t.match(withEnv, { port: 7002, retentionDays: 7, dataDir: '/srv/pigeon' })
  const withFlags = parse(['--port', '7003', '--log-format', 'pretty'], { PIGEON_CONFIG: file, PIGEON_PORT: '7002' })
  t.match(withFlags, { port: 7003, logPretty: true })
})

t.test('bad values get clear errors', async (t) => {
  t.throws(() => parse(['--port', 'seventy']), /port: expected an integer from 0 to 65535/)
  t.throws(() => parse([], { PIGEON_SEND_RATE: '0' }), /send-rate: expected an integer/)
  t.throws(() => parse(['--log-format', 'xml']), /log-format: expected json or pretty/)
  t.throws(() => parse(['--config', configFile('{"prot": 1}')]), /unknown setting "prot"/)
  t.throws(() => parse(['--config', configFile('[1]')]), /expected a JSON object/)
  t.throws(() => parse(['--config', configFile('{not json')]), /config file .*pigeon\.json/)
  t.throws(() => parse(['--config', configFile('{"insecure": "maybe"}')]), /insecure: expected true or false/)
  t.throws(() => parse(['--bogus']), /Unknown option/)
})

t.test('empty or blank values are errors, not 0 or a default', async (t) => {
  t.throws(() => parse([], { PIGEON_PORT: '' }), /port: expected a value, got ""/, 'PIGEON_PORT= would listen on a random port')
  t.throws(() => parse(['--port', ' ']), /port: expected a value/)
  t.throws(() => parse([], { PIGEON_COMMIT_WINDOW_MS: '' }), /commit-window-ms: expected a value/, 'would be a 0 ms window')
  t.throws(() => parse(['--config', configFile('{"max-group-size": "  "}')]), /max-group-size: expected a value/)
  t.throws(() => parse([], { PIGEON_DATA_DIR: '' }), /data-dir: expected a value/)
  t.throws(() => parse(['--host', '']), /host: expected a value/)
  t.throws(() => parse([], { PIGEON_CONFIG: '' }), /config: expected a file name/)
  t.equal(parse([], { PIGEON_INSECURE: '' }).insecure, false, 'an empty boolean is still false')
})

t.test('integers are decimal digits only', async (t) => {
  for (const bad of ['0x1e14', '1e3', '7.7e3', ' 7700', '+7700', '-1', '7700.0']) {
    t.throws(() => parse([`--port=${bad}`]), /port: expected an integer from 0 to 65535/, bad)
  }
  t.throws(() => parse(['--config', configFile('{"port": 7.5}')]), /port: expected an integer/)
  t.equal(parse(['--port', '0']).port, 0)
  t.equal(parse(['--config', configFile('{"port": 7701}')]).port, 7701)
})

t.test('config keys are own option names, not inherited properties', async (t) => {
  for (const key of ['constructor', 'toString', 'hasOwnProperty', '__proto__']) {
    t.throws(() => parse(['--config', configFile(`{"${key}": 1, "port": 7701}`)]), new RegExp(`unknown setting "${key}"`), key)
  }
})

t.test('log level is one of the documented ones', async (t) => {
  t.throws(() => parse(['--log-level', 'bogus']), /log-level: expected one of trace, debug, info, warn, error, fatal, got "bogus"/)
  t.throws(() => parse([], { PIGEON_LOG_LEVEL: 'silent' }), /log-level: expected one of/)
  t.equal(parse([]).logLevel, 'info')
  for (const level of ['trace', 'debug', 'info', 'warn', 'error', 'fatal']) t.equal(parse(['--log-level', level]).logLevel, level)
})

t.test('resolveDataDir (the admin CLI) picks the data directory exactly as parseSettings', async (t) => {
  const file = configFile(JSON.stringify({ 'data-dir': '/srv/from-file', port: 7001 }))
  const cases: Array<{ flags: { 'data-dir'?: string; config?: string }; env: NodeJS.ProcessEnv; expected: string }> = [
    { flags: {}, env: {}, expected: 'data' },
    { flags: { config: file }, env: {}, expected: '/srv/from-file' },
    { flags: {}, env: { PIGEON_CONFIG: file }, expected: '/srv/from-file' },
    { flags: { config: file }, env: { PIGEON_DATA_DIR: '/srv/from-env' }, expected: '/srv/from-env' },
    { flags: { 'data-dir': '/srv/from-flag' }, env: { PIGEON_CONFIG: file, PIGEON_DATA_DIR: '/srv/from-env' }, expected: '/srv/from-flag' },
  ]
  for (const c of cases) {
    const argv = Object.entries(c.flags).flatMap(([name, value]) => [`--${name}`, value])
    t.equal(resolveDataDir({ flags: c.flags, env: c.env }), c.expected, argv.join(' ') || 'defaults')
    t.equal(parse(argv, c.env).dataDir, c.expected, `server: ${argv.join(' ') || 'defaults'}`)
  }
  const settingsError = (fn: () => unknown): unknown => {
    try {
      fn()
    } catch (err) {
      return err
    }
    return undefined
  }
  const badFile = settingsError(() => resolveDataDir({ flags: { config: configFile('{"prot": 1}') }, env: {} }))
  t.ok(badFile instanceof SettingsError && badFile.code === 'CONFIG_FILE', 'a bad config file is a typed error', { found: badFile })
  const blank = settingsError(() => resolveDataDir({ flags: {}, env: { PIGEON_DATA_DIR: ' ' } }))
  t.ok(blank instanceof SettingsError && blank.code === 'INVALID_SETTING', 'a blank PIGEON_DATA_DIR is a typed error', { found: blank })
})
