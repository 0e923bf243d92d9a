import { defineConfig } from 'vitest/config';

// Only the fuzz loops; `npm test` never runs them (they run for a set time).
export default defineConfig({
  test: {
    include: ['test/fuzz/**/*.fuzz.ts'],
    pool: 'forks',
  },
});
