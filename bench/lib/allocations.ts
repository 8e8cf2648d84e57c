import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { area, where } from './profile.js';

/** The node argument that has a server sample its allocations into `dir` (allocation-sampler.ts). */
export function allocationSamplerArgs(dir: string): string[] {
  const sampler = new URL('./allocation-sampler.js', import.meta.url);
  sampler.searchParams.set('out', dir);
  return ['--import', sampler.href];
}

interface HeapNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: HeapNode[];
}

/**
 * Summaries of the sampled allocations in `dir` (one file per thread), in bytes per message:
 * by area (package, or directory of our code) and by function, where the bytes were allocated.
 * `messages` is what the server acknowledged over the same span (its whole run).
 */
export function summarizeAllocations(dir: string, messages: number, n = 15): string[] {
  const lines: string[] = [];
  for (const file of readdirSync(dir)
    .filter((f) => f.endsWith('.heapprofile'))
    .sort()) {
    const head = (JSON.parse(readFileSync(join(dir, file), 'utf8')) as { head: HeapNode }).head;
    const byArea = new Map<string, number>();
    const byFunction = new Map<string, number>();
    let total = 0;
    const visit = (node: HeapNode): void => {
      if (node.selfSize > 0) {
        total += node.selfSize;
        byArea.set(area(node), (byArea.get(area(node)) ?? 0) + node.selfSize);
        byFunction.set(where(node), (byFunction.get(where(node)) ?? 0) + node.selfSize);
      }
      for (const child of node.children) visit(child);
    };
    visit(head);
    const perMessage = (bytes: number) =>
      `${Math.round(bytes / messages)
        .toLocaleString('en-US')
        .padStart(7)} B`;
    const top = (counts: Map<string, number>) =>
      [...counts]
        .sort((a, b) => b[1] - a[1])
        .slice(0, n)
        .map(([key, bytes]) => `${perMessage(bytes)}  ${key}`);
    const thread = Number(/\.(\d+)\.heapprofile$/.exec(file)?.[1] ?? 0);
    lines.push('', `## ${file}: ${thread === 0 ? 'main thread' : `worker thread ${thread}`}, ${perMessage(total)} allocated per acknowledged message (${messages.toLocaleString('en-US')})`);
    lines.push('by area:', ...top(byArea), 'by function:', ...top(byFunction));
  }
  return lines;
}

/** For `node dist/bench/lib/allocations.js DIR MESSAGES`: summarizes an earlier run's files. */
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [dir = '.', messages = '1'] = process.argv.slice(2);
  console.log(summarizeAllocations(dir, Number(messages)).join('\n'));
}
