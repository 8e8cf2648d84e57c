import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Summarizes `.cpuprofile` files (from `--cpu-prof`): self time per function, top N per file.
 * Usage: node dist/bench/profile-summary.js <dir> [top]
 */
interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

const [dir = '.', top = '25'] = process.argv.slice(2);
for (const file of readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'))) {
  const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as { nodes: Node[]; samples: number[] };
  const total = profile.samples.length;
  const byFunction = new Map<string, number>();
  for (const node of profile.nodes) {
    const where = node.callFrame.url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*\/dist\//, '');
    const key = `${node.callFrame.functionName || '(anonymous)'} ${where}:${node.callFrame.lineNumber + 1}`;
    byFunction.set(key, (byFunction.get(key) ?? 0) + (node.hitCount ?? 0));
  }
  console.log(`\n## ${file}: ${total} samples`);
  for (const [key, hits] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, Number(top))) {
    console.log(`${((hits / total) * 100).toFixed(1).padStart(5)}%  ${key}`);
  }
}
