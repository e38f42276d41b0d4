import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Two cores: integration tests start brokers, databases and training runs of their own.
    pool: 'forks',
    maxWorkers: 2,
  },
});
