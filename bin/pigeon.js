#!/usr/bin/env node
// `pigeon` starts the server from the TypeScript sources through tsx (no build step);
// options as for `npm start` (see `pigeon --help`).
import { register } from 'tsx/esm/api'

register()
await import('../src/server/main.ts')
