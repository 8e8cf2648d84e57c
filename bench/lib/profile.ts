import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Summaries of `.cpuprofile` files (written by `node --cpu-prof`, one per thread: the file name
 * ends in `<pid>.<thread id>.<n>.cpuprofile`, thread 0 being the main thread): where the
 * samples fell, by area (package, or directory of our code) and by function, self time; and
 * our own functions (core, plugins, adapters) by total time, what each stage costs with its callees.
 */
interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  startTime: number;
  endTime: number;
}

/** Where a function lives: a package, our top-level directory (`core`, `plugins/mqtt`…), a node internal module, or a V8 pseudo-frame. */
export function area(node: Pick<ProfileNode, 'callFrame'>): string {
  const { url, functionName } = node.callFrame;
  if (!url) return functionName.startsWith('(') ? functionName : '(native)';
  const pkg = /node_modules\/((@[^/]+\/)?[^/]+)/.exec(url)?.[1];
  if (pkg) return pkg;
  const ours = /\/dist\/((?:plugins|adapters)\/[^/]+|[^/]+)\//.exec(url)?.[1];
  if (ours) return ours;
  const internal = /^node:(internal\/[^/]+|[^/]+)/.exec(url)?.[1];
  return internal ? `node:${internal.replace(/\.js$/, '')}` : url;
}

export function where(node: Pick<ProfileNode, 'callFrame'>): string {
  const { functionName, url, lineNumber } = node.callFrame;
  const file = url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*\/dist\//, '');
  return `${functionName || '(anonymous)'}${file ? ` ${file}:${lineNumber + 1}` : ''}`;
}

function top(counts: Map<string, number>, total: number, n: number): string[] {
  return [...counts]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([key, hits]) => `${((hits / total) * 100).toFixed(1).padStart(6)}%  ${key}`);
}

/** One summary per profile file in `dir`: samples by area, then the `n` functions with the most self time. */
export function summarizeProfiles(dir: string, n = 20): string[] {
  const lines: string[] = [];
  for (const file of readdirSync(dir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .sort()) {
    const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as Profile;
    const thread = Number(/\.(\d+)\.\d+\.cpuprofile$/.exec(file)?.[1] ?? 0);
    const total = profile.samples.length;
    const byArea = new Map<string, number>();
    const byFunction = new Map<string, number>();
    let idle = 0;
    for (const node of profile.nodes) {
      const hits = node.hitCount ?? 0;
      if (node.callFrame.functionName === '(idle)') idle += hits;
      byArea.set(area(node), (byArea.get(area(node)) ?? 0) + hits);
      byFunction.set(where(node), (byFunction.get(where(node)) ?? 0) + hits);
    }
    // Total time (self and callees) of our own functions: which stage of the pipeline costs what.
    const parent = new Map<number, ProfileNode>();
    for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node);
    const inclusive = new Map<string, number>();
    for (const node of profile.nodes) {
      if (!node.hitCount) continue;
      const seen = new Set<string>();
      for (let n: ProfileNode | undefined = node; n; n = parent.get(n.id)) {
        if (/\/dist\/(core|plugins|adapters)\//.test(n.callFrame.url)) seen.add(where(n));
      }
      for (const key of seen) inclusive.set(key, (inclusive.get(key) ?? 0) + node.hitCount);
    }
    const seconds = (profile.endTime - profile.startTime) / 1e6;
    lines.push('', `## ${file}: ${thread === 0 ? 'main thread' : `worker thread ${thread}`}, ${seconds.toFixed(1)} s, ${total} samples, ${((1 - idle / total) * 100).toFixed(0)}% busy`);
    lines.push('by area (self time, share of all samples):', ...top(byArea, total, 12));
    lines.push(`top ${n} functions (self time):`, ...top(byFunction, total, n));
    if (inclusive.size) lines.push(`top ${n} of our functions by total time (self and callees):`, ...top(inclusive, total, n));
  }
  return lines;
}
