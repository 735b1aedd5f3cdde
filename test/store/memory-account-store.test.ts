import t from 'tap'
import { MemoryAccountStore } from '../../src/store/memory-account-store.js'
import { accountStoreConformance } from './conformance.js'

accountStoreConformance(t, async () => {
  const store = new MemoryAccountStore()
  return { store, cleanup: () => store.close() }
})
