import { summarizeProfiles } from './lib/profile.js';

/**
 * Summarizes `.cpuprofile` files (from `--cpu-prof`, e.g. `npm run bench:ingest -- --profile DIR`):
 * per thread, self time by area and by function.
 * Usage: node dist/bench/profile-summary.js <dir> [top]
 */
const [dir = '.', top = '25'] = process.argv.slice(2);
console.log(summarizeProfiles(dir, Number(top)).join('\n'));
