#!/usr/bin/env node
// Runs the TypeScript sources directly through tsx; no build step.
import { register } from 'tsx/esm/api'

register()
const { main } = await import('../tools/lossy-link/cli.ts')
process.exit(await main(process.argv.slice(2)))
