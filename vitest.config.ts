import { defineConfig } from 'vitest/config';

// Integration and system tests start real processes on ports and in network
// namespaces of their own; running files one at a time keeps them apart.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // stops processes a crashed test file left running (see the file)
    globalSetup: ['test/global-teardown.ts'],
    // fails a file that leaves sets or rules on the host (see the file)
    setupFiles: ['test/kernel-guard.ts'],
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    reporters: ['default'],
  },
});
