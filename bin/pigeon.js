#!/usr/bin/env node
// `pigeon` runs pigeon from the TypeScript sources through tsx (no build step):
//   pigeon chat ...    the terminal chat client (see `pigeon chat --help`)
//   pigeon admin ...   account administration (see `pigeon admin --help`)
//   pigeon [options]   the server, options as for `npm start` (see `pigeon --help`)
import { fileURLToPath } from 'node:url'
import { register } from 'tsx/esm/api'

register()
const commands = { chat: '../src/client/chat-cli.ts', admin: '../src/server/admin.ts' }
const sub = process.argv[2]
if (sub !== undefined && Object.hasOwn(commands, sub)) {
  // Run the subcommand as if it were the main script: its own argv, its own isMain check.
  const script = fileURLToPath(new URL(commands[sub], import.meta.url))
  process.argv = [process.argv[0], script, ...process.argv.slice(3)]
  await import(commands[sub])
} else {
  await import('../src/server/main.ts')
}
