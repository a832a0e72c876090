import { defineConfig } from 'vitest/config';

// Integration and system tests start real processes on ports and in network
// namespaces of their own; running files one at a time keeps them apart.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    reporters: ['default'],
  },
});
