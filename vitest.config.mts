import { defineConfig } from 'vitest/config'

// The brk source may only move the real program break on the process's main thread, so tests
// run in child processes ('forks'), never in worker threads. --expose-gc lets leak tests collect.
export default defineConfig({
  test: {
    pool: 'forks',
    execArgv: ['--expose-gc'],
    include: ['test/**/*.test.ts'],
    // Builds the test-only break hooks addon, which the package never contains.
    globalSetup: ['test/native/test-hooks-setup.ts'],
    testTimeout: 60_000,
  },
})
